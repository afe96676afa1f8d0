"""Who speaks each cue, and with which voice, per language.

The cast file (``--cast voices.yaml``) has one section per language::

    es:
      voices:                # speaker -> voice: a profile id, a Piper .onnx file, or espeak:VOICE
        ANA: es-ana
        LUIS: /models/es_ES-davefx-medium.onnx
        "*": espeak:es+m3    # everyone else in Spanish
      speakers:              # cue id -> speaker, for cues whose text names nobody
        12: ANA
    de:
      voices: {"*": de-thorsten}

Without a cast entry a speaker gets a usable profile of that language from the voices folder
(distinct voices while they last, then shared, with a warning); a language no profile speaks
falls back to espeak-ng (distinct variants per speaker): robotic, offline, measured in docs/benchmarks.md (espeak-ng intelligibility).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import yaml

from castline.engines.registry import voice_usability
from castline.core.errors import DubError, VoiceError
from castline.voices.profiles import VoiceLibrary, VoiceProfile

DEFAULT_SPEAKER = "default"
"""The speaker of cues whose text names nobody."""
ESPEAK_VARIANTS = ("", "+f3", "+m3", "+f2", "+m2", "+f4", "+m4", "+f1", "+m1")
"""espeak-ng variants handed out to distinct speakers of one language."""
ESPEAK_FALLBACK_OPTIONS = (("speed", 1.0), ("wpm", 165))
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
_SECTION_KEYS = {"voices", "speakers"}


@dataclass(frozen=True)
class LanguageCast:
    """One language's section of the cast file (speakers compared case-insensitively)."""

    language: str
    voices: tuple[tuple[str, str], ...] = ()
    cue_speakers: tuple[tuple[str, str], ...] = ()

    def voice_for(self, speaker: str) -> str | None:
        mapping = {key.casefold(): value for key, value in self.voices}
        return mapping.get(speaker.casefold(), mapping.get("*"))

    def speaker_for_cue(self, cue_id: str) -> str | None:
        return dict(self.cue_speakers).get(cue_id)


def normalise_language(code: str) -> str:
    """``es``, ``es-MX``, ``pt_br`` → ``es``, ``es-mx``, ``pt-br``; a ValueError for anything else."""
    code = code.strip()
    if not _LANGUAGE.match(code):
        raise ValueError(f"'{code}' is not a language code (e.g. es, de, pt-BR)")
    return code.replace("_", "-").lower()


def primary_language(code: str) -> str:
    return code.split("-", 1)[0].lower()


def load_cast_file(path: str | Path) -> dict[str, LanguageCast]:
    """Read and validate a cast file; errors name the file and the field (and line for YAML errors)."""
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DubError("cast file not found", source=where) from error
    except UnicodeDecodeError as error:
        raise DubError("cast file is not UTF-8 text", source=where) from error
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise DubError(f"not valid YAML: {problem}", source=where,
                       line=None if mark is None else mark.line + 1) from error
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise DubError("a cast file maps language codes to sections (e.g. 'es: {voices: {ANA: heart}}')",
                       source=where)
    casts: dict[str, LanguageCast] = {}
    for language, section in raw.items():
        try:
            code = normalise_language(str(language))
        except ValueError as error:
            raise DubError(str(error), source=where, field=str(language)) from error
        if not isinstance(section, dict):
            raise DubError("must be a mapping with 'voices' and/or 'speakers'", source=where, field=code)
        unknown = sorted(set(map(str, section)) - _SECTION_KEYS)
        if unknown:
            raise DubError(f"unknown key(s) {', '.join(unknown)} (allowed: voices, speakers)", source=where,
                           field=code)
        voices = _string_map(section.get("voices") or {}, where, f"{code}.voices")
        speakers = _string_map(section.get("speakers") or {}, where, f"{code}.speakers")
        casts[code] = LanguageCast(language=code, voices=tuple(voices.items()), cue_speakers=tuple(speakers.items()))
    return casts


def _string_map(value: object, where: str, field: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise DubError("must be a mapping", source=where, field=field)
    result: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict) and set(item) == {"voice"}:
            item = item["voice"]
        if not isinstance(item, (str, int)) or not str(item).strip() or not str(key).strip():
            raise DubError(f"'{key}' must map to a name", source=where, field=field)
        result[str(key).strip()] = str(item).strip()
    return result


