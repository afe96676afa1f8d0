"""Soak: a served castline under load, with a faulty network and a killed worker.

Starts a Prefect server, an S3 server (rclone serve s3) behind the fault proxy of the tests
(``tests/fault_proxy.py``: a share of requests answered 503/500 or reset), and ``castline serve
--limit 2``; submits ``--renders`` renders (``castline submit``), kills the serving process (and
the flow runs it started) with SIGKILL once ``--kill-after`` renders have completed, and starts
it again. Runs the kill orphaned are marked crashed and submitted again; a run that fails is
submitted again up to ``--attempts`` times in all. Then every manifest is read back directly
from the server (not through the proxy): every object it lists must be there with its SHA-256,
and no incomplete multipart upload may remain. Prints those counts; exits 1 if any is wrong.

    .venv/bin/python bench/soak.py                      # 20 renders, 10 % faults, kill after 5
    .venv/bin/python bench/soak.py --renders 4 --kill-after 1
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fault_proxy import FaultProxy  # noqa: E402
from s3_servers import free_port, start_rclone, stop  # noqa: E402

FINAL_OK = {"COMPLETED"}
FINAL_BAD = {"FAILED", "CRASHED", "CANCELLED"}
LINES = ["The lighthouse keeper climbed the stairs before dawn.", "Salt wind rattled the windows all night.",
         "Below, the harbour lights blinked one by one.", "A fishing boat rounded the point, engine coughing.",
         "She wrote the time and the weather in the log."]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.10)
    parser.add_argument("--kill-after", type=int, default=5, help="completed renders before the kill")
    parser.add_argument("--limit", type=int, default=2, help="flow runs the served castline runs at once")
    parser.add_argument("--attempts", type=int, default=3, help="submissions per render at most")
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="castline-soak-"))
    env = {**os.environ, "PREFECT_HOME": str(folder / "prefect"), "CASTLINE_HOME": str(folder / "home"),
           "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "CASTLINE_SERVER": "ephemeral",
           "XDG_CACHE_HOME": str(folder / "cache")}
    s3 = start_rclone(folder / "s3")
    bucket = s3.make_bucket()
    proxy = FaultProxy(int(s3.endpoint.rsplit(":", 1)[1]), fault_rate=args.fault_rate, seed=1).start()
    prefect, api = _start_prefect(folder, env)
    served_env = {**env, **s3.env(), "PREFECT_API_URL": api, "AWS_ENDPOINT_URL": proxy.endpoint}
    os.environ.update({"PREFECT_API_URL": api})
    serve = None
    started = time.perf_counter()
    try:
        serve = _start_serve(folder, served_env, args.limit)
        runs: dict[int, list[str]] = {}
        for number in range(args.renders):
            runs[number] = [_submit(folder, served_env, bucket, number)]
        killed = 0
        resubmitted = 0
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            states = {number: _state(ids[-1]) for number, ids in runs.items()}
            done = sum(state in FINAL_OK for state in states.values())
            if not killed and done >= args.kill_after:
                orphaned = [number for number, state in states.items() if state in ("RUNNING", "PENDING")]
                _kill_group(serve)
                killed = 1
                print(f"killed the serving process with {done} renders done, {len(orphaned)} running", flush=True)
                for number in orphaned:
                    _mark_crashed(runs[number][-1])
                serve = _start_serve(folder, served_env, args.limit)
                continue
            for number, state in states.items():
                if state in FINAL_BAD and len(runs[number]) < args.attempts:
                    runs[number].append(_resubmit(runs[number][-1]))
                    resubmitted += 1
            if all(state in FINAL_OK or (state in FINAL_BAD and len(runs[n]) >= args.attempts)
                   for n, state in states.items()):
                break
            time.sleep(2)
        wall_s = time.perf_counter() - started
        final = {number: _state(ids[-1]) for number, ids in runs.items()}
        verified, objects, mismatches, missing = _verify(s3, bucket, [n for n, s in final.items() if s in FINAL_OK])
        pending_uploads = _pending_uploads(s3, bucket)
        keys = [item["Key"] for page in s3.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for item in page.get("Contents", [])]
        temporary = [key for key in keys if ".castline-tmp-" in key or "write-check" in key]
        on_disk = [path for path in (s3.root / bucket).rglob("*") if path.is_file() and path.name.startswith(".")]
        completed = sum(state in FINAL_OK for state in final.values())
        print(f"renders submitted            {args.renders}")
        print(f"renders completed            {completed} (resubmitted {resubmitted}; worker killed {killed}x)")
        print(f"renders not completed        {args.renders - completed}")
        print(f"manifests verified           {verified} ({objects} objects read back, {mismatches} SHA-256 "
              f"mismatches, {missing} missing)")
        uploads = "n/a (the server cannot list them)" if pending_uploads is None else pending_uploads
        print(f"incomplete multipart uploads {uploads}")
        print(f"temporary objects left       {len(temporary)} of {len(keys)} objects "
              f"({len(on_disk)} hidden files on the server's disk)")
        print(f"S3 requests through proxy    {sum(proxy.counts.values())} ({proxy.faults} faulted: "
              f"{dict(proxy.counts)})")
        print(f"wall time                    {wall_s:.0f} s")
        ok = completed == args.renders and verified == completed and not mismatches and not missing \
            and not pending_uploads and not temporary and not on_disk
        return 0 if ok else 1
    finally:
        if serve is not None:
            _kill_group(serve)
        _kill_group(prefect)
        proxy.stop()
        stop(s3.pid)


def _start_prefect(folder: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(folder / "prefect.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=2):
                return process, api
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((folder / "prefect.log").read_text()[-2000:]) from None
            time.sleep(1)
    raise RuntimeError("Prefect server did not start")


def _start_serve(folder: Path, env: dict[str, str], limit: int) -> subprocess.Popen:
    from prefect.client.orchestration import get_client

    log = open(folder / "serve.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "castline_cli", "serve", "--limit", str(limit), "--qa", "off"],
                               stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 180
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                client.read_deployment_by_name("render-episode/castline-render")
                return process
            except Exception:  # noqa: BLE001 - not registered yet
                if process.poll() is not None:
                    raise RuntimeError((folder / "serve.log").read_text()[-2000:]) from None
                time.sleep(1)
    raise RuntimeError("castline serve did not register its deployment")


def _submit(folder: Path, env: dict[str, str], bucket: str, number: int) -> str:
    script = folder / "scripts" / f"soak-{number:02d}.txt"
    script.parent.mkdir(exist_ok=True)
    script.write_text("".join(f"Speaker {1 + i % 2}: {LINES[(number + i) % len(LINES)]} Take {number}.\n"
                              for i in range(3)), encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "castline_cli", "submit", str(script), "--out",
                           f"s3://{bucket}/soak", "--qa", "off", "--workers", "1"],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return done.stdout.strip().splitlines()[-1]


def _state(run_id: str) -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(uuid.UUID(run_id))
    return run.state_type.value if run.state_type else "UNKNOWN"


def _mark_crashed(run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(uuid.UUID(run_id), Crashed(message="serving process killed (soak)"), force=True)


def _resubmit(run_id: str) -> str:
    """A new run of the same deployment with the same parameters (a fresh idempotency key)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        old = client.read_flow_run(uuid.UUID(run_id))
        new = client.create_flow_run_from_deployment(old.deployment_id, parameters=old.parameters,
                                                     idempotency_key=f"soak-retry-{uuid.uuid4().hex}")
    return str(new.id)


def _pending_uploads(s3, bucket: str) -> int | None:
    """Incomplete multipart uploads in ``bucket``; None where the server cannot list them."""
    from botocore.exceptions import ClientError

    try:
        return len(s3.client().list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    except ClientError:
        return None


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process this script started and everything it started (its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _verify(s3, bucket: str, numbers: list[int]) -> tuple[int, int, int, int]:
    import hashlib

    client = s3.client()
    verified = objects = mismatches = missing = 0
    for number in numbers:
        manifest = json.loads(client.get_object(Bucket=bucket, Key=f"soak/soak-{number:02d}/manifest.json")["Body"]
                              .read())
        listed = [item for part in ("files", "transcripts", "chunks") for item in manifest.get(part, [])]
        bad = 0
        for item in listed:
            key = item["uri"].split(f"s3://{bucket}/", 1)[1]
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                missing += 1
                bad += 1
                continue
            objects += 1
            if hashlib.sha256(body).hexdigest() != item["sha256"]:
                mismatches += 1
                bad += 1
        verified += bad == 0
    return verified, objects, mismatches, missing


if __name__ == "__main__":
    sys.exit(main())
