"""Reference clips for voice cloning: decode, check, level, and store as a profile."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import yaml

from castline import PROJECT_SAMPLE_RATE
from castline.audio.decode import decode_audio
from castline.audio.resample import resample
from castline.core.errors import VoiceError
from castline.core.hashing import sha256_file
from castline.voices.profiles import VOICE_ID_PATTERN, VoiceProfile, load_voice_profile

USABLE_SECONDS = (3.0, 30.0)
TARGET_SPEECH_RMS_DBFS = -20.0
FRAME_MS = 50.0
CLIPPING_LEVEL = 0.999
CLIPPED_FRACTION_WARN = 0.001
QUIET_SPEECH_DBFS = -40.0
BACKGROUND_GAP_DB = 20.0
"""Clean references measured 28–100 dB between speech (90th percentile of 50 ms frames) and
pauses (10th percentile); the one with music under the voice measured 15 dB."""
TONAL_PERSISTENCE_MUSIC = 0.6
"""Share of spectral peaks in quiet frames that persist into the next frame: 0.72 with music,
0.27–0.52 for clean speech (the six VibeVoice demo references)."""


@dataclass(frozen=True)
class ReferenceReport:
    """What the checks found in a reference clip (levels in dBFS, durations in seconds)."""

    source_sample_rate: int
    source_channels: int
    duration_s: float
    speech_rms_dbfs: float
    pause_rms_dbfs: float
    clipped_fraction: float
    tonal_persistence: float
    gain_db: float
    warnings: tuple[str, ...]


def analyse_reference(audio: np.ndarray, sample_rate: int) -> tuple[float, float, float, float]:
    """``(speech_rms_dbfs, pause_rms_dbfs, clipped_fraction, tonal_persistence)`` of mono ``audio``."""
    frame = max(1, int(sample_rate * FRAME_MS / 1000))
    count = audio.size // frame
    frames = audio[: count * frame].astype(np.float64).reshape(count, frame)
    levels = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    pause, speech = np.percentile(levels, [10, 90])
    clipped = float(np.mean(np.abs(audio) >= CLIPPING_LEVEL))
    return float(speech), float(pause), clipped, _tonal_persistence(audio, sample_rate)


def _tonal_persistence(audio: np.ndarray, sample_rate: int) -> float:
    from scipy.signal import stft

    freqs, _, spectrum = stft(audio.astype(np.float64), sample_rate, nperseg=1024, noverlap=512)
    power = np.abs(spectrum) ** 2 + 1e-12
    frame_db = 10 * np.log10(power.sum(axis=0))
    quiet = frame_db < np.percentile(frame_db, 25)
    band = (freqs > 100) & (freqs < 4000)
    quiet_db = 10 * np.log10(power[band][:, quiet])
    if quiet_db.shape[1] < 2:
        return 0.0
    peaks = quiet_db > np.median(quiet_db, axis=0) + 15
    return float(np.mean(peaks[:, 1:] & peaks[:, :-1]) / (np.mean(peaks) + 1e-9))


def prepare_reference(source: str | Path) -> tuple[np.ndarray, ReferenceReport]:
    """Decode ``source`` (any common format and rate), mix to mono, resample to 24 kHz, check it,
    and level its speech to −20 dBFS RMS. Unusable clips raise ``VoiceError``; doubtful ones warn."""
    audio, rate = decode_audio(source)
    channels = 1 if audio.ndim == 1 else audio.shape[0]
    mono = audio if audio.ndim == 1 else audio.mean(axis=0).astype(np.float32)
    duration = mono.size / rate
    where = str(source)
    if duration < 1.0:
        raise VoiceError(f"reference is {duration:.1f} s long; at least 3 s of speech is needed", source=where)
    speech, pause, clipped, persistence = analyse_reference(mono, rate)
    if speech < -70.0:
        raise VoiceError("reference is silent", source=where)
    warnings = []
    low, high = USABLE_SECONDS
    if not low <= duration <= high:
        warnings.append(f"reference is {duration:.1f} s; {low:.0f}–{high:.0f} s works best")
    if clipped > CLIPPED_FRACTION_WARN:
        warnings.append(f"{clipped:.2%} of samples are clipped; cloning copies the distortion")
    if speech < QUIET_SPEECH_DBFS:
        warnings.append(f"speech is very quiet ({speech:.1f} dBFS RMS); noise will be raised with it")
    if speech - pause < BACKGROUND_GAP_DB:
        kind = "music" if persistence >= TONAL_PERSISTENCE_MUSIC else "noise"
        warnings.append(f"background {kind} under the voice (pauses only {speech - pause:.0f} dB below speech); "
                        f"cloning engines reproduce it")
    gain_db = TARGET_SPEECH_RMS_DBFS - speech
    levelled = resample(mono, rate, PROJECT_SAMPLE_RATE) * np.float32(10 ** (gain_db / 20))
    peak = float(np.max(np.abs(levelled))) if levelled.size else 0.0
    if peak > 0.98:  # never let levelling clip: back off to a −0.2 dBFS peak
        backoff = 0.98 / peak
        levelled *= np.float32(backoff)
        gain_db += 20 * math.log10(backoff)
    report = ReferenceReport(source_sample_rate=rate, source_channels=channels, duration_s=round(duration, 3),
                             speech_rms_dbfs=round(speech, 2), pause_rms_dbfs=round(pause, 2),
                             clipped_fraction=round(clipped, 5), tonal_persistence=round(persistence, 3),
                             gain_db=round(gain_db, 2), warnings=tuple(warnings))
    return levelled.astype(np.float32), report


def add_voice(voices_dir: str | Path, voice_id: str, reference: str | Path, *, engine: str,
              consent_file: str | Path | None = None, consent_statement: str | None = None,
              consent_who: str | None = None, consent_scope: str | None = None, transcript: str | None = None,
              language: str = "en", display_name: str | None = None,
              replace: bool = False) -> tuple[VoiceProfile, ReferenceReport]:
    """Create ``<voices_dir>/<voice_id>/`` with ``reference.wav`` (24 kHz mono), the consent
    evidence and ``voice.yaml``; re-adding an existing id (``replace``) bumps its ``version``."""
    if not VOICE_ID_PATTERN.match(voice_id):
        raise VoiceError(f"'{voice_id}' is not a valid voice id (lowercase letters, digits, '.', '_', '-')")
    if (consent_file is None) == (consent_statement is None):
        raise VoiceError("a cloned voice needs exactly one of --consent FILE or --consent-statement TEXT")
    if consent_statement is not None and not consent_statement.strip():
        raise VoiceError("--consent-statement is empty")
    folder = Path(voices_dir) / voice_id
    version = 1
    if (folder / "voice.yaml").exists():
        if not replace:
            raise VoiceError(f"voice '{voice_id}' exists (pass --replace to make a new version)",
                             source=str(folder / "voice.yaml"))
        version = int(yaml.safe_load((folder / "voice.yaml").read_text(encoding="utf-8")).get("version", 1)) + 1
    audio, report = prepare_reference(reference)
    staging = Path(voices_dir) / f".{voice_id}.adding"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        soundfile.write(str(staging / "reference.wav"), audio, PROJECT_SAMPLE_RATE, subtype="PCM_24")
        consent: dict[str, object] = {
            "who": consent_who or display_name or voice_id,
            "when": dt.date.today().isoformat(),
            "scope": consent_scope or "voice cloning for castline renders",
        }
        if consent_file is not None:
            evidence = Path(consent_file)
            if not evidence.is_file():
                raise VoiceError("consent evidence file not found", source=str(evidence))
            target = f"consent{evidence.suffix.lower()}" if evidence.suffix else "consent"
            shutil.copyfile(evidence, staging / target)
            consent["evidence"] = target
            consent["evidence_sha256"] = sha256_file(staging / target)
        else:
            consent["statement"] = consent_statement.strip()
        profile = {
            "id": voice_id, "name": display_name or voice_id, "language": language, "engine": engine,
            "engine_voice": "clone", "version": version,
            "description": f"cloned from {Path(reference).name}",
            "reference": {"audio": "reference.wav", "sha256": sha256_file(staging / "reference.wav"),
                          **({"transcript": transcript} if transcript else {})},
            "consent": consent,
            "ingest": {"source": Path(reference).name, "source_sample_rate": report.source_sample_rate,
                       "source_channels": report.source_channels, "duration_s": report.duration_s,
                       "speech_rms_dbfs": report.speech_rms_dbfs, "gain_db": report.gain_db,
                       "warnings": list(report.warnings)},
        }
        (staging / "voice.yaml").write_text(yaml.safe_dump(profile, sort_keys=False, allow_unicode=True),
                                            encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return load_voice_profile(folder / "voice.yaml"), report