def resolve_voices(language: str, speakers: list[str], cast: LanguageCast | None, library: VoiceLibrary,
                   source: str) -> tuple[dict[str, VoiceProfile], tuple[str, ...]]:
    """A usable voice for every speaker of one language, and warnings (shared voices, fallback)."""
    resolved: dict[str, VoiceProfile] = {}
    automatic: list[str] = []
    for speaker in speakers:
        spec = cast.voice_for(speaker) if cast else None
        if spec is None:
            automatic.append(speaker)
            continue
        resolved[speaker] = _checked(voice_from_spec(spec, language, library, source), speaker, source)
    warnings: list[str] = []
    if automatic:
        candidates = [profile for profile in library.profiles
                      if primary_language(profile.language) == primary_language(language)
                      and voice_usability(profile).usable]
        if candidates:
            taken = {profile.voice_id for profile in resolved.values()}
            free = [profile for profile in candidates if profile.voice_id not in taken] or candidates
            for number, speaker in enumerate(automatic):
                resolved[speaker] = free[number % len(free)]
            if len(automatic) > len(free):
                warnings.append(f"{source}: {len(automatic)} speakers share {len(free)} '{language}' voice(s) "
                                f"({', '.join(p.voice_id for p in free)}); map them in --cast to choose")
        else:
            for number, speaker in enumerate(automatic):
                variant = ESPEAK_VARIANTS[number % len(ESPEAK_VARIANTS)]
                profile = espeak_fallback_voice(language, variant)
                resolved[speaker] = _checked(profile, speaker, source, fallback=True)
            warnings.append(f"{source}: no voice profile speaks '{language}' here: using the espeak-ng fallback "
                            f"(robotic formant speech, a placeholder for timing and review) for "
                            f"{', '.join(automatic)}")
    return resolved, tuple(warnings)


def voice_from_spec(spec: str, language: str, library: VoiceLibrary, source: str) -> VoiceProfile:
    """A cast value: ``espeak:VOICE``, a Piper ``.onnx`` path, or a profile id from the voices folder."""
    if spec.startswith("espeak:"):
        voice = spec.split(":", 1)[1].strip()
        if not voice:
            raise DubError(f"'{spec}' names no espeak-ng voice (e.g. espeak:es+f3)", source=source)
        base, _, variant = voice.partition("+")
        return espeak_fallback_voice(base, f"+{variant}" if variant else "")
    if spec.endswith(".onnx"):
        return piper_file_voice(spec, language, source)
    try:
        return library.get(spec)
    except VoiceError as error:
        raise DubError(error.message, source=source, field=f"voice '{spec}'") from error


def espeak_fallback_voice(language: str, variant: str = "") -> VoiceProfile:
    """An in-memory espeak-ng profile for ``language`` (its primary subtag if espeak lacks the region)."""
    from castline.engines.espeak import espeak_knows

    code = language.lower()
    if not espeak_knows(code) and espeak_knows(primary_language(code)):
        code = primary_language(code)
    engine_voice = f"{code}{variant}"
    voice_id = f"espeak-{code}{variant.replace('+', '-')}"
    return _hashed(VoiceProfile(voice_id=voice_id, display_name=f"espeak-ng {engine_voice}", language=language,
                                engine="espeak", engine_voice=engine_voice, engine_options=ESPEAK_FALLBACK_OPTIONS,
                                description="espeak-ng fallback (formant synthesis, offline)",
                                license="GPL-3.0-or-later (espeak-ng)", source_path="espeak-ng fallback"))


def piper_file_voice(path: str, language: str, source: str) -> VoiceProfile:
    """A profile for a user's Piper voice file (``voice.onnx`` with ``voice.onnx.json`` beside it)."""
    model = Path(path).expanduser()
    if not model.is_file() or not Path(f"{model}.json").is_file():
        raise DubError(f"Piper voice '{path}' not found (needs the .onnx and its .onnx.json)", source=source)
    slug = re.sub(r"[^a-z0-9._-]+", "-", model.stem.lower()).strip("-._")[:60] or "piper"
    return _hashed(VoiceProfile(voice_id=f"piper-{slug}", display_name=model.stem, language=language,
                                engine="piper", engine_voice=str(model.resolve()), engine_options=(),
                                description="Piper voice file", source_path=str(model)))


def _checked(profile: VoiceProfile, speaker: str, source: str, fallback: bool = False) -> VoiceProfile:
    usable = voice_usability(profile)
    if not usable.usable:
        hint = "; add a voice profile for this language or map one in --cast" if fallback else ""
        raise DubError(f"voice '{profile.voice_id}' for speaker '{speaker}' is not usable here: "
                       f"{usable.reason}{hint}", source=source)
    return profile


def _hashed(profile: VoiceProfile) -> VoiceProfile:
    data = asdict(profile)
    data.pop("source_path")
    data.pop("profile_hash")
    digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    return replace(profile, profile_hash=digest)
