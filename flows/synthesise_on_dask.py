"""Sub-flow: chunk synthesis on a Dask cluster (``--runner dask``), the rest of the render local.

Its own module, imported only when a render asks for Dask: a flow's parameter schema is built
when the flow is defined, and this one's (the whole render plan) took a fixed ~50 ms of every
render's start-up.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

from prefect import flow
from prefect.futures import wait

from castline.render.plan import ChunkJob, RenderPlan, WindowJob
from castline.render.synthesis import ChunkRecord, batch_jobs
from castline.render.windows import batch_windows
from castline_tasks.render import synthesise_chunks, synthesise_window_batch

DASK_TASKS_PER_WORKER = 2
"""Batches per Dask worker: few, coarse tasks keep Prefect's ~0.1 s per-task cost on process
runners small next to the synthesis in each, while 2 per worker still balances the load."""


@flow(name="synthesise-on-dask", validate_parameters=False)
def synthesise_cluster(plan: RenderPlan, batches: list[tuple[ChunkJob, ...]],
                       window_batches: list[tuple[WindowJob, ...]]) -> list[ChunkRecord]:
    """Chunk synthesis as a sub-flow, so that it alone runs on the Dask task runner."""
    futures = [synthesise_chunks.submit(batch, plan) for batch in batches]
    futures += [synthesise_window_batch.submit(batch, plan) for batch in window_batches]
    wait(futures)
    return sorted((record for future in futures for record in future.result()), key=lambda r: r.index)


def synthesise_on_dask(plan: RenderPlan, address: str | None) -> list[ChunkRecord]:
    from prefect_dask import DaskTaskRunner

    workers = plan.options.workers
    runner = (DaskTaskRunner(address=address) if address else
              DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True,
                                             "dashboard_address": ":0"}))
    batches = batch_jobs(plan.jobs, workers, max_batch=None, batches_per_worker=DASK_TASKS_PER_WORKER)
    window_batches = batch_windows(plan.windows, workers, plan.options.window_batch)
    with _api_shared_with_dask_workers():
        return synthesise_cluster.with_options(task_runner=runner)(plan, batches, window_batches)


@contextlib.contextmanager
def _api_shared_with_dask_workers() -> Iterator[None]:
    """Local Dask workers are new processes: point them at this run's Prefect API through the
    environment they inherit, or each would start a temporary server of its own (~10 s each)."""
    import os

    from prefect.client.orchestration import get_client

    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    with get_client(sync_client=True) as client:
        os.environ["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)
