"""Scale-out benchmark: chunk synthesis on a Dask LocalCluster vs threads, and Prefect's per-task cost.

  1. Prefect's per-task overhead on the Dask task runner: N no-op tasks on a LocalCluster of
     --workers processes, wall time / N;
  2. a render of the opening of the 45-minute demo script with `--runner threads` and with
     `--runner dask` (a local cluster of --workers processes), both against one Prefect server:
     synthesis stage wall time (from the manifest), number of synthesis tasks, work per task,
     and the overhead's share of the work per task.

    .venv/bin/python bench/scale_out.py [--words 1500] [--workers 2] [--noop-tasks 100]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import CAST, REPO, excerpt  # noqa: E402
from resume import start_server  # noqa: E402

NOOP = """
import sys, time
from prefect import flow, task
from prefect_dask import DaskTaskRunner

@task
def noop(i):
    return i

@flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": int(sys.argv[1]), "threads_per_worker": 1,
                                                 "processes": True, "dashboard_address": ":0"}))
def many(n):
    noop.submit(-1).result()  # warm: the cluster and each worker's first import are not per-task costs
    started = time.perf_counter()
    [future.result() for future in [noop.submit(i) for i in range(n)]]
    print("PER_TASK", (time.perf_counter() - started) / n)

if __name__ == "__main__":
    many(int(sys.argv[2]))
"""


def per_task_overhead(workers: int, tasks: int, env: dict[str, str], work: Path) -> float:
    script = work / "noop.py"
    script.write_text(NOOP, encoding="utf-8")
    output = subprocess.run([sys.executable, str(script), str(workers), str(tasks)], capture_output=True, text=True,
                            env=env, check=True).stdout
    return float(next(line for line in output.splitlines() if line.startswith("PER_TASK")).split()[1])


def render(script: Path, out: Path, runner: str, workers: int, env: dict[str, str]) -> tuple[float, dict]:
    command = [sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(out), "--cast", *CAST,
               "--voices-dir", str(REPO / "voices"), "--qa", "off", "--workers", str(workers), "--quiet",
               "--runner", runner]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - started
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    return wall, manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop-tasks", type=int, default=100)
    args = parser.parse_args()
    from castline_flows.synthesise_on_dask import DASK_TASKS_PER_WORKER

    with tempfile.TemporaryDirectory(prefix="castline-scale-bench-") as work:
        work = Path(work)
        server, api = start_server(work / "prefect")
        env = {**os.environ, "PREFECT_API_URL": api}
        try:
            overhead_s = per_task_overhead(args.workers, args.noop_tasks, env, work)
            script = excerpt(args.words, work / "script.txt")
            results = {runner: render(script, work / runner, runner, args.workers, env) for runner in ("threads", "dask")}
        finally:
            server.terminate()
            server.wait(timeout=30)
    chunks = len(results["dask"][1]["chunks"])
    tasks = min(chunks, args.workers * DASK_TASKS_PER_WORKER)
    print(f"Prefect per-task overhead on Dask ({args.workers} worker processes, {args.noop_tasks} no-op tasks): "
          f"{overhead_s * 1000:.0f} ms")
    print(f"{'runner':<9}{'wall s':>8}{'synthesis s':>13}{'chunks':>8}")
    for runner, (wall, manifest) in results.items():
        print(f"{runner:<9}{wall:8.1f}{manifest['render']['timings_s']['synthesise']:13.1f}{chunks:8d}")
    dask_synth = results["dask"][1]["render"]["timings_s"]["synthesise"]
    work_per_task = dask_synth * args.workers / tasks
    print(f"dask: {tasks} synthesis tasks, ~{work_per_task:.1f} s of work each; per-task overhead = "
          f"{100 * overhead_s / work_per_task:.1f} % of the work (target < 5 %)")


if __name__ == "__main__":
    main()
