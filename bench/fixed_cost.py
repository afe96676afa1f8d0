"""Fixed cost of a castline command: a cached 2-line render, temporary server vs castline's server.

Renders a 2-line script once (so every chunk is cached), then times ``castline render SCRIPT
--force --qa off --quiet`` under ``/usr/bin/time -v``: one warm-up and ``--runs`` timed runs per
mode, and prints the medians side by side:

- ``ephemeral``: ``CASTLINE_SERVER=ephemeral``, Prefect starts a temporary server in every run;
- ``persistent``: castline's background Prefect server (``castline server start`` first, then
  ``--settle-s`` seconds for it to finish starting up; the timed runs reuse it), stopped at the
  end unless ``--keep-server``.

Also times ``castline --help`` (the import floor of the command line). The project's bytecode is
compiled first, as on any machine that has run castline once. Everything else lives in a
temporary ``$CASTLINE_HOME``.

    .venv/bin/python bench/fixed_cost.py [--runs 3] [--modes ephemeral persistent] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("castline", "cli", "flows", "tasks")
SCRIPT = """\
episode:
  id: fixed-cost
  title: Fixed cost
  language: en
cast:
  host: {voice: heart, name: Harriet}
  guest: {voice: joe, name: Joe}
turns:
  - speaker: host
    text: Hello, and welcome to the show.
  - speaker: guest
    text: Thanks for having me.
"""
TIME_FIELDS = {
    "wall_s": re.compile(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (.+)"),
    "user_s": re.compile(r"User time \(seconds\): ([\d.]+)"),
    "sys_s": re.compile(r"System time \(seconds\): ([\d.]+)"),
    "peak_rss_mb": re.compile(r"Maximum resident set size \(kbytes\): (\d+)"),
}


def parse_time_v(text: str) -> dict[str, float]:
    """The fields of GNU time's ``-v`` report that the table shows."""
    found = {}
    for name, pattern in TIME_FIELDS.items():
        match = pattern.search(text)
        if not match:
            raise RuntimeError(f"no {name} in /usr/bin/time output:\n{text[-2000:]}")
        raw = match.group(1).strip()
        if name == "wall_s":
            seconds = 0.0
            for part in raw.split(":"):
                seconds = seconds * 60 + float(part)
            found[name] = seconds
        elif name == "peak_rss_mb":
            found[name] = int(raw) / 1024
        else:
            found[name] = float(raw)
    found["cpu_s"] = found["user_s"] + found["sys_s"]
    return found


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    result = subprocess.run(["/usr/bin/time", "-v", *argv], env=env, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr[-3000:]}")
    figures = parse_time_v(result.stderr)
    figures["summary"] = [line for line in result.stdout.splitlines() if line.startswith("  prefect")]
    return figures


def castline(*args: str) -> list[str]:
    return [sys.executable, "-m", "castline_cli", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs per mode (median reported; default 3)")
    parser.add_argument("--modes", nargs="+", default=["ephemeral", "persistent"], choices=["ephemeral", "persistent"])
    parser.add_argument("--keep-server", action="store_true", help="leave castline's server running afterwards")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--settle-s", type=float, default=60.0,
                        help="seconds to wait after starting castline's server before timing (default 60)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="castline-fixed-cost-"))
    script = work / "two-lines.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(CASTLINE_HOME=str(work / "home"), DO_NOT_TRACK="1", PREFECT_SERVER_ANALYTICS_ENABLED="false")
    render = castline("render", str(script), "--out", str(work / "out"), "--voices-dir", str(REPO / "voices"),
                      "--force", "--qa", "off", "--quiet")
    results: dict[str, dict] = {}
    # A warm machine has the project's bytecode: Python writes it on first import, unless the
    # environment says not to (PYTHONDONTWRITEBYTECODE), when every run would compile afresh.
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(REPO / folder) for folder in PACKAGES)],
                   check=True, capture_output=True)
    try:
        print(f"castline home: {work / 'home'}; {args.runs} timed runs per mode after one warm-up", file=sys.stderr)
        timed(castline("--help"), env, REPO)
        results["castline --help"] = _runs(castline("--help"), env, args.runs)
        for mode in args.modes:
            mode_env = {**env, "CASTLINE_SERVER": mode}
            if mode == "persistent":
                start = timed(castline("server", "start"), mode_env, REPO)
                print(f"castline server start: {start['wall_s']:.1f} s wall (first start, new database)",
                      file=sys.stderr)
                results["server start (first)"] = {"runs": [start], **_medians([start])}
                # A new server is busy for a while after it starts (its database, its services);
                # the figure wanted is a render against a server that has been up for a while.
                time.sleep(args.settle_s)
            timed(render, mode_env, REPO)  # warm-up: synthesises the chunks the first time, fills caches
            results[f"render, {mode} server"] = _runs(render, mode_env, args.runs)
            print(f"{mode}: done", file=sys.stderr)
    finally:
        if "persistent" in args.modes and not args.keep_server:
            subprocess.run(castline("server", "stop"), env=env, cwd=REPO, capture_output=True)
    _print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


def _runs(argv: list[str], env: dict[str, str], count: int) -> dict:
    runs = [timed(argv, env, REPO) for _ in range(count)]
    return {"runs": runs, **_medians(runs)}


def _medians(runs: list[dict]) -> dict[str, float]:
    return {f"median_{name}": statistics.median(run[name] for run in runs)
            for name in ("wall_s", "cpu_s", "peak_rss_mb")}


def _print_table(results: dict[str, dict]) -> None:
    print(f"{'command':<34}{'wall s':>9}{'CPU s':>9}{'peak MB':>9}   (medians; each run's wall s)")
    for name, figures in results.items():
        walls = ", ".join(f"{run['wall_s']:.2f}" for run in figures["runs"])
        print(f"{name:<34}{figures['median_wall_s']:>9.2f}{figures['median_cpu_s']:>9.2f}"
              f"{figures['median_peak_rss_mb']:>9.0f}   ({walls})")
    ephemeral, persistent = results.get("render, ephemeral server"), results.get("render, persistent server")
    if ephemeral and persistent:
        print(f"persistent server saves {ephemeral['median_wall_s'] - persistent['median_wall_s']:.2f} s wall "
              f"per run ({ephemeral['median_wall_s'] / persistent['median_wall_s']:.1f}x faster)")


if __name__ == "__main__":
    raise SystemExit(main())
