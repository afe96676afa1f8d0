"""Accuracy of castline's per-turn timings inside a window (castline.render.alignment).

A window is simulated with real speech: consecutive turns of the 45-minute VibeVoice demo script
are rendered one by one with the two offline voices and joined with pauses (200–700 ms, as a
multi-speaker model leaves between turns), with room tone at −55 dBFS under the whole window, so the true boundaries are known. The estimator
sees only the joined waveform and the line texts. Prints the error distribution in ms, for the
estimator and for the plain text-proportional guess it starts from.

    .venv/bin/python bench/window_timing.py [--windows 30]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.render.alignment import expected_boundaries, line_boundaries
from castline.audio.resample import resample
from castline.dsp.edges import speech_bounds
from castline.engines.registry import engine_class
from castline.script.plaintext_format import parse_plaintext
from castline.voices.profiles import load_voice_library

REPO = Path(__file__).resolve().parents[1]
SCRIPT = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / \
    "scripts" / "4p_climate_45min.txt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=30)
    parser.add_argument("--lines", type=int, default=4)
    args = parser.parse_args()
    library = load_voice_library(REPO / "voices")
    voices = {"1": library.get("heart"), "2": library.get("joe"), "3": library.get("heart"), "4": library.get("joe")}
    engines = {name: engine_class(name)() for name in ("hibari", "piper")}
    script = parse_plaintext(SCRIPT.read_text(encoding="utf-8"), str(SCRIPT))
    turns = [turn for turn in script.turns if len(turn.text) < 400]
    rng = np.random.default_rng(0)
    errors, naive = [], []
    for window in range(args.windows):
        lines = turns[window * args.lines:(window + 1) * args.lines]
        parts, truth, position, previous_offset = [], [], 0, 0
        for index, turn in enumerate(lines):
            voice = voices[turn.speaker]
            engine = engines[voice.engine]
            [audio] = engine.synthesize([turn.text], voice, [window])
            audio = resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
            onset, offset = speech_bounds(audio, PROJECT_SAMPLE_RATE, keep_ms=0)
            if index:
                pause = np.zeros(int(rng.uniform(0.2, 0.7) * PROJECT_SAMPLE_RATE), np.float32)
                parts.append(pause)
                # The true gap runs from the last speech of the previous turn to the first of this one
                # (each clip's own leading/trailing silence is part of the pause a listener hears).
                truth.append((previous_offset, position + pause.size + onset))
                position += pause.size
            parts.append(audio)
            previous_offset = position + offset
            position += audio.size
        joined = np.concatenate(parts)
        joined = joined + (rng.standard_normal(joined.size) * 10 ** (-55 / 20)).astype(np.float32)
        texts = [turn.text for turn in lines]
        found = line_boundaries(joined, PROJECT_SAMPLE_RATE, texts)
        guess = expected_boundaries(texts, joined.size)
        # A boundary anywhere inside the pause is right: error = distance to the pause.
        for (pause_start, true_start), estimate, proportional in zip(truth, found, guess):
            for value, sink in ((estimate, errors), (proportional, naive)):
                distance = 0 if pause_start <= value <= true_start else min(abs(value - pause_start),
                                                                             abs(value - true_start))
                sink.append(1000 * distance / PROJECT_SAMPLE_RATE)
    for label, values in (("pause snapping (castline)", errors), ("text-proportional guess", naive)):
        values = np.array(values)
        print(f"{label:28s} boundaries={values.size} median={np.median(values):6.0f} ms  "
              f"p90={np.percentile(values, 90):6.0f} ms  max={values.max():6.0f} ms  "
              f"within 50 ms={np.mean(values <= 50):.0%}")


if __name__ == "__main__":
    main()
