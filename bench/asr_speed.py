"""Seconds to transcribe 60 s of real hibari speech with Whisper base int8 (the offline QA recogniser).

Usage: python bench/asr_speed.py [--beams 1,5] [--words] [--workers]

Prints wall seconds (best of ``--repeat``) and the WER against the script for 1 and 2 CPU threads
per model, for each beam size. ``--words`` adds word timestamps; ``--workers`` also times two
1-thread transcribers running side by side on two 30 s halves (the per-thread pool's layout).
Synthesis and model loading are not timed.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.registry import engine_class
from castline.qa import asr
from castline.qa.asr import Transcriber
from castline.qa.wer import score
from castline.voices import load_voice_library

PASSAGE = [
    "Welcome back to the show. Today we are talking about the quiet history of public libraries.",
    "In the eighteen hundreds, most towns had no free library at all, and books were expensive.",
    "Reading rooms changed that. Workers could borrow a novel, a newspaper, or a book about engines.",
    "By the nineteen twenties, many cities had built large branches with long tables and tall windows.",
    "Librarians kept careful records, and some of those ledgers still survive in local archives.",
    "Our guest has spent twenty years reading them, and she says they tell a surprising story.",
    "People borrowed far more poetry than anyone expected, especially during the long winters.",
    "After the break, we will hear how one small branch survived a flood and two fires.",
    "Stay with us. There is a lot more to come, including a few stories from our listeners.",
    "Thank you for listening, and remember to return your books on time.",
    "The next episode looks at railway timetables, and why they made every clock in the country agree.",
    "Before railways, each town kept its own time, set by the sun at noon in the market square.",
]
TARGET_S = 60.0
PAUSE_S = 0.35


def hibari_minute() -> tuple[np.ndarray, str]:
    """About 60 s of hibari `heart` at the project rate, and the text spoken."""
    engine = engine_class("hibari")()
    voice = load_voice_library("voices").get("heart")
    rate = engine.capabilities.sample_rate
    pieces, spoken, total_s = [], [], 0.0
    pause = np.zeros(int(PAUSE_S * PROJECT_SAMPLE_RATE), dtype=np.float32)
    for index, sentence in enumerate(PASSAGE * 2):
        [audio] = engine.synthesize([sentence], voice, [index])
        audio = resample(audio, rate, PROJECT_SAMPLE_RATE)
        pieces += [audio, pause]
        spoken.append(sentence)
        total_s += (audio.size + pause.size) / PROJECT_SAMPLE_RATE
        if total_s >= TARGET_S:
            break
    return np.concatenate(pieces)[: int(TARGET_S * PROJECT_SAMPLE_RATE)], " ".join(spoken)


def best_time(transcriber: Transcriber, audio: np.ndarray, repeat: int, words: bool) -> tuple[float, str]:
    times, text = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        text = transcriber.transcribe(audio, PROJECT_SAMPLE_RATE, word_timestamps=words).text
        times.append(time.perf_counter() - start)
    return min(times), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beams", default="1", help="comma-separated beam sizes (default 1)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--words", action="store_true", help="also time with word timestamps")
    parser.add_argument("--workers", action="store_true", help="also time 2 workers x 1 thread")
    args = parser.parse_args()

    audio, reference = hibari_minute()
    seconds = audio.size / PROJECT_SAMPLE_RATE
    print(f"audio: {seconds:.1f} s of hibari 'heart', {len(reference.split())} words")
    beams = [int(beam) for beam in args.beams.split(",")]
    for threads in (1, 2):
        transcriber = Transcriber(threads=threads)
        transcriber.transcribe(audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)  # load + warm up
        for beam in beams:
            asr.BEAM_SIZE = beam
            for words in (False, True) if args.words else (False,):
                elapsed, text = best_time(transcriber, audio, args.repeat, words)
                result = score(reference, text)
                print(f"threads={threads} beam={beam} words={'on' if words else 'off'}: {elapsed:6.2f} s "
                      f"(RTF {elapsed / seconds:.3f}), WER {result.wer:.3f}")
        transcriber.close()

    if args.workers:
        asr.BEAM_SIZE = beams[0]
        halves = [audio[: audio.size // 2], audio[audio.size // 2:]]
        workers = [Transcriber(threads=1) for _ in halves]
        for worker in workers:
            worker.transcribe(audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)
        threads = [threading.Thread(target=worker.transcribe, args=(half, PROJECT_SAMPLE_RATE))
                   for worker, half in zip(workers, halves)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - start
        print(f"2 workers x 1 thread, beam={beams[0]}, two 30 s halves side by side: {elapsed:6.2f} s "
              f"(RTF {elapsed / seconds:.3f})")


if __name__ == "__main__":
    main()
