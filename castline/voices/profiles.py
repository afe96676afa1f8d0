"""Voice profiles: ``voices/<id>/voice.yaml`` files, validated once at load."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from castline.core.errors import VoiceError
from castline.core.text import first_line

VOICE_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ALLOWED_KEYS = {"id", "name", "language", "engine", "engine_voice", "engine_options", "description",
                 "license", "gender", "reference", "consent", "version", "ingest", "words_per_minute",
                 "lexicons"}
_REFERENCE_KEYS = {"audio", "sha256", "transcript"}
_CONSENT_KEYS = {"who", "when", "scope", "evidence", "evidence_sha256", "statement"}


@dataclass(frozen=True)
class ReferenceAudio:
    """A reference clip for voice cloning, stored inside the profile folder."""

    path: str
    sha256: str
    transcript: str | None = None


@dataclass(frozen=True)
class ConsentRecord:
    """Who agreed to have their voice cloned, when, for what, and the proof.

    Exactly one of ``evidence`` (a file inside the profile folder) or ``statement`` is set.
    """

    who: str
    when: str
    scope: str
    evidence: str | None = None
    statement: str | None = None


@dataclass(frozen=True)
class VoiceProfile:
    """A voice a script can cast: which engine speaks it and with which engine voice.

    ``words_per_minute``: the (low, high) band QA's speech-rate check expects of this voice
    (words per minute of speech time, as ``castline.qa.signal_checks.speech_rate_check``
    measures it); None for the default band. ``bench/speech_rate.py`` measures a voice.
    """

    voice_id: str
    display_name: str
    language: str
    engine: str
    engine_voice: str
    engine_options: tuple[tuple[str, float | int | str | bool], ...] = ()
    description: str = ""
    license: str = ""
    reference: ReferenceAudio | None = None
    consent: ConsentRecord | None = None
    source_path: str = ""
    profile_hash: str = ""
    version: int = 1
    words_per_minute: tuple[float, float] | None = None
    lexicons: tuple[str, ...] = ()
    """Pronunciation lexicon files for this voice (paths resolved against the profile folder)."""

    @property
    def is_clone(self) -> bool:
        return self.reference is not None

    def option(self, name: str, default: float | int | str | bool) -> float | int | str | bool:
        return dict(self.engine_options).get(name, default)

    def cache_identity(self) -> dict[str, object]:
        """Everything about the profile that shapes rendered audio (for cache keys)."""
        return {"engine": self.engine, "engine_voice": self.engine_voice,
                "engine_options": [list(item) for item in self.engine_options],
                "language": self.language,
                "reference_sha256": self.reference.sha256 if self.reference else None}


def load_voice_profile(path: str | Path) -> VoiceProfile:
    """Read and validate one ``voice.yaml``; errors name the file and field."""
    path = Path(path)
    where = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise VoiceError("voice profile not found", source=where) from error
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        line = getattr(getattr(error, "problem_mark", None), "line", None)
        raise VoiceError(f"not a valid YAML voice profile ({first_line(error)})", source=where,
                         line=None if line is None else line + 1) from error
    if not isinstance(raw, dict):
        raise VoiceError("a voice profile must be a YAML mapping", source=where)
    unknown = sorted(set(raw) - _ALLOWED_KEYS)
    if unknown:
        raise VoiceError(f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_ALLOWED_KEYS))}",
                         source=where)
    voice_id = _required_str(raw, "id", where)
    if not VOICE_ID_PATTERN.match(voice_id):
        raise VoiceError(f"'{voice_id}' is not a valid voice id (lowercase letters, digits, '.', '_', '-')",
                         source=where, field="id")
    if voice_id != path.parent.name:
        raise VoiceError(f"id '{voice_id}' must match its folder name '{path.parent.name}'", source=where,
                         field="id")
    options = raw.get("engine_options") or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) and isinstance(v, (int, float, str, bool))
                                                for k, v in options.items()):
        raise VoiceError("must map option names to numbers, strings or booleans", source=where,
                         field="engine_options")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise VoiceError("must be a whole number ≥ 1", source=where, field="version")
    words_per_minute = _parse_rate_band(raw.get("words_per_minute"), where)
    reference = _parse_reference(raw.get("reference"), path.parent, where)
    consent = _parse_consent(raw.get("consent"), path.parent, where)
    profile = VoiceProfile(
        voice_id=voice_id,
        display_name=_optional_str(raw, "name", where) or voice_id,
        language=_required_str(raw, "language", where),
        engine=_required_str(raw, "engine", where),
        engine_voice=_required_str(raw, "engine_voice", where),
        engine_options=tuple(sorted(options.items())),
        description=_optional_str(raw, "description", where) or "",
        license=_optional_str(raw, "license", where) or "",
        reference=reference,
        consent=consent,
        source_path=where,
        version=version,
        words_per_minute=words_per_minute,
        lexicons=_parse_lexicons(raw.get("lexicons"), path.parent, where),
    )
    digest = hashlib.sha256(json.dumps(_hashable(profile), sort_keys=True).encode()).hexdigest()
    return _with_hash(profile, digest)


def _hashable(profile: VoiceProfile) -> dict[str, object]:
    data = asdict(profile)
    data.pop("source_path")
    data.pop("profile_hash")
    # The reference clip counts by content (its SHA-256 is in the profile), not by where the
    # folder sits: a voices library fetched from s3:// into a temporary folder, or checked out
    # on another machine, must keep its hash, or every cached chunk of a cloned voice is missed.
    if data.get("reference"):
        folder, path = Path(profile.source_path).parent, Path(data["reference"]["path"])
        data["reference"]["path"] = (path.relative_to(folder).as_posix() if profile.source_path
                                     and path.is_relative_to(folder) else path.name)
    if data["words_per_minute"] is None:  # profiles without a band keep the hash they had before the field
        data.pop("words_per_minute")
    # Lexicons change the text a voice is sent, which chunk keys already cover, not the voice.
    data.pop("lexicons")
    return data


def _parse_lexicons(raw: object, folder: Path, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not all(isinstance(item, str) and item.strip() for item in items):
        raise VoiceError("must be a list of lexicon files", source=where, field="lexicons")
    return tuple(str(folder / item) if "://" not in item else item for item in items)


def _parse_rate_band(raw: object, where: str) -> tuple[float, float] | None:
    if raw is None:
        return None
    if (not isinstance(raw, (list, tuple)) or len(raw) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw)):
        raise VoiceError("must be two numbers, [low, high] words per minute", source=where, field="words_per_minute")
    low, high = float(raw[0]), float(raw[1])
    if not 0 < low < high <= 1000:
        raise VoiceError(f"[{raw[0]}, {raw[1]}]: needs 0 < low < high ≤ 1000 words per minute", source=where,
                         field="words_per_minute")
    return low, high


def _with_hash(profile: VoiceProfile, digest: str) -> VoiceProfile:
    from dataclasses import replace

    return replace(profile, profile_hash=digest)


def _parse_reference(raw: object, folder: Path, where: str) -> ReferenceAudio | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise VoiceError("must be a mapping with 'audio' (and optional 'sha256', 'transcript')", source=where,
                         field="reference")
    unknown = sorted(set(raw) - _REFERENCE_KEYS)
    if unknown:
        raise VoiceError(f"unknown key(s) {', '.join(unknown)}", source=where, field="reference")
    audio = raw.get("audio")
    if not isinstance(audio, str) or not audio.strip():
        raise VoiceError("is required (a file inside the profile folder)", source=where, field="reference.audio")
    audio_path = _inside(folder, audio, where, "reference.audio")
    if not audio_path.is_file():
        raise VoiceError(f"file '{audio}' does not exist", source=where, field="reference.audio")
    digest = _sha256_file(audio_path)
    declared = raw.get("sha256")
    if declared is not None and declared != digest:
        raise VoiceError(f"sha256 does not match '{audio}' (file changed since the profile was made)",
                         source=where, field="reference.sha256")
    transcript = raw.get("transcript")
    if transcript is not None and not isinstance(transcript, str):
        raise VoiceError("must be text", source=where, field="reference.transcript")
    return ReferenceAudio(path=str(audio_path), sha256=digest, transcript=transcript)


def _parse_consent(raw: object, folder: Path, where: str) -> ConsentRecord | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise VoiceError("must be a mapping with who, when, scope and evidence or statement", source=where,
                         field="consent")
    unknown = sorted(set(raw) - _CONSENT_KEYS)
    if unknown:
        raise VoiceError(f"unknown key(s) {', '.join(unknown)}", source=where, field="consent")
    values: dict[str, str] = {}
    for key in ("who", "when", "scope"):
        value = raw.get(key)
        if isinstance(value, (_dt.date, _dt.datetime)):
            value = value.isoformat()
        if not isinstance(value, str) or not value.strip():
            raise VoiceError("is required", source=where, field=f"consent.{key}")
        values[key] = value.strip()
    try:
        _dt.date.fromisoformat(values["when"][:10])
    except ValueError as error:
        raise VoiceError(f"'{values['when']}' is not an ISO date (YYYY-MM-DD)", source=where,
                         field="consent.when") from error
    evidence, statement = raw.get("evidence"), raw.get("statement")
    if (evidence is None) == (statement is None):
        raise VoiceError("needs exactly one of 'evidence' (a file) or 'statement' (text)", source=where,
                         field="consent")
    if evidence is not None:
        if not isinstance(evidence, str) or not _inside(folder, evidence, where, "consent.evidence").is_file():
            raise VoiceError(f"evidence file '{evidence}' does not exist in the profile folder", source=where,
                             field="consent.evidence")
        declared = raw.get("evidence_sha256")
        if declared is not None and declared != _sha256_file(_inside(folder, evidence, where, "consent.evidence")):
            raise VoiceError(f"sha256 does not match '{evidence}' (evidence changed since it was recorded)",
                             source=where, field="consent.evidence_sha256")
    elif not isinstance(statement, str) or not statement.strip():
        raise VoiceError("must be non-empty text", source=where, field="consent.statement")
    return ConsentRecord(evidence=evidence, statement=statement, **values)


def _inside(folder: Path, name: str, where: str, field: str) -> Path:
    candidate = (folder / name).resolve()
    root = folder.resolve()
    if os.path.isabs(name) or root not in candidate.parents:
        raise VoiceError(f"'{name}' must be a file inside the profile folder", source=where, field=field)
    return candidate


def _required_str(raw: dict, key: str, where: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise VoiceError("is required (non-empty text)", source=where, field=key)
    return value.strip()


def _optional_str(raw: dict, key: str, where: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise VoiceError("must be text", source=where, field=key)
    return value.strip()


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class BrokenProfile:
    """A ``voice.yaml`` that failed validation. It is listed (with its error) rather than
    loaded, so only a render that casts it fails; ``voice_id`` is its folder's name."""

    voice_id: str
    source_path: str
    message: str
    line: int | None = None
    field: str | None = None

    def error(self) -> VoiceError:
        return VoiceError(self.message, source=self.source_path, line=self.line, field=self.field)

    @property
    def reason(self) -> str:
        return str(self.error())


