"""QA cost: QA time as a fraction of render time for a ~10-minute episode on CPU (Whisper base).

Renders the first ~10 minutes of the 45-minute demo script (4 speakers on the two offline voices)
twice into fresh stores, with `--qa off` and with `--qa warn`, and compares the flow's own stage
timings (Prefect start-up excluded). QA time = the extra synthesis-stage time (every chunk
transcribed and checked, retries included) + the episode QA stage (seams, speakers, report).

    .venv/bin/python bench/qa.py [--words 1500] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import CAST, REPO, excerpt  # noqa: E402


def render(script: Path, out: Path, workers: int, qa: str) -> dict:
    import subprocess
    import time

    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "castline", "render", str(script), "--out", str(out), "--quiet",
                    "--workers", str(workers), "--voices-dir", str(REPO / "voices"), "--cast", *CAST, "--qa", qa],
                   check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    return {"wall_s": wall, "stages": manifest["render"]["timings_s"], "audio_s": manifest["duration_seconds"],
            "qa": manifest.get("qa")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="castline-bench-qa-") as folder:
        os.environ.setdefault("CASTLINE_HOME", str(Path(folder) / "home"))
        script = excerpt(args.words, Path(folder) / "episode_10min.txt")
        off = render(script, Path(folder) / "off", args.workers, "off")
        on = render(script, Path(folder) / "on", args.workers, "warn")
    pipeline_off = sum(off["stages"].values())
    pipeline_on = sum(on["stages"].values())
    qa_s = (on["stages"]["synthesise"] - off["stages"]["synthesise"]) + on["stages"].get("qa", 0.0)
    print(f"\nQA benchmark: {on['audio_s'] / 60:.1f} min episode, {args.workers} workers, {os.cpu_count()} CPUs, "
          f"Whisper base int8\n")
    print("| measurement | seconds |")
    print("|---|---|")
    print(f"| render, --qa off (flow stages) | {pipeline_off:.1f} |")
    print(f"| render, --qa warn (flow stages) | {pipeline_on:.1f} |")
    print(f"| of which QA (extra synthesis-stage time + episode QA stage) | {qa_s:.1f} |")
    print(f"| QA as a fraction of the render without QA | {qa_s / pipeline_off:.0%} |")
    print(f"| whole command, --qa off / --qa warn | {off['wall_s']:.1f} / {on['wall_s']:.1f} |")
    summary = on["qa"] or {}
    print(f"\nverdict {summary.get('verdict')}: {summary.get('passed')} of {summary.get('chunks')} chunks passed, "
          f"{summary.get('retried')} retried; episode flags {summary.get('episode_flags')}")
    print(f"stages off: {json.dumps({k: round(v, 2) for k, v in off['stages'].items()})}")
    print(f"stages on:  {json.dumps({k: round(v, 2) for k, v in on['stages'].items()})}")


if __name__ == "__main__":
    main()
