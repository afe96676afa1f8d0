"""Voice every unit of a language and fit it to its slot.

Each engine take is cached in the store by content hash (text, voice profile, engine identity,
rate, seed), like render chunks, so a re-run re-synthesises nothing. The fitted speech of each
unit is written to the work folder as a float32 ``.npy`` at the mix rate; the mix reads only
the segments that touch the block it is writing.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.dsp.loudness import LoudnessMeter
from castline.dub.fit import CueFit, fit_cue
from castline.dub.plan import DubUnit, LanguagePlan
from castline.dub.stretch import stretcher_name, time_stretch
from castline.dub.trim import cut_at_word, trimmed
from castline.engines.locks import engine_lock
from castline.engines.pool import get_engine
from castline.engines.takes import TakeCache
from castline.core.errors import DubError, EngineError
from castline.core.hashing import content_hash
from castline.core.progress import emit
from castline.storage import Store
from castline.core.timebase import samples_to_ms
from castline.voices.profiles import VoiceProfile

CACHE_PREFIX = "_cache/dub"
TAKES = TakeCache(CACHE_PREFIX)
"""Engine takes of dub cues, by ``take_key`` (``castline.engines.takes``)."""
TAKE_FORMAT_VERSION = "dub-take/1"
RATE_OPTIONS: dict[str, tuple[str, bool]] = {
    "hibari": ("speed", False),
    "espeak": ("speed", False),
    "piper": ("length_scale", True),
}
"""Engines with their own rate control: the profile option that sets it, and whether it is
inverse (Piper's ``length_scale``: smaller is faster). Others are only time-stretched."""


@dataclass(frozen=True)
class VoicedUnit:
    """A unit's fitted speech: where it sits (samples at the mix rate) and how it was fitted.

    ``segment_path``: the placed samples (float32 mono ``.npy``, before speaker gain);
    ``integrated_lufs``: their loudness (``None`` when too short to gate); ``error``: why the
    engine gave no take (the unit then places no speech), ``None`` when it did.
    """

    unit: DubUnit
    fit: CueFit
    speech_start_sample: int
    speech_end_sample: int
    segment_path: str
    integrated_lufs: float | None
    takes_rendered: int
    takes_reused: int
    error: str | None = None


@dataclass(frozen=True)
class VoicedLanguage:
    language: str
    units: tuple[VoicedUnit, ...]
    stretcher: str
    seconds: float = 0.0


def take_key(text: str, voice: VoiceProfile, identity: str, seed: int) -> str:
    return content_hash({"text": text, "voice": voice.cache_identity(), "engine": voice.engine,
                         "engine_identity": identity, "seed": seed, "sample_rate": PROJECT_SAMPLE_RATE,
                         "format": TAKE_FORMAT_VERSION})


def with_rate(voice: VoiceProfile, rate: float) -> VoiceProfile | None:
    """``voice`` speaking ``rate``× faster through its engine's own control; None when it has none."""
    control = RATE_OPTIONS.get(voice.engine)
    if control is None:
        return None
    name, inverse = control
    base = float(voice.option(name, 1.0))
    value = round(base / rate if inverse else base * rate, 4)
    options = dict(voice.engine_options)
    options[name] = value
    return replace(voice, engine_options=tuple(sorted(options.items())))


def voice_language(plan: LanguagePlan, store: Store, work_dir: str | Path) -> VoicedLanguage:
    """Synthesise and fit every unit; with policy ``fail`` an overrun stops the language with one
    line listing every cue that overran (after all were tried, so the list is complete).

    A unit the engine fails on costs the others nothing: every unit is tried (their takes are
    cached as they are made), the failing ones place no speech and carry the error. With QA on,
    QA retries them and flags what still fails ("engine-error"); with QA off the language stops
    here with one line naming every failing cue."""
    started = time.perf_counter()
    folder = Path(work_dir)
    folder.mkdir(parents=True, exist_ok=True)
    stage = f"dub-voice:{plan.language}"
    emit(stage, total=len(plan.units))
    stretcher = stretcher_name(plan.options.fit.stretcher)
    voiced = []
    for unit in plan.units:
        try:
            voiced.append(voice_unit(unit, plan, store, folder, stretcher))
        except EngineError as error:
            where = f"line {error.line}: " if error.line is not None else ""
            voiced.append(unvoiced_unit(unit, plan, folder, where + error.message))
        emit(stage, advance=1)
    failed = [item for item in voiced if item.error]
    if failed and plan.options.qa == "off":
        listed = "; ".join(item.error for item in failed[:3])
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        raise EngineError(f"{len(failed)} cue(s) could not be voiced: {listed}{more} (the other cues' takes are "
                          f"cached; --qa warn delivers with these cues silent and flagged)", source=plan.cue_path)
    if plan.options.fit.policy == "fail":
        overruns = [item for item in voiced if item.fit.overrun_samples]
        if overruns:
            listed = ", ".join(f"cue {item.unit.cue_id or item.unit.cue} (line {item.unit.source_line}) by "
                               f"{samples_to_ms(item.fit.overrun_samples, plan.sample_rate)} ms"
                               for item in overruns[:6])
            more = f" and {len(overruns) - 6} more" if len(overruns) > 6 else ""
            raise DubError(f"{len(overruns)} cue(s) do not fit their slots even after rate, stretch and "
                           f"borrowing: {listed}{more} (--overrun allow-overlap or truncate to deliver anyway)",
                           source=plan.cue_path)
    return VoicedLanguage(language=plan.language, units=tuple(voiced), stretcher=stretcher,
                          seconds=time.perf_counter() - started)


def voice_unit(unit: DubUnit, plan: LanguagePlan, store: Store, folder: Path, stretcher: str) -> VoicedUnit:
    """Synthesise, trim, and run the fit ladder for one unit; write its placed speech."""
    voice = plan.voice(unit.voice_id)
    identity = dict(plan.engines)[voice.voice_id]
    rate = plan.sample_rate
    counts = {"rendered": 0, "reused": 0}

    def speech(profile: VoiceProfile) -> np.ndarray:
        take, rendered = cached_take(unit, profile, identity, plan, store)
        counts["rendered" if rendered else "reused"] += 1
        return trimmed(resample(take, PROJECT_SAMPLE_RATE, rate), rate)

    current = {"audio": speech(voice)}

    def resynthesise(factor: float) -> int:
        faster = with_rate(voice, factor)
        assert faster is not None
        current["audio"] = speech(faster)
        return int(current["audio"].size)

    def stretch(factor: float) -> int:
        current["audio"] = trimmed(time_stretch(current["audio"], rate, factor, stretcher), rate)
        return int(current["audio"].size)

    fit = fit_cue(int(current["audio"].size), unit.slot_samples, unit.gap_samples, plan.options.fit, rate,
                  resynthesise=resynthesise if voice.engine in RATE_OPTIONS else None, stretch=stretch)
    audio = current["audio"]
    if fit.truncated:
        audio = cut_at_word(audio, fit.speech_samples, rate)
        fit = replace(fit, speech_samples=int(audio.size))
    path = folder / f"{plan.language}-{unit.index:05d}.npy"
    np.save(path, audio.astype(np.float32), allow_pickle=False)
    meter = LoudnessMeter(rate, 1, true_peak=False)
    meter.process(audio)
    lufs = meter.result().integrated_lufs
    return VoicedUnit(unit=unit, fit=fit, speech_start_sample=unit.slot_start_sample,
                      speech_end_sample=unit.slot_start_sample + int(audio.size), segment_path=str(path),
                      integrated_lufs=lufs if math.isfinite(lufs) else None,
                      takes_rendered=counts["rendered"], takes_reused=counts["reused"])


def unvoiced_unit(unit: DubUnit, plan: LanguagePlan, folder: Path, error: str) -> VoicedUnit:
    """A unit the engine gave no take for: no speech placed in its slot, and the error kept."""
    path = folder / f"{plan.language}-{unit.index:05d}.npy"
    np.save(path, np.zeros(0, np.float32), allow_pickle=False)
    fit = CueFit(natural_samples=0, slot_samples=unit.slot_samples, rate=1.0, stretch=1.0, speech_samples=0,
                 borrowed_samples=0, overrun_samples=0, truncated=False, steps=())
    return VoicedUnit(unit=unit, fit=fit, speech_start_sample=unit.slot_start_sample,
                      speech_end_sample=unit.slot_start_sample, segment_path=str(path), integrated_lufs=None,
                      takes_rendered=0, takes_reused=0, error=error)


def cached_take(unit: DubUnit, voice: VoiceProfile, identity: str, plan: LanguagePlan,
                store: Store) -> tuple[np.ndarray, bool]:
    """The engine's take of ``unit.text`` in ``voice`` at the project rate, from the store when
    it is there; ``(audio, rendered)``."""
    key = take_key(unit.text, voice, identity, unit.seed)
    if TAKES.find(store, key) is not None:
        return TAKES.read(store, key)[0], False
    engine = get_engine(voice.engine, plan.options.engine_options)
    try:
        with engine_lock(engine):
            [native] = engine.synthesize([unit.text], voice, [unit.seed])
    except EngineError:
        raise
    except Exception as error:  # an engine failing on an input must name that input
        raise EngineError(f"engine '{voice.engine}' failed on cue {unit.cue_id or unit.cue}: {error}",
                          source=plan.cue_path, line=unit.source_line) from error
    audio = resample(native, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise EngineError(f"engine '{voice.engine}' produced no usable audio for cue {unit.cue_id or unit.cue} "
                          f"({unit.text[:40]!r})", source=plan.cue_path, line=unit.source_line)
    # What the cache holds (24-bit): a re-run that reuses the take places the same samples.
    audio = TAKES.put_audio(store, key, audio, PROJECT_SAMPLE_RATE, read_back=True).audio
    TAKES.put_meta(store, key, {"key": key, "text": unit.text, "voice": voice.voice_id, "engine": voice.engine,
                                "engine_identity": identity, "duration_samples": int(audio.size),
                                "sample_rate": PROJECT_SAMPLE_RATE})
    return audio, True
