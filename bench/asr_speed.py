"""Seconds to transcribe 60 s of real hibari speech with Whisper base int8 (the offline QA recogniser).

Usage: python bench/asr_speed.py [--beams 1,5] [--repeat N] [--words] [--workers]

Prints wall seconds (best of ``--repeat``) for a 5 s clip, and for the minute (with its WER
against the script) with 1 and 2 CPU threads per model, for each beam size. ``--words`` adds
word timestamps; ``--workers`` also times two 1-thread transcribers side by side on the two
30 s halves (the per-thread pool's layout). Synthesis and model loading are not timed.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.registry import engine_class
from castline.qa.asr import Transcriber
from castline.qa.wer import score
from castline.voices.profiles import load_voice_library

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
    """60 s of hibari `heart` at the project rate (whole sentences, then silence), and the text spoken."""
    engine = engine_class("hibari")()
    voice = load_voice_library("voices").get("heart")
    rate = engine.capabilities.sample_rate
    target = int(TARGET_S * PROJECT_SAMPLE_RATE)
    pause = np.zeros(int(PAUSE_S * PROJECT_SAMPLE_RATE), dtype=np.float32)
    pieces, spoken, length = [], [], 0
    for index, sentence in enumerate(PASSAGE * 2):
        [audio] = engine.synthesize([sentence], voice, [index])
        audio = resample(audio, rate, PROJECT_SAMPLE_RATE)
        if length + audio.size > target:
            break
        pieces += [audio, pause]
        spoken.append(sentence)
        length += audio.size + pause.size
    minute = np.zeros(target, dtype=np.float32)
    joined = np.concatenate(pieces)[:target]
    minute[: joined.size] = joined
    return minute, " ".join(spoken)


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
    # Whisper encodes a whole 30 s window however short the clip: a 5 s line is not 12x cheaper.
    line = Transcriber(threads=1, beam_size=beams[0])
    line.transcribe(audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)
    elapsed, _ = best_time(line, audio[: 5 * PROJECT_SAMPLE_RATE], args.repeat, False)
    print(f"threads=1 beam={beams[0]}: one 5 s clip: {elapsed:6.2f} s")
    line.close()
    for threads in (1, 2):
        for beam in beams:
            transcriber = Transcriber(threads=threads, beam_size=beam)
            transcriber.transcribe(audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)  # load + warm up
            for words in (False, True) if args.words else (False,):
                elapsed, text = best_time(transcriber, audio, args.repeat, words)
                result = score(reference, text)
                print(f"threads={threads} beam={beam} words={'on' if words else 'off'}: {elapsed:6.2f} s "
                      f"(RTF {elapsed / seconds:.3f}), WER {result.wer:.3f}")
            transcriber.close()

    if args.workers:
        halves = [audio[: audio.size // 2], audio[audio.size // 2:]]
        workers = [Transcriber(threads=1, beam_size=beams[0]) for _ in halves]
        for worker in workers:
            worker.transcribe(audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)
        runners = [threading.Thread(target=worker.transcribe, args=(half, PROJECT_SAMPLE_RATE))
                   for worker, half in zip(workers, halves)]
        start = time.perf_counter()
        for runner in runners:
            runner.start()
        for runner in runners:
            runner.join()
        elapsed = time.perf_counter() - start
        print(f"2 workers x 1 thread, beam={beams[0]}, two 30 s halves side by side: {elapsed:6.2f} s "
              f"(RTF {elapsed / seconds:.3f})")


if __name__ == "__main__":
    main()
