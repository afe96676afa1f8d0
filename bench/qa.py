"""QA cost: QA time as a fraction of render time for a ~10-minute episode on CPU (Whisper base).

Renders the first ~10 minutes of the 45-minute demo script (4 speakers on the two offline voices)
twice into fresh stores, with `--qa off` and with `--qa warn`, and compares the flow's own stage
timings (Prefect start-up excluded). QA time = the extra synthesis-stage time (every chunk
transcribed and checked, retries included) + the episode QA stage (seams, speakers, report).
Also reports each command's CPU time (user + system, the render process and its children), which
moves less than wall time when other work shares the machine. ``--repeat N`` alternates N
off/on pairs and reports each pair and the median.

    .venv/bin/python bench/qa.py [--words 1500] [--workers 2] [--repeat 1] [--qa-flags='--qa-quick-model same']
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
from collections import Counter
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import CAST, REPO, excerpt  # noqa: E402


def render(script: Path, out: Path, workers: int, qa: str, *extra: str) -> dict:
    import subprocess
    import time

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(out), "--quiet",
                           "--workers", str(workers), "--voices-dir", str(REPO / "voices"), "--cast", *CAST,
                           "--qa", qa, *extra], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"render --qa {qa} {' '.join(extra)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    manifest_path = next(out.glob("*/manifest.json"))
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    qa_json = manifest_path.parent / "releases" / str(manifest.get("release")) / "qa.json"
    chunks = json.loads(qa_json.read_text(encoding="utf-8"))["chunks"] if qa_json.is_file() else []
    return {"wall_s": wall, "cpu_s": cpu, "stages": manifest["render"]["timings_s"],
            "audio_s": manifest["duration_seconds"], "qa": manifest.get("qa"),
            "retried": [chunk for chunk in chunks if chunk["attempts"] > 1 or not chunk["passed"]],
            "heard_by": dict(Counter(chunk.get("asr_model") for chunk in chunks))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="off/on pairs, alternated")
    parser.add_argument("--qa-flags", default="", help="more flags for the --qa warn render, e.g. "
                                                       "--qa-flags='--qa-quick-model same'")
    args = parser.parse_args()
    pairs = []
    with tempfile.TemporaryDirectory(prefix="castline-bench-qa-") as folder:
        os.environ.setdefault("CASTLINE_HOME", str(Path(folder) / "home"))
        script = excerpt(args.words, Path(folder) / "episode_10min.txt")
        for run in range(args.repeat):
            off = render(script, Path(folder) / f"off{run}", args.workers, "off")
            on = render(script, Path(folder) / f"on{run}", args.workers, "warn", *args.qa_flags.split())
            pairs.append((off, on))
            qa_s = on["stages"]["synthesise"] - off["stages"]["synthesise"] + on["stages"].get("qa", 0.0)
            print(f"pair {run + 1}: flow stages off {sum(off['stages'].values()):.1f} s, on "
                  f"{sum(on['stages'].values()):.1f} s, QA {qa_s:.1f} s = {qa_s / sum(off['stages'].values()):.0%}; "
                  f"CPU {off['cpu_s']:.1f} / {on['cpu_s']:.1f} s; judged by {on['heard_by']}", flush=True)
    rows = []
    for off, on in pairs:
        pipeline_off = sum(off["stages"].values())
        pipeline_on = sum(on["stages"].values())
        qa_s = (on["stages"]["synthesise"] - off["stages"]["synthesise"]) + on["stages"].get("qa", 0.0)
        rows.append({"off": pipeline_off, "on": pipeline_on, "qa": qa_s, "fraction": qa_s / pipeline_off,
                     "wall": (off["wall_s"], on["wall_s"]), "cpu": (off["cpu_s"], on["cpu_s"])})
    off, on = pairs[-1]
    print(f"\nQA benchmark: {on['audio_s'] / 60:.1f} min episode, {args.workers} workers, {os.cpu_count()} CPUs, "
          f"Whisper int8, QA flags {args.qa_flags or '(defaults)'}, {len(pairs)} off/on pair(s)\n")
    print("| measurement | seconds |" + "".join(f" run {i + 1} |" for i in range(len(rows) - 1)))
    print("|---|---|" + "---|" * (len(rows) - 1))
    ordered = rows[-1:] + rows[:-1]  # the last run first, then the others

    def line(label, values):
        print(f"| {label} | " + " | ".join(values) + " |")

    line("render, --qa off (flow stages)", [f"{row['off']:.1f}" for row in ordered])
    line("render, --qa warn (flow stages)", [f"{row['on']:.1f}" for row in ordered])
    line("of which QA (extra synthesis-stage time + episode QA stage)", [f"{row['qa']:.1f}" for row in ordered])
    line("QA as a fraction of the render without QA", [f"{row['fraction']:.0%}" for row in ordered])
    line("whole command, --qa off / --qa warn", [f"{row['wall'][0]:.1f} / {row['wall'][1]:.1f}" for row in ordered])
    line("CPU time of the whole command, --qa off / --qa warn",
         [f"{row['cpu'][0]:.1f} / {row['cpu'][1]:.1f}" for row in ordered])
    if len(rows) > 1:
        each = ", ".join(format(row["fraction"], ".0%") for row in rows)
        extra_cpu = statistics.median(row["cpu"][1] - row["cpu"][0] for row in rows)
        print(f"\nmedian over {len(rows)} pairs: QA {statistics.median(r['fraction'] for r in rows):.0%} of the render "
              f"without QA (each pair: {each}); extra CPU time with QA: median {extra_cpu:.1f} s")
    summary = on["qa"] or {}
    print(f"\nverdict {summary.get('verdict')}: {summary.get('passed')} of {summary.get('chunks')} chunks passed, "
          f"{summary.get('retried')} retried; episode flags {summary.get('episode_flags')}; "
          f"judged by {on['heard_by']}")
    for chunk in on["retried"]:
        takes = "; ".join(f"take {a['attempt']}: WER {a['wer']:.2f} {','.join(a['flags']) or 'ok'}"
                          f"{' (kept)' if a['chosen'] else ''}" for a in chunk["attempt_log"])
        print(f"  chunk {chunk['index']} ({chunk['voice']}, {chunk['text'][:50]!r}…): {takes}")
    print(f"stages off: {json.dumps({k: round(v, 2) for k, v in off['stages'].items()})}")
    print(f"stages on:  {json.dumps({k: round(v, 2) for k, v in on['stages'].items()})}")


if __name__ == "__main__":
    main()
