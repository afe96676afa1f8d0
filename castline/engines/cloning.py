"""Checks shared by the engines that clone voices through transformers (no heavy imports)."""

from __future__ import annotations

import importlib
import importlib.util
import threading
from pathlib import Path
from typing import Any

from castline.engines.base import Availability
from castline.voices.profiles import VoiceProfile


_IMPORT_LOCK = threading.Lock()


def from_transformers(*names: str) -> tuple[Any, ...]:
    """``names`` from transformers, imported under one process-wide lock.

    Workers load engines in parallel threads; two threads importing transformers' lazy modules
    at the same moment can see a half-initialised module ("cannot import name 'AutoConfig'",
    seen once in CI). Serialising the first import costs nothing after it."""
    with _IMPORT_LOCK:
        transformers = importlib.import_module("transformers")
        return tuple(getattr(transformers, name) for name in names)


def transformers_model_availability(model_folder: str, marker_file: str, label: str) -> Availability:
    """Are torch and a transformers that ships ``models/<model_folder>/<marker_file>`` installed?

    Looked up on disk: ``find_spec`` on the submodule would import transformers (seconds).
    """
    for package in ("torch", "transformers"):
        if importlib.util.find_spec(package) is None:
            return Availability(False, f"{package} is not installed (pip install 'castline[clone]')")
    locations = importlib.util.find_spec("transformers").submodule_search_locations or []
    if not any((Path(location) / "models" / model_folder / marker_file).is_file() for location in locations):
        return Availability(False, f"this transformers has no {label} (needs transformers >= 5.23)")
    return Availability(True)


def reference_voice_availability(voice: VoiceProfile) -> Availability:
    """A cloning engine can speak any profile whose reference clip is present."""
    if voice.reference is None:
        return Availability(False, "voice has no reference audio to clone")
    if not Path(voice.reference.path).is_file():
        return Availability(False, f"reference audio '{voice.reference.path}' is missing")
    return Availability(True)
