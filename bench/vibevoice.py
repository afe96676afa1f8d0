"""VibeVoice engine benchmark: real-time factor and peak memory per window length × batch size.

Each (window length, batch size) runs in its own process: load the model, warm up (a one-frame
window per voice, which also fills the voice-prompt cache), then time a ``synthesize_windows`` call
of ``batch`` two-speaker windows of that length (the fastest of ``--repeats``). RTF = wall seconds /
audio seconds (lower is faster); peak memory is ``torch.cuda.max_memory_allocated`` on CUDA, the
process's peak RSS on CPU (model load included).

    .venv/bin/python bench/vibevoice.py --model DIR --device cpu|cuda [--windows-seconds 10 30 60] [--batch 1 2 4]

``--force-frames`` is for random test models only (tests/vibevoice_tiny.py builds one): such a model
never chooses to speak, so each window is forced to exactly its length in frames (7.5 per second).
Reference clips are synthetic voiced-speech stand-ins unless ``--reference WAV`` is given (twice for
two speakers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("CASTLINE_SHARED_DIR", REPO.parent / "shared")) / "corpus" / "vibevoice-demo" / "scripts"
FALLBACK_TEXT = ("We looked at the numbers again this morning, and honestly they tell a more interesting story than "
                 "the headline suggests. ")
CHARS_PER_SECOND = 14.0


def script_text(chars: int) -> list[str]:
    """About ``chars`` characters of dialogue, as lines (the demo corpus when present, else filler)."""
    source = CORPUS / "4p_climate_45min.txt"
    lines = []
    if source.is_file():
        for raw in source.read_text(encoding="utf-8").splitlines():
            if ":" in raw:
                lines.append(raw.split(":", 1)[1].strip())
    lines = [line for line in lines if line] or [FALLBACK_TEXT * 2]
    picked, total = [], 0
    while total < chars:
        line = lines[len(picked) % len(lines)][: max(20, chars - total)]
        picked.append(line)
        total += len(line)
    return picked


def references(folder: Path, given: list[str]) -> list[Path]:
    if given:
        return [Path(path) for path in given]
    import soundfile

    made = []
    for seed in (1, 2):
        path = folder / f"reference_{seed}.wav"
        soundfile.write(path, voiced_stand_in(8.0, seed), 24_000, subtype="FLOAT")
        made.append(path)
    return made


def voiced_stand_in(seconds: float, seed: int, sample_rate: int = 24_000):
    """A gliding harmonic series with syllable-rate modulation at about −20 dBFS (float32)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    time_s = np.arange(int(seconds * sample_rate)) / sample_rate
    f0 = 120 + 30 * seed + 30 * np.sin(2 * np.pi * 0.4 * time_s + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = sum(np.sin(k * phase) / k ** 2 for k in range(1, 20))
    envelope = 0.2 + 0.8 * np.abs(np.sin(2 * np.pi * 2.0 * time_s))
    signal = voiced * envelope + 0.01 * rng.standard_normal(time_s.size)
    return (0.1 * signal / np.sqrt(np.mean(signal ** 2))).astype(np.float32)


def measure_one(args: argparse.Namespace) -> dict:
    """Runs in a child process: one (window length, batch size) measurement, printed as JSON."""
    from castline.engines.base import EngineOptions, Window, WindowLine
    from castline.engines.vibevoice import VibeVoiceEngine
    from castline.voices.profiles import ReferenceAudio, VoiceProfile

    voices = tuple(VoiceProfile(voice_id=f"speaker{slot}", display_name=f"speaker{slot}", language="en",
                                engine="vibevoice", engine_voice="clone",
                                reference=ReferenceAudio(path=str(path), sha256=f"bench-{slot}"),
                                profile_hash=f"bench-{slot}-{path}")
                   for slot, path in enumerate(args.reference_paths))
    engine = VibeVoiceEngine(EngineOptions(model=args.model, device=args.device, dtype=args.dtype,
                                           diffusion_steps=args.diffusion_steps))
    engine.batch_size = args.batch[0]
    frames = round(args.windows_seconds[0] * 7.5)
    if args.force_frames:
        sys.path.insert(0, str(REPO / "tests"))
        from vibevoice_tiny import ForceAudioFrames

        engine.logits_processor_factory = lambda windows: [
            ForceAudioFrames([1 if window.estimated_seconds == 0 else frames for window in windows])]
    started = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - started
    warm = [Window(lines=(WindowLine(0, "Warm up."), WindowLine(1, "Ready.")), voices=voices, seed=0,
                   estimated_seconds=0)]
    engine.synthesize_windows(warm)
    lines = script_text(int(args.windows_seconds[0] * CHARS_PER_SECOND))
    windows = [Window(lines=tuple(WindowLine(index % len(voices), line) for index, line in enumerate(lines)),
                      voices=voices, seed=100 + number, estimated_seconds=args.windows_seconds[0])
               for number in range(args.batch[0])]
    import torch

    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    error, walls = "", []
    for _ in range(args.repeats):
        started = time.perf_counter()
        try:
            audio = engine.synthesize_windows(windows)
        except Exception as failure:  # reported in the table, not fatal for the other rows
            audio, error = [], str(failure)
            break
        if cuda:
            torch.cuda.synchronize()
        walls.append(time.perf_counter() - started)
    wall_s = min(walls) if walls else 0.0
    audio_s = sum(len(samples) for samples in audio) / engine.capabilities.sample_rate
    peak_mib = (torch.cuda.max_memory_allocated() if cuda
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"load_s": load_s, "wall_s": wall_s, "audio_s": audio_s, "peak_mib": peak_mib, "error": error,
            "device": str(engine._loaded.device), "dtype": str(engine._loaded.dtype).replace("torch.", "")}


def main() -> None:
    sys.path.insert(0, str(REPO))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="checkpoint directory or Hub id")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--windows-seconds", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--diffusion-steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2, help="timed calls per row; the fastest is reported")
    parser.add_argument("--reference", action="append", default=[], help="reference WAV (24 kHz mono); repeat")
    parser.add_argument("--force-frames", action="store_true",
                        help="random test models only: force each window to exactly its length in frames")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--reference-paths", nargs="*", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_one(args)))
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="castline-bench-vibevoice-") as folder:
        paths = [str(path) for path in references(Path(folder), args.reference)]
        for seconds in args.windows_seconds:
            for batch in args.batch:
                command = [sys.executable, __file__, "--one", "--model", args.model, "--device", args.device,
                           "--dtype", args.dtype, "--windows-seconds", str(seconds), "--batch", str(batch),
                           "--diffusion-steps", str(args.diffusion_steps), "--repeats", str(args.repeats),
                           "--reference-paths", *paths]
                if args.force_frames:
                    command.append("--force-frames")
                done = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
                if done.returncode != 0:
                    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
                    rows.append((seconds, batch, {"error": tail}))
                else:
                    rows.append((seconds, batch, json.loads(done.stdout.strip().splitlines()[-1])))
                print(f"  {seconds:g} s × {batch}: done", file=sys.stderr)
    first = next((result for _, _, result in rows if "device" in result), {})
    print(f"\nvibevoice benchmark: model {args.model}, {first.get('device', args.device)} "
          f"{first.get('dtype', args.dtype)}, {args.diffusion_steps} diffusion steps, {os.cpu_count()} CPUs, "
          f"fastest of {args.repeats}"
          f"{', forced frames (random test model)' if args.force_frames else ''}\n")
    memory = "peak GPU memory (MiB)" if args.device.startswith("cuda") else "peak RSS (MiB)"
    print(f"| window (s) | batch | audio (s) | wall (s) | RTF | {memory} | load (s) | note |")
    print("|---|---|---|---|---|---|---|---|")
    for seconds, batch, result in rows:
        if "wall_s" not in result or result.get("error"):
            print(f"| {seconds:g} | {batch} | | | | | | {result.get('error', '')} |")
            continue
        rtf = result["wall_s"] / result["audio_s"] if result["audio_s"] else float("nan")
        print(f"| {seconds:g} | {batch} | {result['audio_s']:.1f} | {result['wall_s']:.2f} | {rtf:.3f} | "
              f"{result['peak_mib']:.0f} | {result['load_s']:.2f} | |")


if __name__ == "__main__":
    main()
