"""Flow: script in, mastered multi-speaker episode out, in the store."""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
import uuid
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_link_artifact, create_table_artifact
from prefect.futures import wait
from prefect.task_runners import ThreadPoolTaskRunner

from castline.core.allocator import ARENAS, share_allocator_arenas
from castline.engines.pool import release_all
from castline.core.hashing import sha256_file
from castline.delivery.manifest import RenderStats
from castline.render.options import RenderOptions
from castline.core.progress import emit
from castline.render.synthesis import batch_jobs
from castline.render.windows import batch_windows
from castline.render.stitch import StitchSettings
from castline.delivery.uptodate import PreparedRender
from castline.qa.asr import release_transcribers
from castline_flows.housekeeping import tagged_run, tidy_up_after_killed_runs, without_heartbeats
from castline.render.inputs import local_inputs
from castline_tasks.render import (check_episode, encode_format, master_programme, package_book, plan_render, publish,
                                   stitch_chunks, synthesise_chunks, synthesise_window_batch, tidy_store)


@flow(name="render-episode", task_runner=ThreadPoolTaskRunner(max_workers=2))
def render_episode(options: RenderOptions, prepared: str | None = None) -> str:
    """Render ``options.script`` into ``options.out``; returns the manifest URI.

    ``options`` is the one typed value a render takes, as the command line, ``castline submit``
    and the inbox pass it (Prefect validates it and stores it as JSON; it holds no secrets: S3
    settings travel in the environment). ``options.workers`` sizes the batches; the task
    runner's ``max_workers`` bounds parallel synthesis (``run_render`` sets both from the same
    number). ``runner="dask"`` sends chunk synthesis to the Dask cluster at ``dask_address`` (or a
    local cluster of ``workers`` processes); the store must then be one every Dask worker can reach.

    Planning and the up-to-date check happen once per run. The command line must do them before
    Prefect starts (bad input fails in one line, an up-to-date episode starts nothing), so it
    hands its ``PreparedRender`` over through ``run_render``: ``prepared`` is the id under which
    ``run_render`` holds it in this process (a plain string, since a plan with local paths is no
    flow parameter). The flow then neither plans nor checks again, and the caller keeps the
    local copies of ``s3://`` inputs open while it runs. Without a handover (a deployment run,
    the inbox, or an id from another process) the flow plans and checks itself.
    """
    share_allocator_arenas(max(ARENAS, options.workers))  # before the task runner's threads start
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    clock = _StageClock()
    tidy_store(options.out)
    handed_over = _PREPARED.get(prepared) if prepared else None
    if handed_over is not None and handed_over.options == options:
        return _up_to_date(handed_over) or _render(handed_over, started, clock)
    # Scripts and voices may live in s3://: local copies for the whole run (engines read references).
    with local_inputs(options) as local_options:
        ready = plan_render(options, local_options)
        return _up_to_date(ready) or _render(ready, started, clock)


def _up_to_date(ready: PreparedRender) -> str | None:
    """The live manifest's URI (recorded as the run's artifact) when nothing needs rendering."""
    if ready.current is not None:
        episode_id = ready.plan.episode.meta.episode_id
        get_run_logger().info("episode '%s' is up to date: %s", episode_id, ready.current)
        create_link_artifact(ready.current, link_text="manifest.json", key=MANIFEST_ARTIFACT,
                             description=f"{episode_id}: up to date")
    return ready.current


_PREPARED: dict[str, PreparedRender] = {}
"""Renders ``run_render`` hands to the flow it starts in this process, by id (see ``render_episode``)."""


