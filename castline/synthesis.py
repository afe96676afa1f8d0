"""Synthesise chunk jobs into the store, reusing any chunk whose content hash is already there."""

from __future__ import annotations

import json
import math
import tempfile
import threading
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.chunkfile import write_chunk
from castline.audio.resample import resample
from castline.dsp.loudness import LoudnessMeter
from castline.engines.pool import get_engine
from castline.engines.registry import engine_class
from castline.errors import EngineError
from castline.hashing import derive_seed
from castline.progress import emit
from castline.qa.chunk_check import ChunkCheck, check_take, choose_best
from castline.render_plan import ChunkJob, RenderPlan
from castline.storage import Store

CACHE_PREFIX = "_cache/chunks"


@dataclass(frozen=True)
class ChunkRecord:
    """A chunk's audio in the store, and what stitching needs to know without reading it.

    ``integrated_lufs`` is ``None`` for chunks too short to gate (< 400 ms).
    """

    index: int
    key: str
    uri: str
    sha256: str
    bytes: int
    duration_samples: int
    sample_rate: int
    integrated_lufs: float | None
    rendered: bool
    check: ChunkCheck | None = None


def audio_key(key: str) -> str:
    return f"{CACHE_PREFIX}/{key[:2]}/{key}.flac"


def meta_key(key: str) -> str:
    return f"{CACHE_PREFIX}/{key[:2]}/{key}.json"


def batch_jobs(jobs: Sequence[ChunkJob], workers: int, max_batch: int = 12) -> list[tuple[ChunkJob, ...]]:
    """Consecutive jobs in batches: enough batches to keep ``workers`` busy, few enough that
    per-task overhead stays small. Jobs that belong to a window are left to window synthesis."""
    jobs = [job for job in jobs if job.window is None]
    if not jobs:
        return []
    size = max(1, min(max_batch, math.ceil(len(jobs) / (workers * 3))))
    return [tuple(jobs[start:start + size]) for start in range(0, len(jobs), size)]


def synthesise_batch(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store) -> list[ChunkRecord]:
    """Reuse or render each job. Pending jobs of one voice go to the engine together, up to its
    ``batch_rows`` (one row each); every rendered chunk is stored as soon as its call returns."""
    records: dict[int, ChunkRecord] = {}
    pending: list[ChunkJob] = []
    for job in jobs:
        record = cached_record(job, store, plan)
        if record is None:
            pending.append(job)
        else:
            records[job.index] = record
            emit("synthesise", advance=1, detail="reused")
    for group in _row_groups(pending, plan):
        for record in _render_rows(group, plan, store):
            records[record.index] = record
            emit("synthesise", advance=1, detail="rendered")
    return [records[job.index] for job in jobs]


def _row_groups(jobs: Sequence[ChunkJob], plan: RenderPlan) -> list[list[ChunkJob]]:
    groups: dict[tuple[str, str], list[list[ChunkJob]]] = {}
    ordered: list[list[ChunkJob]] = []
    for job in jobs:
        rows = engine_class(job.engine).capabilities.batch_rows
        lists = groups.setdefault((job.engine, job.voice_id), [])
        if not lists or len(lists[-1]) >= rows:
            lists.append([])
            ordered.append(lists[-1])
        lists[-1].append(job)
    return ordered


def cached_record(job: ChunkJob, store: Store, plan: RenderPlan | None = None) -> ChunkRecord | None:
    """The stored chunk for ``job.key`` if both its audio and its metadata are complete.

    With QA on, a stored chunk whose QA result is missing or was made under other QA settings
    is heard again (the audio is reused; only the check runs)."""
    if not store.exists(meta_key(job.key)) or not store.exists(audio_key(job.key)):
        return None
    try:
        meta = json.loads(store.get_bytes(meta_key(job.key)))
        stored_check = meta.pop("check", None)
        record = ChunkRecord(**{**meta, "index": job.index, "rendered": False})
    except (ValueError, TypeError, KeyError):
        return None
    settings = plan.options.qa if plan is not None else None
    check = ChunkCheck.from_json(stored_check) if stored_check else None
    if settings is not None and settings.enabled and (check is None or check.fingerprint != settings.fingerprint()):
        from castline.audio.chunkfile import read_chunk

        with store.local_copy(audio_key(job.key)) as path:
            audio, rate = read_chunk(path)
        check = check_take(audio, rate, job.text, engine=job.engine, language=plan.episode.meta.language,
                           settings=settings, seed=job.seed)
        store.put_bytes(json.dumps({**meta, "check": check.to_json()}, sort_keys=True).encode(), meta_key(job.key))
    return replace(record, check=check)


