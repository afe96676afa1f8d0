"""Dub a long programme in two languages: wall time, peak memory, and how the cues were fitted.

A synthetic programme (default 30 minutes, ~400 cues, 48 kHz stereo background of noise and
tones, written in blocks) with Spanish and German cue files sharing the same timings; slot
lengths vary around the espeak-ng fallback's natural pace so that some cues fit, some need
rate, stretch or borrowed silence, and a few overrun. The dub runs as the real command
(`castline dub … --quiet`, Prefect flow included) in a child process; peak RSS is that process
tree's largest resident set (ru_maxrss of waited children: castline's process, or an ffmpeg it ran).

    .venv/bin/python bench/dub.py                 # 30 minutes, 400 cues
    .venv/bin/python bench/dub.py --minutes 5     # a quicker look
    .venv/bin/python bench/dub.py --video         # + a 1080p video of the same length (dialogue only)

With ``--video`` the programme is also a 1080p25 H.264 video (ffmpeg's test sources), and the same
cues are dubbed twice without a bed (dialogue only, so onsets can be read off the muxed track):
audio only, then ``--video`` (probe, dub, mux ``dubbed.mkv``). It reports both wall times, peak
RSS, and the largest onset error of placed speech in the muxed dub tracks (cues whose previous
speech ended at least 200 ms before their slot; threshold −40 dB under the track's peak).
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


def write_video(folder: Path, background: Path, minutes: float) -> Path:
    """1080p25 H.264 (a static test pattern with a moving counter: cheap to encode) + the
    background as AAC audio."""
    from castline.audio.encode import ffmpeg_exe

    video = folder / "programme.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    f"testsrc=size=1920x1080:rate=25:duration={minutes * 60:g}", "-i", str(background),
                    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "40", "-g", "250", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-shortest", str(video)], check=True)
    return video


def run_dub(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and the peak RSS (MiB) of this command's process tree (GNU time's %M: the
    largest of castline's process and the children it waited for, such as ffmpeg)."""
    timer = shutil.which("time") or "/usr/bin/time"
    started = time.perf_counter()
    completed = subprocess.run([timer, "-f", "peak-kib %M", *command], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        sys.exit(f"dub failed ({completed.returncode}): {completed.stderr.strip()[-500:]}")
    peak = next(line for line in reversed(completed.stderr.splitlines()) if line.startswith("peak-kib "))
    return wall, int(peak.split()[1]) / 1024


def onset_errors_ms(mkv: Path, track: int, manifest: dict) -> list[tuple[float, dict]]:
    """``(onset error in ms, cue)`` of every isolated cue in the muxed track, decoded as a stream
    (bounded memory)."""
    from castline.audio.encode import ffmpeg_exe

    cues = sorted(manifest["cues"], key=lambda cue: cue["slot_start_sample"])
    windows = []
    for previous, cue in zip([None, *cues[:-1]], cues):
        if previous is None or cue["slot_start_sample"] - previous["speech_end_sample"] >= RATE // 5:
            windows.append((cue["slot_start_sample"] - RATE // 5, cue["slot_start_sample"] + RATE // 2, cue))
    process = subprocess.Popen([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(mkv), "-map", f"0:a:{track}",
                                "-ac", "1", "-ar", str(RATE), "-f", "f32le", "-"], stdout=subprocess.PIPE)
    peak, position, pending, found = 0.0, 0, list(windows), []
    tail = np.zeros(0, np.float32)
    while True:
        data = process.stdout.read(RATE * 4 * 10)
        if not data:
            break
        block = np.frombuffer(data, np.float32)
        peak = max(peak, float(np.max(np.abs(block))))
        buffer = np.concatenate([tail, block])
        start = position - tail.size
        while pending and pending[0][1] <= position + block.size:
            low, high, slot = pending.pop(0)
            found.append((buffer[max(0, low - start):high - start], max(low, start), slot))
        tail = buffer[-RATE:]
        position += block.size
    process.wait()
    errors = []
    for window, first, cue in found:
        loud = np.flatnonzero(np.abs(window) >= peak * 10 ** (-40 / 20))
        if loud.size:
            errors.append(((first + int(loud[0]) - cue["slot_start_sample"]) * 1000 / RATE, cue))
    return errors


def video_comparison(folder: Path, background: Path, files: list[Path], minutes: float) -> None:
    started = time.perf_counter()
    video = write_video(folder, background, minutes)
    print(f"1080p25 video written in {time.perf_counter() - started:.1f} s ({video.stat().st_size / 2**20:.0f} MiB)")
    env = {**os.environ, "CASTLINE_HOME": str(folder / "home"), "CASTLINE_VOICES_DIR": str(REPO / "voices")}
    base = [str(REPO / ".venv" / "bin" / "castline"), "dub", "--quiet", "--qa", "off", "--programme", "programme"]
    # Warm up first (the first castline command starts Prefect's server; later ones reuse it).
    warm = folder / "warm.es.srt"
    warm.write_text("1\n00:00:01,000 --> 00:00:02,000\nHola.\n", encoding="utf-8")
    run_dub([*base, "--cues", str(warm), "--out", str(folder / "warm")], env)
    for path in files:
        base += ["--cues", str(path)]
    audio_wall, audio_peak = run_dub([*base, "--out", str(folder / "audio")], env)
    video_wall, video_peak = run_dub([*base, "--out", str(folder / "video"), "--video", str(video),
                                      "--background", "none"], env)
    print(f"dialogue only, same cues: audio-only {audio_wall:.1f} s, peak RSS {audio_peak:.0f} MiB; --video "
          f"{video_wall:.1f} s, peak RSS {video_peak:.0f} MiB ({video_wall - audio_wall:+.1f} s: probe, frame "
          f"count, mux)")
    mkv = folder / "video" / "programme" / "dubbed.mkv"
    from castline.dub.video import iso639_2, probe_media

    tracks = [stream.language for stream in probe_media(mkv, count_frames=False).audio]
    for manifest_path in sorted((folder / "video" / "programme").glob("*/manifest.json")):
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        track = tracks.index(iso639_2(manifest["language"]))  # the muxed track of this language
        errors = onset_errors_ms(mkv, track, manifest)
        worst = max(errors, key=lambda item: abs(item[0]))[0] if errors else float("nan")
        late = sorted((item for item in errors if abs(item[0]) > 40), key=lambda item: -abs(item[0]))
        print(f"  {manifest['language']}: largest onset error in dubbed.mkv {worst:+.1f} ms over {len(errors)} "
              f"isolated cues (one frame: 40 ms); {len(late)} beyond one frame"
              + "".join(f"\n    cue {cue['cue_id'] or cue['cue']} at {cue['slot_start_sample'] / RATE:.2f} s: "
                        f"{error:+.1f} ms ({cue['outcome']})" for error, cue in late[:5]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--cues", type=int, default=None, help="cues per language (default: 400 per 30 minutes)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--video", action="store_true", help="also dub a 1080p video of the programme (see above)")
    parser.add_argument("--video-only", action="store_true", help="only the --video comparison")
    args = parser.parse_args()
    cues = args.cues or round(400 * args.minutes / 30)
    folder = Path(tempfile.mkdtemp(prefix="castline-bench-dub-"))
    try:
        background, files = write_programme(folder, args.minutes, cues, args.seed)
        if args.video_only:
            video_comparison(folder, background, files, args.minutes)
            return
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
        if args.video:
            video_comparison(folder, background, files, args.minutes)
    finally:
        if args.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