def _render(prepared: PreparedRender, started: str, clock: _StageClock) -> str:
    logger = get_run_logger()
    plan, key = prepared.plan, prepared.key
    options = plan.options  # local copies of the inputs
    workers = options.workers
    settings = StitchSettings.with_pauses(options.pauses_ms)
    clock.lap("plan")
    emit("synthesise", total=len(plan.jobs))
    if options.runner == "dask":
        from castline_flows.synthesise_on_dask import synthesise_on_dask

        records = synthesise_on_dask(plan, options.dask_address)
    else:
        futures = [synthesise_chunks.submit(batch, plan) for batch in batch_jobs(plan.jobs, workers)]
        futures += [synthesise_window_batch.submit(batch, plan)
                    for batch in batch_windows(plan.windows, workers, options.window_batch)]
        wait(futures)  # a batch that fails does not cancel the others: their chunks are all stored
        records = sorted((record for future in futures for record in future.result()), key=lambda r: r.index)
    release_all()
    release_transcribers()
    clock.lap("synthesise")
    rendered = sum(record.rendered for record in records)
    logger.info("chunks: %d rendered, %d reused from the cache", rendered, len(records) - rendered)
    work_dir = tempfile.mkdtemp(prefix=f"castline-{plan.episode.meta.episode_id}-")
    try:
        stitched = stitch_chunks(plan, records, settings, work_dir)
        clock.lap("stitch")
        mastered = master_programme(plan, stitched, work_dir)
        clock.lap("master")
        emit("encode", total=len(options.formats))
        encode_futures = [encode_format.submit(plan, stitched, mastered, fmt, work_dir) for fmt in options.formats]
        encoded = []
        for future in encode_futures:
            encoded.append(future.result())
            emit("encode", advance=1)
        clock.lap("encode")
        book = package_book(plan, stitched, mastered, work_dir) if options.package == "audiobook" else None
        qa, qa_files = (check_episode(plan, records, stitched, mastered, encoded, work_dir)
                        if options.qa.enabled else (None, []))
        clock.lap("qa")
        stats = RenderStats(chunks_rendered=rendered, chunks_reused=len(records) - rendered, started_at=started,
                            finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                            workers=workers, timings_s=clock.laps, render_key=key)
        published = publish(plan, records, stitched, mastered, encoded, stats, sha256_file(options.script), qa,
                            qa_files, book)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    create_table_artifact(key="episode-files", table=_files_table(encoded),
                          description=f"{plan.episode.meta.episode_id}: {published.manifest.uri}")
    create_link_artifact(published.manifest.uri, link_text="manifest.json", key=MANIFEST_ARTIFACT,
                         description=f"{plan.episode.meta.episode_id}: release {published.release}")
    logger.info("published release %s: %d objects uploaded, %d already stored intact; %s", published.release,
                published.uploaded, published.reused, published.manifest.uri)
    return published.manifest.uri


MANIFEST_ARTIFACT = "episode-manifest"
"""Key of the link artifact holding the manifest URI (``castline status`` reads it)."""

class _StageClock:
    """Wall seconds per stage, for the manifest and the render benchmark."""

    def __init__(self) -> None:
        self._last = time.perf_counter()
        self.laps: tuple[tuple[str, float], ...] = ()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.laps += ((stage, now - self._last),)
        self._last = now


def _files_table(encoded: list[Any]) -> list[dict[str, object]]:
    return [{"format": item.format, "integrated_lufs": round(item.reading.integrated_lufs, 2),
             "true_peak_dbtp": round(item.reading.true_peak_dbtp, 2), "attempts": item.attempts}
            for item in encoded]


def run_render(options: RenderOptions, prepared: PreparedRender | None = None) -> str:
    """Run the flow with ``options.workers`` parallel synthesis workers; returns the manifest URI.

    ``prepared``: the render as the caller already planned and checked it (``prepare_episode``,
    with its local inputs still open), so the flow does neither again. First tidies up after
    killed runs on this host (see ``castline_flows.housekeeping``)."""
    tidy_up_after_killed_runs()
    share_allocator_arenas(max(ARENAS, options.workers))  # before Prefect starts its threads
    runner = ThreadPoolTaskRunner(max_workers=options.workers)
    handle = None
    if prepared is not None:
        handle = uuid.uuid4().hex
        _PREPARED[handle] = prepared
    try:
        with tagged_run(), without_heartbeats():
            return render_episode.with_options(task_runner=runner)(options=options, prepared=handle)
    finally:
        if handle is not None:
            _PREPARED.pop(handle, None)
