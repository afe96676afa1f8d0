"""Render benchmark: `castline render` wall time vs the engines' raw synthesis of the same text.

Takes the first ~10 minutes of the 45-minute VibeVoice demo script (4 speakers, cast onto the
two offline voices), then measures in separate processes:
  1. raw synthesis: each engine called directly, chunk after chunk, one process, one thread each
     (what a user would script by hand), no post-production;
  2. `castline render` (fresh store): total wall time, Prefect start-up (wall minus the flow's own
     stage timings) reported separately;
  3. the same render again, unchanged (everything from the cache).

    .venv/bin/python bench/render.py [--words 1500] [--workers 2]
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

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / "scripts"
CAST = ["1=heart", "2=joe", "3=heart", "4=joe"]


def excerpt(words: int, target: Path) -> Path:
    lines, count = [], 0
    for line in (CORPUS / "4p_climate_45min.txt").read_text(encoding="utf-8").splitlines():
        if line.strip():
            lines.append(line)
            count += len(line.split()) - 2
        if count >= words:
            break
    target.write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return target


def synthesised_excerpt(words: int):
    """The excerpt's render plan and each chunk's take as the flow seeds it: (plan, {chunk index:
    float32 mono audio at the project rate}), every engine called directly in this process."""
    from castline import PROJECT_SAMPLE_RATE
    from castline.audio.resample import resample
    from castline.engines.registry import engine_class
    from castline.render.options import RenderOptions, parse_cast
    from castline.render.plan import prepare_render

    with tempfile.TemporaryDirectory(prefix="castline-bench-excerpt-") as folder:
        script = excerpt(words, Path(folder) / "episode.txt")
        plan = prepare_render(RenderOptions(script=str(script), cast=parse_cast(CAST), voices_dir=str(REPO / "voices")))
    engines, audio = {}, {}
    for job in plan.jobs:
        engine = engines.get(job.engine) or engines.setdefault(job.engine, engine_class(job.engine)())
        [native] = engine.synthesize([job.text], plan.voice(job.voice_id), [job.seed])
        audio[job.index] = resample(native, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
    return plan, audio


def raw_synthesis(script: Path) -> dict:
    code = f"""
import json, time
from castline.render.options import RenderOptions, parse_cast
from castline.render.plan import prepare_render
from castline.engines.registry import engine_class
plan = prepare_render(RenderOptions(script={str(script)!r}, cast=parse_cast({CAST!r}), voices_dir={str(REPO / 'voices')!r}))
engines = {{}}
started = time.perf_counter()
audio_s = 0.0
for job in plan.jobs:
    engine = engines.get(job.engine) or engines.setdefault(job.engine, engine_class(job.engine)())
    [audio] = engine.synthesize([job.text], plan.voice(job.voice_id), [job.seed])
    audio_s += audio.size / engine.capabilities.sample_rate
print(json.dumps({{"synthesis_s": time.perf_counter() - started, "audio_s": audio_s, "chunks": len(plan.jobs)}}))
"""
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def castline_render(script: Path, out: Path, workers: int, *extra: str) -> dict:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(out), "--quiet",
                    "--workers", str(workers), "--voices-dir", str(REPO / "voices"), "--cast", *CAST,
                    # the render pipeline alone; QA's cost is measured by bench/qa.py
                    "--qa", "off", *extra],
                   check=True, capture_output=True, text=True)
    wall = time.perf_counter() - started
    manifest = json.loads(next(out.glob("*/manifest.json")).read_text(encoding="utf-8"))
    stages = manifest["render"]["timings_s"]
    return {"wall_s": wall, "stages_s": stages, "pipeline_s": sum(stages.values()),
            "rendered": manifest["render"]["chunks_rendered"], "reused": manifest["render"]["chunks_reused"],
            "audio_s": manifest["duration_seconds"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="castline-bench-render-") as folder:
        os.environ.setdefault("CASTLINE_HOME", str(Path(folder) / "home"))
        script = excerpt(args.words, Path(folder) / "episode_10min.txt")
        raw = raw_synthesis(script)
        first = castline_render(script, Path(folder) / "out", args.workers)
        again = castline_render(script, Path(folder) / "out", args.workers)
        forced = castline_render(script, Path(folder) / "out", args.workers, "--force")
    print(f"\nrender benchmark: {raw['chunks']} chunks, {first['audio_s'] / 60:.1f} min episode, "
          f"{args.workers} workers, {os.cpu_count()} CPUs\n")
    print("| measurement | seconds | ratio |")
    print("|---|---|---|")
    print(f"| raw engine synthesis, sequential (audio {raw['audio_s']:.0f} s) | {raw['synthesis_s']:.1f} | 1.00 |")
    print(f"| castline render, flow stages (plan+synth+stitch+master+encode) | {first['pipeline_s']:.1f} | "
          f"{first['pipeline_s'] / raw['synthesis_s']:.2f}x raw |")
    print(f"| castline render, whole command | {first['wall_s']:.1f} | {first['wall_s'] / raw['synthesis_s']:.2f}x raw |")
    print(f"| of which Prefect start-up, imports and publish | {first['wall_s'] - first['pipeline_s']:.1f} | |")
    print(f"| unchanged re-render (up to date: nothing runs), whole command | {again['wall_s']:.1f} | "
          f"{again['wall_s'] / first['wall_s']:.1%} of first |")
    print(f"| forced re-render (--force: {forced['rendered']} synthesised, {forced['reused']} reused), whole command | "
          f"{forced['wall_s']:.1f} | {forced['wall_s'] / first['wall_s']:.1%} of first |")
    print(f"| forced re-render, flow stages | {forced['pipeline_s']:.1f} | "
          f"{forced['pipeline_s'] / first['pipeline_s']:.1%} of first |")
    print(f"\nstages, first render:  {json.dumps({k: round(v, 2) for k, v in first['stages_s'].items()})}")
    print(f"stages, forced render: {json.dumps({k: round(v, 2) for k, v in forced['stages_s'].items()})}")


if __name__ == "__main__":
    main()
