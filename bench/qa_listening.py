"""Quick against careful listening: Whisper windows, CPU time and WER on bench/qa.py's episode.

Synthesises the same ~10-minute excerpt (bench/render.py's cast, the flow's seeds), then hears its
chunks in the batches the render flow gives 2 workers, once per listening setting, and prints the
windows used, Whisper's CPU seconds (one thread), the mean and worst chunk WER and the chunks over
the 0.15 threshold. ``--speeds`` picks the quick speeds to try (20 s windows filled to 18.5 s); ``--models`` the Whisper
models (``base``, the bundled one; ``tiny.en``; or a model path).

    .venv/bin/python bench/qa_listening.py [--words 1500] [--workers 2] [--speeds 1.25 1.5 1.75] [--models base tiny.en]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import synthesised_excerpt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--speeds", type=float, nargs="+", default=[1.25, 1.5, 1.75])
    parser.add_argument("--models", nargs="+", default=["base"],
                        help="Whisper models to compare: base (the bundled one), tiny.en, or a model path")
    args = parser.parse_args()

    from castline import PROJECT_SAMPLE_RATE
    from castline.qa.asr import get_transcriber
    from castline.qa.listening import CAREFUL, quick_listening
    from castline.qa.packing import hear_clips
    from castline.qa.settings import QASettings
    from castline.qa.wer import score
    from castline.render.synthesis import batch_jobs

    plan, audio = synthesised_excerpt(args.words)
    batches = batch_jobs(plan.jobs, args.workers)
    minutes = sum(clip.size for clip in audio.values()) / PROJECT_SAMPLE_RATE / 60
    settings = QASettings()
    print(f"{len(audio)} chunks, {minutes:.1f} min of audio, {len(batches)} batches (the flow's for "
          f"{args.workers} workers), int8, 1 thread; 'doubted': over the engine's WER threshold or truncated\n")
    print("| model | listening | windows | Whisper CPU s | mean WER | worst WER | chunks over 0.15 | doubted |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.models:
        transcriber = get_transcriber(None if name == "base" else name)
        transcriber.transcribe(audio[0][:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)  # load + warm up
        windows: list[int] = []
        original = transcriber.transcribe_batch

        def counted(clips, sample_rate, language="en", _original=original, **options):
            windows.append(len(clips))
            return _original(clips, sample_rate, language, **options)

        transcriber.transcribe_batch = counted
        for listening in [CAREFUL] + [quick_listening(speed) for speed in args.speeds]:
            windows.clear()
            started = time.process_time()
            heard = {job.index: transcript for batch in batches
                     for job, transcript in zip(batch, hear_clips([audio[job.index] for job in batch],
                                                                  PROJECT_SAMPLE_RATE, transcriber, language="en",
                                                                  listening=listening))}
            cpu = time.process_time() - started
            scores = {job.index: score(job.text, heard[job.index].text) for job in plan.jobs if job.window is None}
            wers = {index: result.wer for index, result in scores.items()}
            over = sorted(index for index, wer in wers.items() if wer > 0.15)
            doubted = sorted(job.index for job in plan.jobs if job.index in scores and (
                scores[job.index].wer > settings.wer_threshold_for(job.engine, "en") or scores[job.index].truncated))
            label = "careful (1.0x, 30 s windows)" if listening == CAREFUL else \
                f"quick {listening.exact_speed:g}x, {listening.window_s:g} s windows"
            print(f"| {name} | {label} | {sum(windows)} | {cpu:.1f} | {np.mean(list(wers.values())):.3f} | "
                  f"{max(wers.values()):.2f} | {len(over)} {over if over else ''} | {len(doubted)} "
                  f"{doubted if doubted else ''} |", flush=True)
        transcriber.transcribe_batch = original


if __name__ == "__main__":
    main()
