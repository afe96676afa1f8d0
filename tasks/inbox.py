"""Tasks for the inbox: render one script as a sub-flow and record what became of it."""

from __future__ import annotations

import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from castline.errors import CastlineError, StorageError
from castline.inbox import InboxRecord, InboxScript, due, scan_inbox, write_record
from castline.storage import open_store


@task(name="scan-inbox", cache_policy=NONE, retries=2, retry_delay_seconds=5)
def find_due_scripts(inbox: str, out: str, max_attempts: int) -> list[InboxScript]:
    scripts = scan_inbox(open_store(inbox))
    pending = due(open_store(out), scripts, max_attempts)
    get_run_logger().info("inbox %s: %d scripts, %d to render", inbox, len(scripts), len(pending))
    return pending


@task(name="render-inbox-script", cache_policy=NONE)
def render_inbox_script(script: InboxScript, inbox: str, render: dict[str, Any]) -> InboxRecord:
    """Render one script through ``render_episode`` (a sub-flow run of its own) and record the outcome.

    A ``CastlineError`` other than a storage fault came from the script itself: recorded as
    permanent. Anything else is recorded as a failed attempt, retried on a later scan."""
    from flows.render_episode import render_episode

    out = open_store(render["out"])
    with tempfile.TemporaryDirectory(prefix="castline-inbox-") as folder:
        local = Path(folder) / PurePosixPath(script.key).name
        local.write_bytes(open_store(inbox).get_bytes(script.key))
        try:
            manifest = render_episode(script=str(local), **render)
        except CastlineError as error:
            permanent = not isinstance(error, StorageError)
            message = str(error).replace(str(local), script.uri)  # name the inbox's file, not the temporary copy
            get_run_logger().error("%s failed%s: %s", script.key, "" if permanent else " (will retry)", message)
            return write_record(out, script, succeeded=False, error=message, permanent=permanent)
        except Exception as error:  # noqa: BLE001 - recorded and retried on a later scan
            message = f"{type(error).__name__}: {error}".replace(str(local), script.uri)
            get_run_logger().error("%s failed (will retry): %s", script.key, message)
            return write_record(out, script, succeeded=False, error=message)
    get_run_logger().info("%s rendered: %s", script.key, manifest)
    return write_record(out, script, succeeded=True, manifest=manifest)
