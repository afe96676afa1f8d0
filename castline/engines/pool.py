"""The process's one pool of loaded models: one instance per worker thread and key, loaded on
first use, reused for every batch, released at the end.

Engines (``get_engine``) and speech recognisers (``castline.qa.asr.get_transcriber``) both live
here, each under its own ``kind``, so releasing one kind leaves the other loaded. Per thread
rather than per process because the models' Python wrappers keep per-call state that is not
documented as thread-safe (onnxruntime and CTranslate2 themselves would allow sharing).
"""

from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

from castline.engines.base import Engine, EngineOptions
from castline.engines.registry import engine_class

Model = TypeVar("Model")
ENGINE = "engine"


class ModelPool:
    """Models by ``(kind, key)``, one instance per thread; anything with a ``close()``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._loaded: dict[str, list] = {}
        self._generations: dict[str, int] = {}

    def get(self, kind: str, key: Hashable, create: Callable[[], Model]) -> Model:
        """The calling thread's model for ``(kind, key)``, made by ``create()`` on first use."""
        with self._lock:
            generation = self._generations.get(kind, 0)
        held = getattr(self._local, "kinds", None)
        if held is None:
            held = self._local.kinds = {}
        mine = held.get(kind)
        if mine is None or mine[0] != generation:
            mine = held[kind] = (generation, {})
        model = mine[1].get(key)
        if model is None:
            model = create()
            mine[1][key] = model
            with self._lock:
                self._loaded.setdefault(kind, []).append(model)
        return model

    def count(self, kind: str) -> int:
        """Models of ``kind`` made in this process (all threads) since its last release."""
        with self._lock:
            return len(self._loaded.get(kind, ()))

    def release(self, kind: str) -> None:
        """Close every model of ``kind`` of every thread; the next ``get`` makes them afresh."""
        with self._lock:
            models = self._loaded.pop(kind, [])
            self._generations[kind] = self._generations.get(kind, 0) + 1
        for model in models:
            model.close()


MODELS = ModelPool()
"""The process's pool."""


def get_engine(name: str, options: EngineOptions = EngineOptions()) -> Engine:
    """The calling thread's instance of engine ``name`` with ``options`` (loaded once per thread)."""
    return MODELS.get(ENGINE, (name, options), lambda: engine_class(name)(options))


def loaded_count() -> int:
    """Engines currently loaded in this process (all threads)."""
    return MODELS.count(ENGINE)


def release_all() -> None:
    """Close every engine loaded by any thread; the next ``get_engine`` loads afresh."""
    MODELS.release(ENGINE)
