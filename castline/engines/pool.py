"""One loaded engine per worker thread: load on first use, reuse for every batch, release at the end."""

from __future__ import annotations

import threading

from castline.engines.base import Engine, EngineOptions
from castline.engines.registry import engine_class

_local = threading.local()
_lock = threading.Lock()
_loaded: list[Engine] = []
_generation = 0


def get_engine(name: str, options: EngineOptions = EngineOptions()) -> Engine:
    """The calling thread's instance of engine ``name`` with ``options`` (loaded once per thread).

    Per thread rather than per process because the engines' Python wrappers keep per-call
    state that is not documented as thread-safe; onnxruntime itself would allow sharing.
    """
    if getattr(_local, "generation", None) != _generation:
        _local.engines = {}
        _local.generation = _generation
    engine = _local.engines.get((name, options))
    if engine is None:
        engine = engine_class(name)(options)
        _local.engines[(name, options)] = engine
        with _lock:
            _loaded.append(engine)
    return engine


def loaded_count() -> int:
    """Engines currently loaded in this process (all threads)."""
    with _lock:
        return len(_loaded)


def release_all() -> None:
    """Close every engine loaded by any thread; the next ``get_engine`` loads afresh."""
    global _generation
    with _lock:
        engines = list(_loaded)
        _loaded.clear()
        _generation += 1
    for engine in engines:
        engine.close()
