"""What chunk QA catches: faults injected into real takes, heard by each hearing setting.

Synthesises the first ``--words`` of bench/qa.py's excerpt with the offline voices (the flow's
seeds), then, for every chunk, makes one faulty take of each kind next to its clean take:

- ``wrong-sentence``: the same voice saying another chunk's text (the next one of its voice);
- ``truncated``: the clean take cut after 60 % of its samples (a hard cut, as an engine that
  stopped early); ``truncated-late``: cut after 80 % (near the truncation check's limit: the
  last words of a take, less the engine's trailing silence);
- ``silence``: digital silence of the clean take's length;
- ``spanish-espeak``: the chunk's text translated into Spanish (Apertium ``eng-spa``) and spoken
  by espeak-ng's Spanish voice;
- ``spanish-voice``: the same Spanish text read by the chunk's own (English) voice.

Every take is judged against the chunk's script text. The takes are heard the way the render
hears a synthesis batch (``check_takes``), in batches of ``--batch`` mixing clean and faulty takes
(a fixed shuffle), once per ``--settings``: ``base`` is Whisper base listening quickly and then
carefully (``--qa-quick-model same``), ``tiny.en`` the default (Whisper tiny.en quick, Whisper
base careful). Prints per setting and fault kind: injected, caught (the take fails QA), false
passes; clean takes flagged; takes heard twice; CPU seconds of ``check_takes`` (one thread).

    .venv/bin/python bench/qa_faults.py [--words 600] [--batch 9] [--settings base tiny.en]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from render import synthesised_excerpt  # noqa: E402

TRUNCATE_AT = 0.6
TRUNCATE_LATE_AT = 0.8
KINDS = ("wrong-sentence", "truncated", "truncated-late", "silence", "spanish-espeak", "spanish-voice")


def faulty_takes(plan, audio: dict[int, np.ndarray]) -> list[tuple[str, int, np.ndarray]]:
    """(kind, chunk index, audio at the project rate) for every chunk and fault kind."""
    from castline import PROJECT_SAMPLE_RATE
    from castline.audio.resample import resample
    from castline.dub.translate import ApertiumTranslator
    from castline.engines.registry import engine_class
    from castline.voices.profiles import VoiceProfile

    jobs = [job for job in plan.jobs if job.window is None]
    spanish = ApertiumTranslator().translate([job.text for job in jobs], "en", "es")
    engines: dict[str, object] = {}

    def say(engine_name: str, voice, text: str, seed: int) -> np.ndarray:
        engine = engines.get(engine_name) or engines.setdefault(engine_name, engine_class(engine_name)())
        [native] = engine.synthesize([text], voice, [seed])
        return resample(native, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)

    espeak_es = VoiceProfile(voice_id="espeak-es", display_name="espeak es", language="es", engine="espeak",
                             engine_voice="es")
    out = []
    for number, job in enumerate(jobs):
        voice = plan.voice(job.voice_id)
        clean = audio[job.index]
        same_voice = [other for other in jobs[number + 1:] + jobs[:number] if other.voice_id == job.voice_id]
        out.append(("wrong-sentence", job.index, say(job.engine, voice, same_voice[0].text, job.seed)))
        out.append(("truncated", job.index, clean[:int(clean.size * TRUNCATE_AT)].copy()))
        out.append(("truncated-late", job.index, clean[:int(clean.size * TRUNCATE_LATE_AT)].copy()))
        out.append(("silence", job.index, np.zeros_like(clean)))
        out.append(("spanish-espeak", job.index, say("espeak", espeak_es, spanish[number], job.seed)))
        out.append(("spanish-voice", job.index, say(job.engine, voice, spanish[number], job.seed)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=600)
    parser.add_argument("--batch", type=int, default=9, help="takes heard together (the flow's batches hold ~9)")
    parser.add_argument("--settings", nargs="+", default=["base", "tiny.en"],
                        help="quick listen model: base (Whisper base quick, then careful) or tiny.en (the default)")
    args = parser.parse_args()

    from castline import PROJECT_SAMPLE_RATE
    from castline.qa.asr import get_transcriber
    from castline.qa.chunk_check import Take, check_takes
    from castline.qa.settings import QASettings
    from castline.render.synthesis import rate_band

    plan, audio = synthesised_excerpt(args.words)
    jobs = {job.index: job for job in plan.jobs if job.window is None}
    takes = [("clean", index, audio[index]) for index in jobs] + faulty_takes(plan, audio)
    random.Random(14).shuffle(takes)
    minutes = sum(clip.size for _, _, clip in takes) / PROJECT_SAMPLE_RATE / 60
    print(f"{len(jobs)} chunks; {len(takes)} takes ({minutes:.1f} min): each chunk clean and "
          f"{', '.join(KINDS)}; batches of {args.batch}; check_takes on one thread\n")
    print("| setting | kind | takes | caught | false passes | heard twice |")
    print("|---|---|---|---|---|---|")
    for name in args.settings:
        settings = QASettings(quick_asr_model=None if name == "base" else name)
        for hearing in settings.hearing_plan("en"):  # load each model before timing
            get_transcriber(hearing.model).transcribe(audio[0][:PROJECT_SAMPLE_RATE], PROJECT_SAMPLE_RATE)
        started = time.process_time()
        checks = []
        for first in range(0, len(takes), args.batch):
            batch = takes[first:first + args.batch]
            checks += check_takes([Take(clip, jobs[index].text, jobs[index].engine, jobs[index].seed,
                                        rate_band(plan, jobs[index].voice_id)) for _, index, clip in batch],
                                  PROJECT_SAMPLE_RATE, language="en", settings=settings)
        cpu = time.process_time() - started
        totals: Counter = Counter()
        for kind in ("clean",) + KINDS:
            mine = [check for (k, _, _), check in zip(takes, checks) if k == kind]
            failed = sum(not check.passed for check in mine)
            twice = sum(dict(check.metrics).get("asr_careful_relisten", 0.0) == 1.0 for check in mine)
            misses = [index for (k, index, _), check in zip(takes, checks) if k == kind and check.passed]
            if kind == "clean":
                print(f"| {name} | clean | {len(mine)} | flagged {failed} | – | {twice} |")
            else:
                totals.update(injected=len(mine), caught=failed, passes=len(mine) - failed, twice=twice)
                print(f"| {name} | {kind} | {len(mine)} | {failed} | {len(mine) - failed}"
                      f"{' ' + str(sorted(misses)) if misses else ''} | {twice} |")
        print(f"| {name} | all faults | {totals['injected']} | {totals['caught']} | {totals['passes']} | "
              f"{totals['twice']} |")
        heard_by = Counter(check.asr_model for check in checks)
        print(f"| {name} | check_takes CPU s: {cpu:.1f}; judged by {dict(sorted(heard_by.items()))} | | | | |",
              flush=True)


if __name__ == "__main__":
    main()
