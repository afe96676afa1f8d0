"""Dub a long programme in two languages: wall time, peak memory, and how the cues were fitted.

A synthetic programme (default 30 minutes, ~400 cues, 48 kHz stereo background of noise and
tones, written in blocks) with Spanish and German cue files sharing the same timings; slot
lengths vary around the espeak-ng fallback's natural pace so that some cues fit, some need
rate, stretch or borrowed silence, and a few overrun. The dub runs as the real command
(`castline dub … --quiet`, Prefect flow included) in a child process; peak RSS is that process
tree's largest resident set (ru_maxrss of waited children: castline's process, or an ffmpeg it ran).

    .venv/bin/python bench/dub.py                 # 30 minutes, 400 cues
    .venv/bin/python bench/dub.py --minutes 5     # a quicker look
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

RATE = 48_000
REPO = Path(__file__).resolve().parents[1]
WORDS = {
    "es": ("hola buenas noches gracias claro ahora mañana siempre nunca ciudad trabajo verdad tiempo casa "
           "camino noche puerta mensaje amigo familia cuidado pregunta respuesta momento historia").split(),
    "de": ("hallo guten abend danke natürlich jetzt morgen immer niemals stadt arbeit wahrheit zeit haus "
           "weg nacht tür nachricht freund familie vorsicht frage antwort moment geschichte").split(),
}
SPEAKERS = ("ANA", "LUIS", "MARTA")


def _clock(ms: int) -> str:
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d},{millis:03d}"


def write_programme(folder: Path, minutes: float, cues: int, seed: int) -> tuple[Path, list[Path]]:
    rng = np.random.default_rng(seed)
    total = int(minutes * 60 * RATE)
    background = folder / "programme.wav"
    with soundfile.SoundFile(str(background), "w", samplerate=RATE, channels=2, subtype="PCM_24") as writer:
        for start in range(0, total, 1 << 18):
            count = min(1 << 18, total - start)
            t = (start + np.arange(count)) / RATE
            music = 0.08 * np.sin(2 * np.pi * 110 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.05 * t))
            block = np.stack([music, np.roll(music, 7)], axis=1) + 0.02 * rng.standard_normal((count, 2))
            writer.write(block.astype(np.float32))
    picker = random.Random(seed)
    spacing_ms = minutes * 60_000 / cues
    timings, at = [], 1000.0
    for _ in range(cues):
        words = picker.randint(3, 12)
        slot = max(600, int(words * picker.uniform(260, 520)))  # ~natural pace is ~400 ms a word here
        gap = max(0, int(spacing_ms - slot + picker.uniform(-600, 600)))
        timings.append((int(at), int(at) + slot, words))
        at += slot + gap
    timings = [t for t in timings if t[1] < minutes * 60_000 - 500]
    files = []
    for language, vocabulary in WORDS.items():
        blocks = []
        for number, (start, end, words) in enumerate(timings, start=1):
            text = " ".join(picker.choice(vocabulary) for _ in range(words)).capitalize() + "."
            blocks.append(f"{number}\n{_clock(start)} --> {_clock(end)}\n{SPEAKERS[number % 3]}: {text}\n")
        path = folder / f"programme.{language}.srt"
        path.write_text("\n".join(blocks), encoding="utf-8")
        files.append(path)
    return background, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--cues", type=int, default=None, help="cues per language (default: 400 per 30 minutes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()
    cues = args.cues or round(400 * args.minutes / 30)
    folder = Path(tempfile.mkdtemp(prefix="castline-bench-dub-"))
    try:
        background, files = write_programme(folder, args.minutes, cues, args.seed)
        command = [str(REPO / ".venv" / "bin" / "castline"), "dub", "--background", str(background), "--out",
                   str(folder / "out"), "--quiet"]
        for path in files:
            command += ["--cues", str(path)]
        env = {**os.environ, "CASTLINE_HOME": str(folder / "home"), "CASTLINE_VOICES_DIR": str(REPO / "voices")}
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        if completed.returncode != 0:
            sys.exit(f"dub failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
        print(f"programme: {args.minutes:g} min, 48 kHz stereo background, "
              f"{len(files)} languages x {sum(1 for _ in open(files[0], encoding='utf-8') if '-->' in _)} cues")
        print(f"command: {' '.join(Path(part).name if part.startswith('/') else part for part in command)}")
        print(f"wall time: {wall:.1f} s   peak RSS: {peak_mib:.0f} MiB")
        print(f"{'language':<9} {'cues':>5} {'fits':>5} {'rate':>6} {'stretched':>10} {'borrowed':>9} "
              f"{'overrun':>8} {'voice s':>8} {'mix s':>6} {'LUFS':>7}")
        for manifest_path in sorted((folder / "out").glob("programme/*/manifest.json")):
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            fit, timings = manifest["fit"], manifest["render"]["timings_s"]
            lufs = manifest["files"][0]["integrated_lufs"]
            print(f"{manifest['language']:<9} {fit['cues']:>5} {fit['fits_as_is'] / fit['cues']:>5.0%} "
                  f"{fit['share_rate']:>6.0%} {fit['share_stretched']:>10.0%} {fit['share_borrowed']:>9.0%} "
                  f"{fit['share_overrun']:>8.0%} {timings['voice']:>8.1f} {timings['mix']:>6.1f} {lufs:>7.2f}")
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
