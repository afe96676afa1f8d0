"""Speaking rate of the offline voices, as QA's timing check measures it (words per minute of speech time).

Renders the same English sentences from the VibeVoice demo scripts with each voice, alone and in
runs of three consecutive sentences, and prints per voice: the distribution of
``speech_rate_check`` values, the most extreme texts, a band for the voice profile's
``words_per_minute`` (every clean render at least 10 % inside it), and how often that band and
the default one flag the clean renders and the same renders played 1.5× faster or 0.6× as fast.

    .venv/bin/python bench/speech_rate.py [--voices heart,joe] [--count 60]
"""

from __future__ import annotations

import argparse
import math
import os
import re
from pathlib import Path

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.registry import engine_class
from castline.render.chunking import split_sentences
from castline.qa.signal_checks import MIN_WORDS_FOR_RATE, WORDS_PER_MINUTE_BAND, count_words, speech_rate_check
from castline.voices.profiles import load_voice_library

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / "scripts"
SOURCES = ("1p_abs.txt", "1p_vibevoice.txt", "2p_goat.txt", "2p_music.txt", "3p_gpt5.txt")
SPEAKER = re.compile(r"^\s*Speaker\s+\d+\s*:\s*")
SPEEDS = {"clean": 1.0, "1.5x faster": 1.5, "0.6x as fast": 0.6}


def sentences() -> list[str]:
    found = []
    for name in SOURCES:
        for line in (SCRIPTS / name).read_text(encoding="utf-8").splitlines():
            text = SPEAKER.sub("", line).strip()
            found += [text[start:end] for start, end in split_sentences(text)]
    return [s for s in found if count_words(s) >= MIN_WORDS_FOR_RATE and s.isascii()]


def texts(count: int) -> list[str]:
    """``count`` single sentences spread over the pool, then ``count`` runs of three."""
    pool = sentences()
    singles = pool[::max(1, len(pool) // count)][:count]
    triples = [" ".join(pool[i:i + 3]) for i in range(1, len(pool) - 3, max(3, (len(pool) - 3) // count))][:count]
    return singles + triples


def flagged(rates: np.ndarray, band: tuple[float, float]) -> str:
    share = np.mean((rates < band[0]) | (rates > band[1]))
    return f"{share:6.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voices", default="heart,joe")
    parser.add_argument("--count", type=int, default=60, help="texts of each kind per voice")
    args = parser.parse_args()
    library = load_voice_library(REPO / "voices")
    items = texts(args.count)
    for voice_id in args.voices.split(","):
        voice = library.get(voice_id)
        engine = engine_class(voice.engine)()
        rates: dict[str, list[float]] = {name: [] for name in SPEEDS}
        extremes = []
        for seed, text in enumerate(items):
            [audio] = engine.synthesize([text], voice, [seed])
            audio = resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
            for name, speed in SPEEDS.items():
                # resampled as if recorded at speed × the rate: played faster (or slower), pitch moves too
                played = resample(audio, int(PROJECT_SAMPLE_RATE * speed), PROJECT_SAMPLE_RATE) if speed != 1 else audio
                rates[name].append(speech_rate_check(played, PROJECT_SAMPLE_RATE, text).value)
            extremes.append((rates["clean"][-1], count_words(text), text))
        engine.close()
        arrays = {name: np.array([r for r in values if math.isfinite(r)]) for name, values in rates.items()}
        clean = arrays["clean"]
        singles, triples = clean[:args.count], clean[args.count:]
        for kind, values in (("single sentences", singles), ("three-sentence chunks", triples)):
            low, p5, median, p95, high = np.percentile(values, [0, 5, 50, 95, 100])
            print(f"{voice_id} ({voice.engine}), {values.size} {kind}: min {low:.0f}, p5 {p5:.0f}, "
                  f"median {median:.0f}, p95 {p95:.0f}, max {high:.0f} wpm")
        extremes.sort()
        for rate, words, text in extremes[:3] + extremes[-3:]:
            print(f"    {rate:5.0f} wpm, {words:2d} words: {text[:70]!r}")
        band = (math.floor(clean.min() / 1.1 / 5) * 5, math.ceil(clean.max() * 1.1 / 5) * 5)
        print(f"{voice_id}: median {np.median(clean):.0f} wpm over {clean.size}; band with every clean render "
              f"10 % inside: words_per_minute: [{band[0]}, {band[1]}]")
        for label, candidate in (("default", WORDS_PER_MINUTE_BAND), ("measured", band),
                                 ("profile", voice.words_per_minute or WORDS_PER_MINUTE_BAND)):
            shares = ", ".join(f"{name} {flagged(values, candidate)}" for name, values in arrays.items())
            print(f"    {label:8s} band {candidate[0]:.0f}–{candidate[1]:.0f} flags: {shares}")


if __name__ == "__main__":
    main()
