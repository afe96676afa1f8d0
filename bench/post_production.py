"""Post-production benchmark: castline stitch + master + WAV vs ffmpeg concat + two-pass loudnorm.

A synthetic speech-like episode (10 chunks per minute: varied levels, DC offsets, trailing
silence) is written once as chunk files; then each method runs in its own process, which
reports its CPU seconds and peak RSS. Figures are printed as a table; nothing is asserted.

    .venv/bin/python bench/post_production.py --minutes 30 90 --repeat 3
    .venv/bin/python bench/post_production.py --minutes 30 --profile   # castline only, cProfile
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RATE = 24_000
CHUNKS_PER_MINUTE = 10


def voiced(seconds: float, rng: np.random.Generator, level_db: float) -> np.ndarray:
    """Speech stand-in: a gliding harmonic series with syllable-rate modulation (float32)."""
    count = int(seconds * RATE)
    t = np.arange(count) / RATE
    f0 = 150 + 40 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * t + rng.uniform(0, 6.3))
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    signal = sum(np.sin(k * phase) / k**2 for k in range(1, 24))
    signal *= 0.15 + 0.85 * np.abs(np.sin(2 * np.pi * 2.0 * t + rng.uniform(0, 3.1)))
    signal += 0.01 * rng.standard_normal(count)
    signal /= np.sqrt(np.mean(signal ** 2))
    return (signal * 10 ** (level_db / 20)).astype(np.float32)


def make_episode(folder: Path, minutes: int) -> dict:
    """Write chunk FLACs into a castline store under ``folder``; returns a job description."""
    from castline.audio.chunkfile import write_chunk
    from castline.dsp.loudness import LoudnessMeter
    from castline.storage import open_store
    from castline.render.synthesis import audio_key

    store = open_store(folder / "store")
    rng = np.random.default_rng(minutes)
    count = minutes * CHUNKS_PER_MINUTE
    chunks = []
    for index in range(count):
        speaker = "ab"[(index // 3) % 2]
        level = (-18 if speaker == "a" else -27) + rng.uniform(-3, 3)
        seconds = rng.uniform(4.0, 6.0)
        audio = voiced(seconds, rng, level) + np.float32(rng.uniform(-0.03, 0.03))
        audio = np.concatenate([audio, np.full(int(RATE * rng.uniform(0.1, 0.4)), audio[-1], np.float32)])
        key = f"{index:064x}"
        path = folder / "chunk.flac"
        write_chunk(path, audio, RATE)
        info = store.put_file(path, audio_key(key))
        meter = LoudnessMeter(RATE, 1)
        meter.process(audio)
        lufs = meter.result().integrated_lufs
        chunks.append({"key": key, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes,
                       "samples": int(audio.size), "lufs": lufs if math.isfinite(lufs) else None,
                       "speaker": speaker, "boundary": "turn" if index % 3 == 0 else "sentence",
                       "path": str(Path(info.uri[len("file://"):]))})
    return {"store": str(folder / "store"), "chunks": chunks}


def run_castline(job: dict, work: Path) -> dict:
    from castline.audio.encode import deliver
    from castline.delivery.master import master
    from castline.render.chunking import Boundary
    from castline.dsp.presets import PRESETS
    from castline.render.plan import ChunkJob
    from castline.render.stitch import stitch
    from castline.storage import open_store
    from castline.render.synthesis import ChunkRecord

    store = open_store(job["store"])
    jobs, records = [], []
    for index, chunk in enumerate(job["chunks"]):
        boundary = Boundary.START if index == 0 else Boundary(chunk["boundary"])
        jobs.append(ChunkJob(index=index, turn=index // 3, position=index % 3, speaker=chunk["speaker"],
                             voice_id=chunk["speaker"], engine="bench", text="", boundary=boundary,
                             pause_before_ms=None, seed=0, key=chunk["key"], source_line=None))
        records.append(ChunkRecord(index=index, key=chunk["key"], uri=chunk["uri"], sha256=chunk["sha256"],
                                   bytes=chunk["bytes"], duration_samples=chunk["samples"], sample_rate=RATE,
                                   integrated_lufs=chunk["lufs"], rendered=False))
    preset = PRESETS["podcast"]
    stitched = stitch(jobs, records, store, work / "stitched.wav")
    mastered = master(stitched.path, stitched.reading, preset, work / "master.wav")
    encoded = deliver(mastered.path, mastered.reading, "wav", work / "episode.wav", preset, mastered.ceiling_dbtp,
                      lambda gain, ceiling: None)
    return {"integrated_lufs": round(encoded.reading.integrated_lufs, 2),
            "true_peak_dbtp": round(encoded.reading.true_peak_dbtp, 2), "master_passes": mastered.passes,
            "duration_s": round(mastered.reading.duration_samples / RATE, 1)}


def run_ffmpeg(job: dict, work: Path) -> dict:
    from castline.audio.encode import ffmpeg_exe

    listing = work / "list.txt"
    listing.write_text("".join(f"file '{c['path']}'\n" for c in job["chunks"]), encoding="utf-8")
    source = ["-f", "concat", "-safe", "0", "-i", str(listing)]
    target = "I=-16:TP=-1:LRA=11"
    analysis = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", *source, "-af",
                               f"loudnorm={target}:print_format=json", "-f", "null", "-"],
                              capture_output=True, text=True, check=True).stderr
    measured = json.loads(analysis[analysis.rindex("{"):analysis.rindex("}") + 1])
    second = (f"loudnorm={target}:measured_I={measured['input_i']}:measured_TP={measured['input_tp']}:"
              f"measured_LRA={measured['input_lra']}:measured_thresh={measured['input_thresh']}:"
              f"offset={measured['target_offset']}:linear=true:print_format=json")
    result = subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-y", *source, "-af", second, "-ar",
                             str(RATE), "-c:a", "pcm_s24le", str(work / "ffmpeg.wav")],
                            capture_output=True, text=True, check=True).stderr
    final = json.loads(result[result.rindex("{"):result.rindex("}") + 1])
    return {"integrated_lufs": float(final["output_i"]), "true_peak_dbtp": float(final["output_tp"]),
            "normalization": final.get("normalization_type")}


def child(method: str, job_path: str) -> None:
    job = json.loads(Path(job_path).read_text())
    work = Path(tempfile.mkdtemp(prefix=f"bench-{method}-"))
    started = time.perf_counter()
    if method == "profile":
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        details = profiler.runcall(run_castline, job, work)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(20)
    else:
        details = run_castline(job, work) if method == "castline" else run_ffmpeg(job, work)
    wall = time.perf_counter() - started
    # castline runs in this process; the ffmpeg method's work is done by its ffmpeg children.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN if method == "ffmpeg" else resource.RUSAGE_SELF)
    shutil.rmtree(work)
    print(json.dumps({"cpu_s": usage.ru_utime + usage.ru_stime, "wall_s": wall,
                      "peak_rss_mb": usage.ru_maxrss / 1024, **details}))


def measure(method: str, job_path: Path) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", method, str(job_path)], capture_output=True,
                          text=True, check=True)
    if method == "profile":
        print(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[30, 90])
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each method this many times per length and report the least CPU")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--profile", action="store_true",
                        help="run only castline's side, under cProfile, and print where its time goes")
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.profile:
        for minutes in args.minutes:
            with tempfile.TemporaryDirectory(prefix="castline-bench-") as folder:
                job_path = Path(folder) / "job.json"
                job_path.write_text(json.dumps(make_episode(Path(folder), minutes)))
                ours = measure("profile", job_path)
            print(f"{minutes} min: castline {ours['cpu_s']:.1f} s CPU under cProfile")
        return
    rows = []
    for minutes in args.minutes:
        with tempfile.TemporaryDirectory(prefix="castline-bench-") as folder:
            job = make_episode(Path(folder), minutes)
            job_path = Path(folder) / "job.json"
            job_path.write_text(json.dumps(job))
            # Alternate the methods; on a shared machine the least CPU of N runs is the figure
            # least disturbed by other load (every run is printed).
            runs: dict[str, list[dict]] = {"castline": [], "ffmpeg": []}
            for _ in range(args.repeat):
                for method in runs:
                    runs[method].append(measure(method, job_path))
        ours, theirs = (min(runs[method], key=lambda run: run["cpu_s"]) for method in ("castline", "ffmpeg"))
        rows.append((minutes, len(job["chunks"]), ours, theirs))
        print(f"{minutes} min done: castline " + " / ".join(f"{run['cpu_s']:.1f}" for run in runs["castline"])
              + " s CPU, ffmpeg " + " / ".join(f"{run['cpu_s']:.1f}" for run in runs["ffmpeg"]) + " s CPU",
              file=sys.stderr)
    print(f"\npost-production, {CHUNKS_PER_MINUTE} chunks/min, 24 kHz mono; {os.cpu_count()} CPUs; "
          f"least CPU of {args.repeat} run(s) each\n")
    print("| minutes | chunks | castline CPU s | castline peak RSS MB | castline LUFS / dBTP | ffmpeg CPU s | "
          "ffmpeg peak RSS MB | ffmpeg LUFS / dBTP | CPU ratio (ffmpeg/castline) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for minutes, count, ours, theirs in rows:
        print(f"| {minutes} | {count} | {ours['cpu_s']:.1f} | {ours['peak_rss_mb']:.0f} | "
              f"{ours['integrated_lufs']:.2f} / {ours['true_peak_dbtp']:.2f} | {theirs['cpu_s']:.1f} | "
              f"{theirs['peak_rss_mb']:.0f} | {theirs['integrated_lufs']:.2f} / {theirs['true_peak_dbtp']:.2f} | "
              f"{theirs['cpu_s'] / ours['cpu_s']:.1f}x |")


if __name__ == "__main__":
    main()
