"""Resume benchmark: first render, unchanged re-render, and a render killed half-way then resumed.

Uses the opening of the 45-minute VibeVoice demo script (4 speakers cast onto the two offline
voices). Every run is a separate `castline render` process against one long-running Prefect
server (started here, as in production), so Prefect's start-up is not counted against a stage.

  1. first render into a fresh store;
  2. the same command again, unchanged (should print "up to date");
  3. a fresh store, killed with SIGKILL after half of the chunks are stored
     (CASTLINE_KILL_AT=synthesise:N, the same failpoint the resume tests use), then resumed.

With ``--qa warn`` the kill comes after half of the first render's takes are made
(CASTLINE_KILL_AT=take:N: stored, not all heard yet), and every run counts the takes its engines
synthesised (each row an engine call is asked for, logged as the call returns): the killed and the
resumed render together should make exactly the first render's takes, none twice.

    .venv/bin/python bench/resume.py [--words 3000] [--workers 2] [--qa off|warn]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

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


LOGGED_CLI = """
import json, os, sys
from castline.engines.registry import engine_class

log = os.environ["CASTLINE_BENCH_TAKE_LOG"]
for name in ("hibari", "piper"):
    cls = engine_class(name)

    def logged(self, texts, voice, seeds, _original=cls.synthesize):
        out = _original(self, texts, voice, seeds)
        with open(log, "a", encoding="utf-8") as handle:
            handle.writelines(json.dumps([voice.voice_id, text, seed]) + "\\n" for text, seed in zip(texts, seeds))
        return out

    cls.synthesize = logged
from castline_cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""
"""The command line, with every row its engines synthesise appended to CASTLINE_BENCH_TAKE_LOG."""


def render(script: Path, out: Path, workers: int, env: dict[str, str], qa: str = "off",
           takes_log: Path | None = None, **extra: str) -> tuple[float, int]:
    arguments = ["render", str(script), "--out", str(out), "--cast", *CAST, "--voices-dir", str(REPO / "voices"),
                 "--qa", qa, "--workers", str(workers), "--quiet", "--format", "wav"]
    command = ([sys.executable, "-c", LOGGED_CLI, *arguments] if takes_log is not None else
               [sys.executable, "-m", "castline_cli", *arguments])
    if takes_log is not None:
        extra = {**extra, "CASTLINE_BENCH_TAKE_LOG": str(takes_log)}
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env={**env, **extra})
    return time.perf_counter() - started, result.returncode


def takes_made(log: Path) -> list[tuple[str, str, int]]:
    """(voice, text, seed) of every row synthesised, in order; none when nothing was logged."""
    if not log.exists():
        return []
    return [tuple(json.loads(line)) for line in log.read_text(encoding="utf-8").splitlines()]


def stored_chunks(out: Path) -> int:
    return len(list((out / "_cache" / "chunks").rglob("*.json")))


def render_counts(out: Path) -> tuple[int, int]:
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    return manifest["render"]["chunks_rendered"], manifest["render"]["chunks_reused"]


def master_sha(out: Path) -> str:
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    return next(item["sha256"] for item in manifest["files"] if item["format"] == "wav")


@contextlib.contextmanager
def workspace(words: int) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """A temporary folder holding a ``words``-word excerpt, and the environment of a Prefect server
    started for the bench (stopped on the way out): ``(folder, script, env)``."""
    with tempfile.TemporaryDirectory(prefix="castline-resume-bench-") as work:
        work = Path(work)
        script = excerpt(words, work / "script.txt")
        server, api = start_server(work / "prefect")
        try:
            yield work, script, {**os.environ, "PREFECT_API_URL": api}
        finally:
            server.terminate()
            server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--qa", choices=["off", "warn"], default="off")
    args = parser.parse_args()
    if args.qa != "off":
        return main_with_qa(args)
    with workspace(args.words) as (work, script, env):
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
    print(f"script: {args.words} words, {chunks} chunks, {args.workers} workers, QA off, one Prefect server")
    print(f"{'run':<34}{'wall s':>9}{'rendered':>10}{'reused':>8}")
    print(f"{'first render':<34}{first_s:9.1f}{chunks:10d}{0:8d}")
    print(f"{'unchanged re-render':<34}{again_s:9.1f}{0:10d}{chunks:8d}   {100 * again_s / first_s:.1f} % of the first")
    print(f"{'killed after half the chunks':<34}{killed_s:9.1f}{stored:10d}{'-':>8}")
    print(f"{'resumed':<34}{resumed_s:9.1f}{rendered:10d}{reused:8d}   "
          f"{'only the missing chunks' if rendered == chunks - stored and reused == stored else 'MISMATCH'}")
    print(f"killed + resumed = {killed_s + resumed_s:.1f} s vs uninterrupted {first_s:.1f} s")


def main_with_qa(args: argparse.Namespace) -> None:
    with workspace(args.words) as (work, script, env):
        first_s, code = render(script, work / "a", args.workers, env, args.qa, work / "a.log")
        assert code == 0, "first render failed"
        chunks = sum(render_counts(work / "a"))
        first = takes_made(work / "a.log")
        half = len(first) // 2
        killed_s, code = render(script, work / "b", args.workers, env, args.qa, work / "killed.log",
                                CASTLINE_KILL_AT=f"take:{half}")
        assert code == -signal.SIGKILL, f"expected a SIGKILL, got exit {code}"
        killed = takes_made(work / "killed.log")
        resumed_s, code = render(script, work / "b", args.workers, env, args.qa, work / "resumed.log")
        assert code == 0, "resumed render failed"
        resumed = takes_made(work / "resumed.log")
        rendered, reused = render_counts(work / "b")
        same_master = master_sha(work / "a") == master_sha(work / "b")
    twice = len(killed) + len(resumed) - len(set(killed) | set(resumed))
    print(f"script: {args.words} words, {chunks} chunks, {args.workers} workers, QA {args.qa}, one Prefect server")
    print(f"{'run':<34}{'wall s':>9}{'takes':>7}{'chunks rendered':>17}{'reused':>8}")
    print(f"{'first render':<34}{first_s:9.1f}{len(first):7d}{chunks:17d}{0:8d}")
    print(f"{f'killed after {half} takes':<34}{killed_s:9.1f}{len(killed):7d}{'-':>17}{'-':>8}")
    print(f"{'resumed':<34}{resumed_s:9.1f}{len(resumed):7d}{rendered:17d}{reused:8d}")
    print(f"killed + resumed: {len(killed) + len(resumed)} takes ({twice} made twice) vs uninterrupted {len(first)}; "
          f"{killed_s + resumed_s:.1f} s vs {first_s:.1f} s; master {'identical' if same_master else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
