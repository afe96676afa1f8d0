"""Flow: render every new script in an inbox (folder or S3 prefix), with bounded concurrency.

Served on a schedule by ``castline serve --inbox URI --cron "…"`` (see ``castline_flows.deployments``).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from castline.core.errors import CastlineError, StorageError
from castline.inbox.scan import InboxRecord, InboxScript, write_record
from castline.qa.settings import QASettings
from castline.render.options import RenderOptions
from castline.storage import open_store
from castline_flows.render_episode import render_episode
from castline_tasks.inbox import find_due_scripts

MAX_CONCURRENCY = 8
INBOX_SCRIPT = "-"
"""Placeholder script of the inbox's render options: each render gets its script's local copy."""


# A task that runs a sub-flow is composition, so it lives with the flow, not in tasks/.
@task(name="render-inbox-script", cache_policy=NONE)
def render_inbox_script(script: InboxScript, inbox: str, render: RenderOptions) -> InboxRecord:
    """Render one script through ``render_episode`` (a sub-flow run of its own) and record the outcome.

    ``render``: the inbox's render options; its ``script`` is replaced by a local copy of this one.
    A ``CastlineError`` other than a storage fault came from the script itself: recorded as
    permanent. Anything else is recorded as a failed attempt, retried on a later scan."""
    out = open_store(render.out)
    with tempfile.TemporaryDirectory(prefix="castline-inbox-") as folder:
        local = Path(folder) / PurePosixPath(script.key).name
        local.write_bytes(open_store(inbox).get_bytes(script.key))
        try:
            manifest = render_episode(dataclasses.replace(render, script=str(local)))
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


@flow(name="process-inbox", task_runner=ThreadPoolTaskRunner(max_workers=MAX_CONCURRENCY))
def process_inbox(inbox: str, out: str = "output", concurrency: int = 2, max_attempts: int = 3,
                  preset: str | None = None, formats: list[str] | None = None, voices_dir: str | None = None,
                  workers: int = 2, qa: dict[str, Any] | None = None) -> dict[str, int]:
    """Render each script in ``inbox`` not rendered before (by content hash) into ``out``.

    ``concurrency``: scripts rendered at once; ``workers``: synthesis workers inside each render.
    Returns counts: ``found`` (due this scan), ``done``, ``failed``. The flow run fails when a
    script failed this scan (after every script has had its turn), so a schedule shows it.
    """
    logger = get_run_logger()
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise ValueError(f"concurrency must be 1..{MAX_CONCURRENCY}, got {concurrency}")
    # One typed value for every render of this scan, validated before any script is touched.
    render = RenderOptions(script=INBOX_SCRIPT, out=out, preset=preset, formats=tuple(formats or ["wav"]),
                           voices_dir=voices_dir, workers=workers, qa=QASettings(**(qa or {})))
    scripts = find_due_scripts(inbox, out, max_attempts)
    records = []
    running: list[Any] = []
    for script in scripts:
        if len(running) >= concurrency:  # a sliding window: at most ``concurrency`` renders at once
            records.append(running.pop(0).result())
        running.append(render_inbox_script.submit(script, inbox, render))
    records += [future.result() for future in running]
    failed = [record for record in records if record.status == "failed"]
    if records:
        create_table_artifact(key="inbox-scan", table=[
            {"script": record.script, "status": record.status, "attempts": record.attempts,
             "manifest": record.manifest, "error": record.error} for record in records],
            description=f"inbox {inbox}: {len(records) - len(failed)} done, {len(failed)} failed")
    logger.info("inbox %s: %d rendered, %d failed", inbox, len(records) - len(failed), len(failed))
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(records)} scripts failed: "
                           + "; ".join(f"{record.script}: {record.error}" for record in failed))
    return {"found": len(records), "done": len(records), "failed": 0}