def _render_rows(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store) -> list[ChunkRecord]:
    first = jobs[0]
    voice = plan.voice(first.voice_id)
    engine = get_engine(first.engine, plan.options.engine_options)
    outputs = _synthesise(engine, jobs, [job.seed for job in jobs], plan)
    records = []
    for job, audio in zip(jobs, outputs, strict=True):
        audio, check = _heard(job, audio, engine, voice, plan)
        records.append(_store_chunk(job, audio, plan, store, check))
    return records


def _synthesise(engine, jobs: Sequence[ChunkJob], seeds: Sequence[int], plan: RenderPlan) -> list[np.ndarray]:
    """Engine output resampled to the project rate, checked for emptiness and non-finite samples."""
    first = jobs[0]
    try:
        with _engine_lock(engine):
            outputs = engine.synthesize([job.text for job in jobs], plan.voice(first.voice_id), list(seeds))
    except EngineError:
        raise
    except Exception as error:  # an engine failing on an input must name that input
        raise EngineError(f"engine '{first.engine}' failed on chunk {first.index} ({_excerpt(first.text)}): {error}",
                          source=plan.episode.source_path, line=first.source_line) from error
    audios = []
    for job, native in zip(jobs, outputs, strict=True):
        audio = resample(native, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
        if audio.size == 0 or not np.all(np.isfinite(audio)):
            raise EngineError(f"engine '{job.engine}' produced no usable audio for chunk {job.index} "
                              f"({_excerpt(job.text)})", source=plan.episode.source_path, line=job.source_line)
        audios.append(audio)
    return audios


def _heard(job: ChunkJob, audio: np.ndarray, engine, voice, plan: RenderPlan) -> tuple[np.ndarray, ChunkCheck | None]:
    """QA a take; while it fails and attempts remain, render again with a new seed; keep the best."""
    settings = plan.options.qa
    if not settings.enabled:
        return audio, None
    language = plan.episode.meta.language
    takes = [check_take(audio, PROJECT_SAMPLE_RATE, job.text, engine=job.engine, language=language,
                        settings=settings, seed=job.seed)]
    audios = [audio]
    while not takes[-1].passed and len(takes) < settings.max_attempts:
        seed = derive_seed(job.seed, f"qa-retry-{len(takes)}")
        [retake] = _synthesise(engine, [job], [seed], plan)
        audios.append(retake)
        takes.append(check_take(retake, PROJECT_SAMPLE_RATE, job.text, engine=job.engine, language=language,
                                settings=settings, seed=seed))
    best, check = choose_best(takes)
    return audios[best], check


def _store_chunk(job: ChunkJob, audio: np.ndarray, plan: RenderPlan, store: Store,
                 check: ChunkCheck | None = None) -> ChunkRecord:
    meter = LoudnessMeter(PROJECT_SAMPLE_RATE, 1, true_peak=False)
    meter.process(audio)
    lufs = meter.result().integrated_lufs
    with tempfile.TemporaryDirectory(prefix="castline-chunk-") as folder:
        path = Path(folder) / "chunk.flac"
        write_chunk(path, audio, PROJECT_SAMPLE_RATE)
        stored = store.put_file(path, audio_key(job.key))
    record = ChunkRecord(index=job.index, key=job.key, uri=stored.uri, sha256=stored.sha256, bytes=stored.bytes,
                         duration_samples=int(audio.size), sample_rate=PROJECT_SAMPLE_RATE,
                         integrated_lufs=lufs if math.isfinite(lufs) else None, rendered=True, check=check)
    meta = {k: v for k, v in asdict(record).items() if k not in ("index", "rendered", "check")}
    if check is not None:
        meta["check"] = check.to_json()
    # The metadata object is written last: its presence marks the chunk complete.
    store.put_bytes(json.dumps(meta, sort_keys=True).encode(), meta_key(job.key))
    return record


_SERIAL_LOCKS: dict[str, threading.Lock] = {}
_SERIAL_LOCKS_GUARD = threading.Lock()


def _engine_lock(engine) -> AbstractContextManager:
    """A per-engine lock for engines that are slower when run in parallel threads."""
    if engine.capabilities.thread_parallel:
        return nullcontext()
    with _SERIAL_LOCKS_GUARD:
        return _SERIAL_LOCKS.setdefault(engine.name, threading.Lock())


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
