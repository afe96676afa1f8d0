"""Quick against careful listening: Whisper windows, CPU time and WER on bench/qa.py's episode.

Synthesises the same ~10-minute excerpt (bench/render.py's cast, the flow's seeds), then hears its
chunks in the batches the render flow gives 2 workers, once per listening setting, and prints the
windows used, Whisper's CPU seconds (one thread), the mean and worst chunk WER and the chunks over
the 0.15 threshold. ``--speeds`` picks the quick speeds to try (20 s windows filled to 18.5 s).

    .venv/bin/python bench/qa_listening.py [--words 1500] [--workers 2] [--speeds 1.25 1.5 1.75]
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
    args = parser.parse_args()

    from castline import PROJECT_SAMPLE_RATE
    from castline.qa.asr import get_transcriber
    from castline.qa.listening import CAREFUL, quick_listening
    from castline.qa.packing import hear_clips
    from castline.qa.wer import score
    from castline.render.synthesis import batch_jobs

    plan, audio = synthesised_excerpt(args.words)
    batches = batch_jobs(plan.jobs, args.workers)
    minutes = sum(clip.size for clip in audio.values()) / PROJECT_SAMPLE_RATE / 60
    transcriber = get_transcriber(None)
    transcriber.transcribe(audio[0][:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)  # load + warm up
    windows: list[int] = []
    original = transcriber.transcribe_batch

    def counted(clips, sample_rate, language="en", **options):
        windows.append(len(clips))
        return original(clips, sample_rate, language, **options)

    transcriber.transcribe_batch = counted
    print(f"{len(audio)} chunks, {minutes:.1f} min of audio, {len(batches)} batches (the flow's for "
          f"{args.workers} workers), Whisper base int8, 1 thread\n")
    print("| listening | windows | Whisper CPU s | mean WER | worst WER | chunks over 0.15 |")
    print("|---|---|---|---|---|---|")
    for listening in [CAREFUL] + [quick_listening(speed) for speed in args.speeds]:
        windows.clear()
        started = time.process_time()
        heard = {job.index: transcript for batch in batches
                 for job, transcript in zip(batch, hear_clips([audio[job.index] for job in batch], PROJECT_SAMPLE_RATE,
                                                              transcriber, language="en", listening=listening))}
        cpu = time.process_time() - started
        wers = {job.index: score(job.text, heard[job.index].text).wer for job in plan.jobs if job.window is None}
        over = sorted(index for index, wer in wers.items() if wer > 0.15)
        label = "careful (1.0x, 30 s windows)" if listening == CAREFUL else \
            f"quick {listening.exact_speed:g}x, {listening.window_s:g} s windows"
        print(f"| {label} | {sum(windows)} | {cpu:.1f} | {np.mean(list(wers.values())):.3f} | "
              f"{max(wers.values()):.2f} | {len(over)} {over if over else ''} |")


if __name__ == "__main__":
    main()
