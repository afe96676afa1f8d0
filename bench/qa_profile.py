"""Where chunk QA's time goes: cProfile of ``check_takes`` on bench/qa.py's episode, one thread.

Synthesises the same ~10-minute excerpt (bench/render.py's cast, the flow's seeds), then hears and
checks its chunks in the batches the render flow would give 2 workers, under cProfile, and prints
CPU seconds per part: Whisper (encoder, decoder, word alignment, features), the per-chunk signal
checks, the speaker embedding, WER. ``--alone`` also times the old way (one Whisper call per chunk).

    .venv/bin/python bench/qa_profile.py [--words 1500] [--workers 2] [--alone] [--cpu] [--quick-model same]
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import synthesised_excerpt  # noqa: E402

PARTS = {  # part → (file suffix, function name); a C function is named "<built-in method …name>"
    "Whisper encoder": ("~", "ctranslate2._ext.encode>"),
    "Whisper decoder (greedy)": ("~", "ctranslate2._ext.generate>"),
    "Whisper word alignment": ("~", "ctranslate2._ext.align>"),
    "Whisper log-mel features": ("feature_extractor.py", "__call__"),
    "signal checks (all)": ("signal_checks.py", "chunk_checks"),
    "  of which music/noise (held notes, tonal persistence)": ("signal_checks.py", "non_speech_energy_check"),
    "speaker embedding": ("speaker.py", "speaker_embedding"),
    "  of which YIN pitch": ("speaker.py", "pitch_track"),
    "WER (normalise + jiwer)": ("wer.py", "score"),
    "packing, in all (Whisper included)": ("packing.py", "hear_clips"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=1500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--alone", action="store_true", help="also time one Whisper call per chunk")
    parser.add_argument("--cpu", action="store_true",
                        help="profile CPU seconds of this process instead of wall seconds (a busy machine)")
    parser.add_argument("--quick-model", default=None,
                        help="QA's quick listen model (default: the settings' default, tiny.en); 'same': Whisper base")
    args = parser.parse_args()

    from castline import PROJECT_SAMPLE_RATE
    from castline.qa.asr import get_transcriber
    from castline.qa.chunk_check import Take, check_takes
    from castline.render.synthesis import batch_jobs, rate_band

    plan, audio = synthesised_excerpt(args.words)
    takes = {job.index: Take(audio[job.index], job.text, job.engine, job.seed, rate_band(plan, job.voice_id))
             for job in plan.jobs}
    batches = batch_jobs(plan.jobs, args.workers)
    audio_s = sum(take.audio.size for take in takes.values()) / PROJECT_SAMPLE_RATE
    settings = plan.options.qa
    if args.quick_model is not None:
        settings = replace(settings, quick_asr_model=None if args.quick_model == "same" else args.quick_model)
    for hearing in settings.hearing_plan(plan.episode.meta.language):  # load + warm up every model it hears with
        get_transcriber(hearing.model).transcribe(takes[0].audio[:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)
    transcriber = get_transcriber(settings.asr_model)

    profile = cProfile.Profile(time.process_time if args.cpu else time.perf_counter)
    started, cpu = time.perf_counter(), time.process_time()
    profile.enable()
    checks = [check for batch in batches
              for check in check_takes([takes[job.index] for job in batch], PROJECT_SAMPLE_RATE,
                                       language=plan.episode.meta.language, settings=settings)]
    profile.disable()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    stats = pstats.Stats(profile).stats
    print(f"{len(takes)} chunks, {audio_s / 60:.1f} min of audio, {len(batches)} batches (the flow's for "
          f"{args.workers} workers); check_takes: {wall:.1f} s wall, {cpu:.1f} s CPU, "
          f"{sum(c.passed for c in checks)} of {len(checks)} passed\n")
    print("| part | seconds | share |")
    print("|---|---|---|")
    for part, (suffix, wanted) in PARTS.items():
        seconds = sum(cumulative for (file, _, name), (_, _, _, cumulative, _) in stats.items()
                      if file.endswith(suffix) and name.endswith(wanted))
        print(f"| {part} | {seconds:.2f} | {seconds / (cpu if args.cpu else wall):.0%} |")
    jobs = [job for batch in batches for job in batch]
    for job, check in zip(jobs, checks):
        if not check.passed:
            print(f"  failed: chunk {job.index} ({job.voice_id}): {', '.join(check.flags)}, WER {check.wer:.2f}, "
                  f"heard {check.transcript[:80]!r}")
    if args.alone:
        started = time.perf_counter()
        for take in takes.values():
            transcriber.transcribe(take.audio, PROJECT_SAMPLE_RATE, language="en")
        print(f"\nthe old way, one Whisper call per chunk (transcription only): {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
