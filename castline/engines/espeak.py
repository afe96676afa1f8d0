"""espeak-ng (GPL-3.0-or-later, a separate program run as a subprocess): formant synthesis in
~100 languages, 22.05 kHz, bit-deterministic.

The offline fallback for languages with no neural voice here: robotic formant speech (its
measured word error rate is in docs/benchmarks.md: usable in German, poor in Spanish). Installed from the OS packages (``apt-get install
espeak-ng``; ``make install`` does it when it can). ``engine_voice`` is an espeak-ng voice or
language (``es``, ``de``, ``pt-br``) with an optional variant (``es+f3``).
Profile options: ``wpm`` (words per minute, default 175), ``speed`` (a factor on ``wpm``: the
rate control dubbing uses), ``pitch`` (0–99, default 50).
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from typing import Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.textprep import plain_punctuation
from castline.core.errors import EngineError
from castline.voices.profiles import VoiceProfile

ESPEAK_SAMPLE_RATE = 22_050
DEFAULT_WPM = 175
MIN_WPM, MAX_WPM = 80, 450
"""espeak-ng's own limits for ``-s``."""
_BINARIES = ("espeak-ng", "espeak")


class EspeakEngine(Engine):
    name = "espeak"
    capabilities = EngineCapabilities(languages=("*",), cloning=False, max_chars=600, target_chars=300,
                                      sample_rate=ESPEAK_SAMPLE_RATE, deterministic=True, thread_parallel=True)
    shared = True  # no state: every call is its own espeak-ng process

    @classmethod
    def availability(cls) -> Availability:
        if espeak_binary() is None:
            return Availability(False, "espeak-ng is not installed (apt-get install espeak-ng)")
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        engine_ok = cls.availability()
        if not engine_ok.usable:
            return engine_ok
        if not espeak_knows(voice.engine_voice):
            return Availability(False, f"espeak-ng has no voice or language '{voice.engine_voice}'")
        return Availability(True)

    @classmethod
    def identity(cls, voice: VoiceProfile, options: EngineOptions | None = None) -> str:
        return espeak_version()

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        binary = espeak_binary()
        if binary is None:
            raise EngineError("espeak-ng is not installed (apt-get install espeak-ng)")
        wpm = words_per_minute(voice)
        pitch = int(voice.option("pitch", 50))
        outputs = []
        for text, _seed in zip(texts, seeds, strict=True):
            # Text on stdin (never argv: a line starting with '-' would read as an option);
            # -z: no final sentence pause, the caller places speech itself.
            command = [binary, "-v", voice.engine_voice, "-s", str(wpm), "-p", str(pitch), "-z", "-b", "1",
                       "--stdin", "--stdout"]
            completed = subprocess.run(command, input=plain_punctuation(text).encode("utf-8"),
                                       capture_output=True, timeout=120)
            if completed.returncode != 0:
                message = completed.stderr.decode(errors="replace").strip().splitlines()[:1]
                raise EngineError(f"espeak-ng failed: {message[0] if message else completed.returncode}")
            outputs.append(wav_bytes_to_float(completed.stdout))
        return outputs


def words_per_minute(voice: VoiceProfile) -> int:
    """The ``-s`` value: the profile's ``wpm`` times its ``speed`` factor, inside espeak's limits."""
    wpm = float(voice.option("wpm", DEFAULT_WPM)) * float(voice.option("speed", 1.0))
    return int(min(MAX_WPM, max(MIN_WPM, round(wpm))))


def wav_bytes_to_float(data: bytes) -> np.ndarray:
    """espeak-ng's ``--stdout`` WAV (16-bit mono; its header's sizes are placeholders) → float32."""
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise EngineError("espeak-ng did not return WAV audio")
    position = 12
    while position + 8 <= len(data):
        chunk_id = data[position:position + 4]
        size = struct.unpack("<I", data[position + 4:position + 8])[0]
        if chunk_id == b"data":
            payload = data[position + 8:]
            payload = payload[: len(payload) - len(payload) % 2]
            return (np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32768.0).astype(np.float32)
        position += 8 + size + (size & 1)
    raise EngineError("espeak-ng returned WAV audio with no data")


def espeak_binary() -> str | None:
    for name in _BINARIES:
        found = shutil.which(name)
        if found:
            return found
    return None


@functools.lru_cache(maxsize=1)
def espeak_version() -> str:
    binary = espeak_binary()
    if binary is None:
        return "espeak-ng missing"
    completed = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    words = completed.stdout.split()
    version = next((word for word in words if word[:1].isdigit()), "unknown")
    return f"espeak-ng {version}"


@functools.lru_cache(maxsize=1)
def espeak_voices() -> frozenset[str]:
    """Every language code, voice name and voice file espeak-ng lists (lowercase)."""
    binary = espeak_binary()
    if binary is None:
        return frozenset()
    completed = subprocess.run([binary, "--voices"], capture_output=True, text=True, timeout=30)
    names: set[str] = set()
    for line in completed.stdout.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5:
            names.update({parts[1].lower(), parts[3].lower(), parts[4].lower(),
                          parts[4].rsplit("/", 1)[-1].lower()})
    return frozenset(names)


def espeak_knows(engine_voice: str) -> bool:
    """Whether ``engine_voice`` (``es``, ``es+f3``, ``de``) is a voice espeak-ng has."""
    base = engine_voice.split("+", 1)[0].strip().lower()
    return bool(base) and base in espeak_voices()
