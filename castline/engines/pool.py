"""The process's one pool of loaded models, loaded on first use, reused for every batch, released
at the end.

Engines (``get_engine``) and speech recognisers (``castline.qa.asr.get_transcriber``) both live
here, each under its own ``kind``, so releasing one kind leaves the other loaded. A model whose
runtime serves several threads at once is **shared**: one instance per process and key, whichever
worker thread asks (onnxruntime's ``InferenceSession.run`` and CTranslate2's models are
thread-safe, and their weights are the bulk of a model's memory). A model whose Python wrapper
keeps per-call state that is not safe across threads gets one instance per thread and key.
Each engine says which it is (``Engine.shared``); a caller of ``ModelPool.get`` passes ``shared``.
"""

from __future__ import annotations

import threading
from typing import Callable, Hashable, TypeVar

from castline.core.allocator import release_free_memory
from castline.engines.base import Engine, EngineOptions
from castline.engines.registry import engine_class

Model = TypeVar("Model")
ENGINE = "engine"


class ModelPool:
    """Models by ``(kind, key)``: shared (one per process) or one per thread; anything with a ``close()``."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._lock = threading.Lock()
        self._loaded: dict[str, list] = {}
        self._generations: dict[str, int] = {}
        self._shared: dict[str, dict[Hashable, object]] = {}
        self._creating: dict[tuple[str, Hashable], threading.Lock] = {}

    def get(self, kind: str, key: Hashable, create: Callable[[], Model], *, shared: bool = False) -> Model:
        """The model for ``(kind, key)``, made by ``create()`` on first use: the process's one
        instance when ``shared``, else the calling thread's own."""
        if shared:
            return self._get_shared(kind, key, create)
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

    def _get_shared(self, kind: str, key: Hashable, create: Callable[[], Model]) -> Model:
        with self._lock:
            model = self._shared.get(kind, {}).get(key)
            if model is not None:
                return model
            creating = self._creating.setdefault((kind, key), threading.Lock())
        # One thread creates while the others for the same key wait (two threads arriving
        # together would otherwise load two copies); other keys and kinds are not held up.
        with creating:
            with self._lock:
                model = self._shared.get(kind, {}).get(key)
            if model is None:
                model = create()
                with self._lock:
                    self._shared.setdefault(kind, {})[key] = model
                    self._loaded.setdefault(kind, []).append(model)
        return model

    def count(self, kind: str) -> int:
        """Models of ``kind`` made in this process (shared ones once, per-thread ones per thread)
        since its last release."""
        with self._lock:
            return len(self._loaded.get(kind, ()))

    def release(self, kind: str) -> None:
        """Close every model of ``kind``, shared or of any thread; the next ``get`` makes them afresh.
        Call it when no thread is using them (between batches, after the workers are done)."""
        with self._lock:
            models = self._loaded.pop(kind, [])
            self._shared.pop(kind, None)
            self._generations[kind] = self._generations.get(kind, 0) + 1
        for model in models:
            model.close()
        if models:
            release_free_memory()


MODELS = ModelPool()
"""The process's pool."""


def get_engine(name: str, options: EngineOptions = EngineOptions()) -> Engine:
    """Engine ``name`` with ``options``, loaded once: shared by every worker thread when the
    engine is ``shared``, else one instance per thread."""
    cls = engine_class(name)
    return MODELS.get(ENGINE, (name, options), lambda: cls(options), shared=cls.shared)


def loaded_count() -> int:
    """Engine instances currently loaded in this process (a shared one counts once)."""
    return MODELS.count(ENGINE)


def release_all() -> None:
    """Close every engine loaded by any thread; the next ``get_engine`` loads afresh."""
    MODELS.release(ENGINE)
