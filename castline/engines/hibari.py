"""hibari-tts (Apache-2.0): small English neural TTS, 24 kHz, deterministic with a seed."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.ort_options import session_options
from castline.engines.textprep import plain_punctuation
from castline.core.hashing import file_digest
from castline.voices.profiles import VoiceProfile


class HibariEngine(Engine):
    name = "hibari"
    capabilities = EngineCapabilities(languages=("en",), cloning=False, max_chars=400, target_chars=300,
                                      sample_rate=24_000, deterministic=True,
                                      # Its vocoder runs in Python/numpy: 2 threads measured 1.7x slower than 1.
                                      thread_parallel=False)
    # One instance for all worker threads: calls are serialised anyway (here, and by the engine
    # lock for callers that take it), and a second copy of the model and its G2P tables costs
    # memory for nothing.
    shared = True

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        self._models: dict[str, object] = {}
        self._g2ps: dict[bool, object] = {}
        self._load_lock = threading.Lock()
        self._call_lock = threading.Lock()

    @classmethod
    def availability(cls) -> Availability:
        if importlib.util.find_spec("hibari") is None:
            return Availability(False, "hibari-tts is not installed (pip install hibari-tts)")
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        path = _voice_file(voice.engine_voice)
        if path is None:
            return Availability(False, f"hibari has no voice '{voice.engine_voice}'")
        if not path.is_file():
            return Availability(False, f"hibari voice '{voice.engine_voice}' is download-only (not offline here)")
        return Availability(True)

    @classmethod
    def identity(cls, voice: VoiceProfile, options: EngineOptions | None = None) -> str:
        path = _voice_file(voice.engine_voice)
        digest = file_digest(str(path)) if path and path.is_file() else "missing"
        return f"hibari-tts {importlib.metadata.version('hibari-tts')} model {digest}"

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        model = self._model(voice.engine_voice)
        speed = float(voice.option("speed", 1.0))
        with self._call_lock:  # its G2P loads parts lazily, unguarded
            return [np.asarray(model(plain_punctuation(text), speed=speed, seed=seed), dtype=np.float32)
                    for text, seed in zip(texts, seeds, strict=True)]

    def _model(self, engine_voice: str):
        with self._load_lock:
            model = self._models.get(engine_voice)
            if model is None:
                import onnxruntime
                from hibari import Hibari
                from hibari.voices import VOICES

                from castline.engines.hibari_tables import packed_g2p

                british = bool(VOICES[engine_voice]["british"])
                if british not in self._g2ps:
                    self._g2ps[british] = packed_g2p(british)
                # One onnxruntime thread: measured faster than two on 2 cores. Voices of one accent
                # share a G2P: calls are serialised by the call lock.
                model = Hibari(voice=engine_voice, threads=1, g2p=self._g2ps[british])
                # The session again, without the memory arena that grows with the programme
                # (``session_options``); hibari builds its own with no way to pass options.
                model.sess = onnxruntime.InferenceSession(model.model_path, session_options(threads=1),
                                                          providers=["CPUExecutionProvider"])
                self._models[engine_voice] = model
        return model

    def close(self) -> None:
        self._models.clear()
        self._g2ps.clear()


def _voice_file(engine_voice: str) -> Path | None:
    spec = importlib.util.find_spec("hibari")
    if spec is None or spec.origin is None:
        return None
    import json

    package = Path(spec.origin).parent
    registry = json.loads((package / "assets" / "voices.json").read_text(encoding="utf-8"))
    entry = registry.get(engine_voice)
    if entry is None:
        return None
    bundled = package / "assets" / entry["file"]
    if bundled.is_file():
        return bundled
    from hibari.voices import cache_dir

    return Path(cache_dir()) / entry["file"]
