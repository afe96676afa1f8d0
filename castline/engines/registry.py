"""Engines by name. Classes are imported on first use, so listing engines loads no model."""

from __future__ import annotations

import importlib
from typing import Type

from castline.engines.base import Availability, Engine
from castline.core.errors import EngineError
from castline.voices.profiles import VoiceProfile

ENGINE_CLASSES: dict[str, str] = {
    "espeak": "castline.engines.espeak:EspeakEngine",
    "hibari": "castline.engines.hibari:HibariEngine",
    "piper": "castline.engines.piper:PiperEngine",
    "pocket-tts": "castline.engines.pocket_tts:PocketTTSEngine",
    "vibevoice": "castline.engines.vibevoice:VibeVoiceEngine",
}


def engine_names() -> list[str]:
    return sorted(ENGINE_CLASSES)


def engine_class(name: str) -> Type[Engine]:
    try:
        target = ENGINE_CLASSES[name]
    except KeyError:
        raise EngineError(f"unknown engine '{name}' (known: {', '.join(engine_names())})") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def voice_usability(voice: VoiceProfile, engine_name: str | None = None) -> Availability:
    """Can ``voice`` be rendered here, by its own engine or by ``engine_name``?"""
    name = engine_name or voice.engine
    if name not in ENGINE_CLASSES:
        return Availability(False, f"unknown engine '{name}'")
    cls = engine_class(name)
    engine_ok = cls.availability()
    if not engine_ok.usable:
        return engine_ok
    if name != voice.engine and not cls.capabilities.cloning:
        return Availability(False, f"voice is for engine '{voice.engine}', not '{name}'")
    return cls.voice_availability(voice)
