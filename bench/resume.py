"""Resume benchmark: first render, unchanged re-render, and a render killed half-way then resumed.

Uses the opening of the 45-minute VibeVoice demo script (4 speakers cast onto the two offline
voices). Every run is a separate `castline render` process against one long-running Prefect
server (started here, as in production), so Prefect's start-up is not counted against a stage.

  1. first render into a fresh store;
  2. the same command again, unchanged (should print "up to date");
  3. a fresh store, killed with SIGKILL after half of the chunks are stored
     (CASTLINE_KILL_AT=synthesise:N, the same failpoint the resume tests use), then resumed.

    .venv/bin/python bench/resume.py [--words 3000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import CAST, REPO, excerpt  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    process = subprocess.Popen([str(Path(sys.executable).with_name("prefect")), "server", "start", "--host",
                                "127.0.0.1", "--port", str(port)], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api"
    import urllib.request

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2):
                return process, url
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("prefect server did not start")


def render(script: Path, out: Path, workers: int, env: dict[str, str], **extra: str) -> tuple[float, int]:
    command = [sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(out), "--cast", *CAST,
               "--voices-dir", str(REPO / "voices"), "--qa", "off", "--workers", str(workers), "--quiet",
               "--format", "wav"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**env, **extra})
    return time.perf_counter() - started, result.returncode


def stored_chunks(out: Path) -> int:
    return len(list((out / "_cache" / "chunks").rglob("*.json")))


def render_counts(out: Path) -> tuple[int, int]:
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    return manifest["render"]["chunks_rendered"], manifest["render"]["chunks_reused"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="castline-resume-bench-") as work:
        work = Path(work)
        script = excerpt(args.words, work / "script.txt")
        server, api = start_server(work / "prefect")
        env = {**os.environ, "PREFECT_API_URL": api}
        try:
            first_s, code = render(script, work / "a", args.workers, env)
            assert code == 0, "first render failed"
            chunks = sum(render_counts(work / "a"))
            again_s, code = render(script, work / "a", args.workers, env)
            assert code == 0
            half = chunks // 2
            killed_s, code = render(script, work / "b", args.workers, env, CASTLINE_KILL_AT=f"synthesise:{half}")
            assert code == -signal.SIGKILL, f"expected a SIGKILL, got exit {code}"
            stored = stored_chunks(work / "b")
            resumed_s, code = render(script, work / "b", args.workers, env)
            assert code == 0, "resumed render failed"
            rendered, reused = render_counts(work / "b")
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"script: {args.words} words, {chunks} chunks, {args.workers} workers, QA off, one Prefect server")
    print(f"{'run':<34}{'wall s':>9}{'rendered':>10}{'reused':>8}")
    print(f"{'first render':<34}{first_s:9.1f}{chunks:10d}{0:8d}")
    print(f"{'unchanged re-render':<34}{again_s:9.1f}{0:10d}{chunks:8d}   {100 * again_s / first_s:.1f} % of the first")
    print(f"{'killed after half the chunks':<34}{killed_s:9.1f}{stored:10d}{'-':>8}")
    print(f"{'resumed':<34}{resumed_s:9.1f}{rendered:10d}{reused:8d}   "
          f"{'only the missing chunks' if rendered == chunks - stored and reused == stored else 'MISMATCH'}")
    print(f"killed + resumed = {killed_s + resumed_s:.1f} s vs uninterrupted {first_s:.1f} s")


if __name__ == "__main__":
    main()
