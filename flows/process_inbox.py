"""Flow: render every new script in an inbox (folder or S3 prefix), with bounded concurrency.

Served on a schedule by ``castline serve --inbox URI --cron "…"`` (see ``flows.deployments``).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.inbox import find_due_scripts, render_inbox_script

MAX_CONCURRENCY = 8


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
    scripts = find_due_scripts(inbox, out, max_attempts)
    render = {"out": out, "preset": preset, "formats": formats, "voices_dir": voices_dir, "workers": workers,
              "qa": qa}
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