@dataclass(frozen=True)
class VoiceLibrary:
    """All profiles found under a voices folder, by id; ``broken`` holds the ones that failed
    validation."""

    root: str
    profiles: tuple[VoiceProfile, ...]
    broken: tuple[BrokenProfile, ...] = ()

    def ids(self) -> list[str]:
        """Ids of the valid profiles."""
        return [profile.voice_id for profile in self.profiles]

    def broken_ids(self) -> list[str]:
        return [entry.voice_id for entry in self.broken]

    def get(self, voice_id: str) -> VoiceProfile:
        """The profile ``voice_id``; a broken one raises its own validation error."""
        for profile in self.profiles:
            if profile.voice_id == voice_id:
                return profile
        for entry in self.broken:
            if entry.voice_id == voice_id:
                raise entry.error()
        known = ", ".join(self.ids()) or "none"
        raise VoiceError(f"unknown voice '{voice_id}' (known: {known})", source=self.root)


def load_voice_library(root: str | Path) -> VoiceLibrary:
    """Every ``<root>/<id>/voice.yaml``, sorted by id. A profile that fails validation is kept
    in ``broken`` with its error: using it is an error, having it beside the others is not."""
    root = Path(root)
    if not root.is_dir():
        raise VoiceError("voices folder not found", source=str(root))
    profiles, broken = [], []
    for path in sorted(root.glob("*/voice.yaml")):
        try:
            profiles.append(load_voice_profile(path))
        except VoiceError as error:
            broken.append(BrokenProfile(voice_id=path.parent.name, source_path=str(path), message=error.message,
                                        line=error.line, field=error.field))
    return VoiceLibrary(root=str(root), profiles=tuple(profiles), broken=tuple(broken))


def default_voices_dir() -> Path:
    """``$CASTLINE_VOICES_DIR``, else ``./voices``, else the ``voices/`` folder shipped beside the package."""
    configured = os.environ.get("CASTLINE_VOICES_DIR")
    if configured:
        return Path(configured)
    local = Path.cwd() / "voices"
    if local.is_dir():
        return local
    return Path(__file__).resolve().parents[1] / "voices"
