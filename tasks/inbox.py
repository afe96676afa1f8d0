"""Tasks for the inbox: find the scripts due for rendering."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from castline.inbox.scan import InboxScript, due, scan_inbox
from castline.storage import open_store


@task(name="scan-inbox", cache_policy=NONE, retries=2, retry_delay_seconds=5)
def find_due_scripts(inbox: str, out: str, max_attempts: int) -> list[InboxScript]:
    scripts = scan_inbox(open_store(inbox))
    pending = due(open_store(out), scripts, max_attempts)
    get_run_logger().info("inbox %s: %d scripts, %d to render", inbox, len(scripts), len(pending))
    return pending
