"""Synthesise chunk jobs into the store, reusing any chunk whose content hash is already there."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Iterator, Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.dsp.loudness import LoudnessMeter
from castline.engines.locks import engine_lock
from castline.engines.pool import get_engine
from castline.engines.registry import engine_class
from castline.engines.takes import TakeCache
from castline.core.errors import EngineError
from castline.core.hashing import derive_seed
from castline.core.progress import emit
from castline.core.timebase import ms_to_samples
from castline.qa.chunk_check import ChunkCheck, Take, check_takes, choose_best
from castline.qa.signal_checks import WORDS_PER_MINUTE_BAND
from castline.render.plan import SKIPPED_CHUNK_MS, UNSPEAKABLE_FLAG, ChunkJob, RenderPlan
from castline.storage import Store

CACHE_PREFIX = "_cache/chunks"
CHUNKS = TakeCache(CACHE_PREFIX)
"""Rendered chunks, by ``ChunkJob.key`` (``castline.engines.takes``)."""


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
    return CHUNKS.audio_key(key)


def batch_jobs(jobs: Sequence[ChunkJob], workers: int, max_batch: int | None = 12,
               batches_per_worker: int = 3) -> list[tuple[ChunkJob, ...]]:
    """Consecutive jobs in batches: about ``batches_per_worker`` per worker keeps them all busy,
    and ``max_batch`` (None: no cap) bounds how much one batch holds; few batches keep per-task
    overhead small. Batches hold about equal amounts of text (characters, which track speech
    time), so the workers finish together: equal job counts left the last batch a third the size
    of the others and one worker idle for its length. Jobs that belong to a window are left to
    window synthesis."""
    jobs = [job for job in jobs if job.window is None]
    if not jobs:
        return []
    size = max(1, math.ceil(len(jobs) / (workers * batches_per_worker)))
    if max_batch is not None:
        size = min(size, max_batch)
    count = math.ceil(len(jobs) / size)
    batches = _split_evenly(jobs, count, [max(1, len(job.spoken_text)) for job in jobs])
    if max_batch is not None and any(len(batch) > max_batch for batch in batches):
        batches = _split_evenly(jobs, count, [1] * len(jobs))
    return batches


def _split_evenly(jobs: Sequence[ChunkJob], count: int, weights: Sequence[int]) -> list[tuple[ChunkJob, ...]]:
    """``jobs`` cut into ``count`` consecutive non-empty runs of about equal total weight."""
    total = sum(weights)
    batches: list[tuple[ChunkJob, ...]] = []
    start, cumulative = 0, 0
    for number in range(1, count):
        target = total * number / count
        end = start + 1
        cumulative += weights[start]
        # leave at least one job for each batch still to come
        while end < len(jobs) - (count - number) and cumulative + weights[end] / 2 <= target:
            cumulative += weights[end]
            end += 1
        batches.append(tuple(jobs[start:end]))
        start = end
    batches.append(tuple(jobs[start:]))
    return batches


def synthesise_batch(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store) -> list[ChunkRecord]:
    """Reuse or render each job. Pending jobs of one voice go to the engine together, up to its
    ``batch_rows`` (one row each).

    Without QA every chunk is stored as soon as its call returns. With QA the batch is heard in
    rounds: every pending chunk's take is rendered, all are heard together (packed into as few
    Whisper windows as they fit), the failing ones are rendered again with new seeds and heard
    together again, up to ``max_attempts`` takes; each chunk keeps its best take and is stored
    as soon as it is settled.

    A chunk its voice cannot speak (``job.skipped``) is stored as silence, flagged, without a
    call. A chunk the engine fails on costs the others nothing: they are rendered and stored,
    then the first failure (an ``EngineError`` naming the script line) is raised."""
    records: dict[int, ChunkRecord] = {}
    pending: list[ChunkJob] = []
    for job, record in zip(jobs, cached_records(jobs, store, plan), strict=True):
        if record is None:
            pending.append(job)
        else:
            records[job.index] = record
            emit("synthesise", advance=1, detail="reused")
    for job in (job for job in pending if job.skipped):
        records[job.index] = store_skipped(job, plan, store)
        emit("synthesise", advance=1, detail="skipped")
    pending = [job for job in pending if not job.skipped]
    failures: list[tuple[int, EngineError]] = []
    rendered = _render_heard(pending, plan, store, failures) if plan.options.qa.enabled else (
        record for group in _row_groups(pending, plan) for record in _render_rows(group, plan, store, failures))
    for record in rendered:
        records[record.index] = record
        emit("synthesise", advance=1, detail="rendered")
    if failures:
        raise failures[0][1]
    return [records[job.index] for job in jobs]


def store_skipped(job: ChunkJob, plan: RenderPlan, store: Store) -> ChunkRecord:
    """``SKIPPED_CHUNK_MS`` of silence for a chunk its voice cannot speak, with a failing QA check
    (flag ``unspeakable``) when QA is on, so the report and summary list it."""
    silence = np.zeros(ms_to_samples(SKIPPED_CHUNK_MS, PROJECT_SAMPLE_RATE), dtype=np.float32)
    check = None
    if plan.options.qa.enabled:
        check = ChunkCheck(transcript="", wer=None, flags=(UNSPEAKABLE_FLAG,), passed=False, seed=job.seed,
                           fingerprint=plan.options.qa.fingerprint(rate_band(plan, job.voice_id)))
    return store_chunk(job, silence, store, check)


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


def rate_band(plan: RenderPlan, voice_id: str) -> tuple[float, float]:
    """The words-per-minute band QA expects of a voice: its profile's, else the default."""
    return plan.voice(voice_id).words_per_minute or WORDS_PER_MINUTE_BAND


def cached_records(jobs: Sequence[ChunkJob], store: Store, plan: RenderPlan | None = None) -> list[ChunkRecord | None]:
    """Per job, the stored chunk for ``job.key`` if both its audio and its metadata are complete.

    With QA on, stored chunks whose QA result is missing or was made under other QA settings
    (or another words-per-minute band) are heard again, together (the audio is reused; only
    the check runs)."""
    return refresh_checks([stored_chunk(job, store) for job in jobs], jobs, store, plan)


@dataclass(frozen=True)
class StoredChunk:
    """A complete chunk found in the store: its record (``check`` as stored) and its metadata."""

    record: ChunkRecord
    meta: dict


def stored_chunk(job: ChunkJob, store: Store) -> StoredChunk | None:
    """The stored chunk for ``job.key``, its QA result as stored, without hearing anything."""
    meta = CHUNKS.find(store, job.key)
    if meta is None:
        return None
    try:
        stored_check = meta.pop("check", None)
        record = ChunkRecord(**{**meta, "index": job.index, "rendered": False})
        check = ChunkCheck.from_json(stored_check) if stored_check else None
    except (ValueError, TypeError, KeyError):
        return None
    return StoredChunk(replace(record, check=check), meta)


def refresh_checks(found: Sequence[StoredChunk | None], jobs: Sequence[ChunkJob], store: Store,
                   plan: RenderPlan | None) -> list[ChunkRecord | None]:
    """Records for ``found`` (None stays None), stale QA results heard again together and stored."""
    settings = plan.options.qa if plan is not None else None
    records = [item.record if item is not None else None for item in found]
    if settings is None or not settings.enabled:
        return records
    stale = [(position, job) for position, (item, job) in enumerate(zip(found, jobs, strict=True))
             if item is not None and (item.record.check is None or item.record.check.fingerprint
                                      != settings.fingerprint(rate_band(plan, job.voice_id)))]
    if not stale:
        return records
    takes, rates = [], []
    for _, job in stale:
        audio, rate = CHUNKS.read(store, job.key)
        takes.append(Take(audio, job.reference_text, job.engine, job.seed, rate_band(plan, job.voice_id)))
        rates.append(rate)
    checks: list[ChunkCheck | None] = [None] * len(stale)
    for rate in sorted(set(rates)):  # one rate (the project's) unless the store holds older chunks
        members = [i for i, r in enumerate(rates) if r == rate]
        heard = check_takes([takes[i] for i in members], rate, language=plan.episode.meta.language, settings=settings)
        for i, check in zip(members, heard, strict=True):
            checks[i] = check
    for (position, job), check in zip(stale, checks, strict=True):
        meta = found[position].meta
        CHUNKS.put_meta(store, job.key, {**meta, "check": check.to_json()})
        records[position] = replace(records[position], check=check)
    return records


def _render_rows(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store,
                 failures: list[tuple[int, EngineError]]) -> list[ChunkRecord]:
    first = jobs[0]
    engine = get_engine(first.engine, plan.options.engine_options)
    outputs = _synthesise_or_fail(engine, jobs, [job.seed for job in jobs], plan, failures)
    return [store_chunk(job, audio, store) for job, audio in zip(jobs, outputs, strict=True) if audio is not None]


def _synthesise_or_fail(engine, jobs: Sequence[ChunkJob], seeds: Sequence[int], plan: RenderPlan,
                        failures: list[tuple[int, EngineError]]) -> list[np.ndarray | None]:
    """``_synthesise``, with a failing job's audio None and (its index, the error) appended to ``failures``.
    A call of several rows that fails is made again one row at a time, so only the rows that
    fail on their own are lost."""
    try:
        return _synthesise(engine, jobs, seeds, plan)
    except EngineError as error:
        if len(jobs) == 1:
            failures.append((jobs[0].index, error))
            return [None]
    return [audio for job, seed in zip(jobs, seeds, strict=True)
            for audio in _synthesise_or_fail(engine, [job], [seed], plan, failures)]


def _render_heard(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store,
                  failures: list[tuple[int, EngineError]]) -> Iterator[ChunkRecord]:
    """Render, hear and retry ``jobs`` in rounds (see ``synthesise_batch``); yields each chunk's
    record once its best take is stored. Every take's check is kept for the attempt log."""
    settings = plan.options.qa
    takes: dict[int, list[tuple[np.ndarray, ChunkCheck]]] = {job.index: [] for job in jobs}
    todo, attempt = list(jobs), 0
    while todo:
        seeds = [job.seed if attempt == 0 else derive_seed(job.seed, f"qa-retry-{attempt}") for job in todo]
        round_failures: list[tuple[int, EngineError]] = []
        audios = _synthesise_all(todo, seeds, plan, round_failures)
        for job, audio in zip(todo, audios, strict=True):
            if audio is not None:
                continue
            if takes[job.index]:  # a retry failed: the takes already heard still count
                best, chosen = choose_best([take for _, take in takes[job.index]])
                yield store_chunk(job, takes.pop(job.index)[best][0], store, chosen)
            else:
                failures.append((job.index, dict(round_failures)[job.index]))
        kept = [i for i, audio in enumerate(audios) if audio is not None]  # failed jobs drop out
        todo, seeds, audios = [todo[i] for i in kept], [seeds[i] for i in kept], [audios[i] for i in kept]
        if not todo:
            return
        checks = check_takes([Take(audio, job.reference_text, job.engine, seed, rate_band(plan, job.voice_id))
                              for job, audio, seed in zip(todo, audios, seeds, strict=True)],
                             PROJECT_SAMPLE_RATE, language=plan.episode.meta.language, settings=settings)
        retry = []
        for job, audio, check in zip(todo, audios, checks, strict=True):
            takes[job.index].append((audio, check))
            if not check.passed and len(takes[job.index]) < settings.max_attempts:
                retry.append(job)
                continue
            best, chosen = choose_best([take for _, take in takes[job.index]])
            yield store_chunk(job, takes.pop(job.index)[best][0], store, chosen)
        todo, attempt = retry, attempt + 1


def _synthesise_all(jobs: Sequence[ChunkJob], seeds: Sequence[int], plan: RenderPlan,
                    failures: list[tuple[int, EngineError]]) -> list[np.ndarray | None]:
    """``_synthesise_or_fail`` for jobs of any voices: one call per row group; audio in job order."""
    seed_of = {job.index: seed for job, seed in zip(jobs, seeds, strict=True)}
    audio_of: dict[int, np.ndarray | None] = {}
    for group in _row_groups(jobs, plan):
        engine = get_engine(group[0].engine, plan.options.engine_options)
        audios = _synthesise_or_fail(engine, group, [seed_of[job.index] for job in group], plan, failures)
        audio_of.update((job.index, audio) for job, audio in zip(group, audios, strict=True))
    return [audio_of[job.index] for job in jobs]


def _synthesise(engine, jobs: Sequence[ChunkJob], seeds: Sequence[int], plan: RenderPlan) -> list[np.ndarray]:
    """Engine output resampled to the project rate, checked for emptiness and non-finite samples."""
    first = jobs[0]
    try:
        with engine_lock(engine):
            outputs = engine.synthesize([job.spoken_text for job in jobs], plan.voice(first.voice_id), list(seeds))
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


def store_chunk(job: ChunkJob, audio: np.ndarray, store: Store, check: ChunkCheck | None = None) -> ChunkRecord:
    """Store ``audio`` (float32 mono at the project rate) as ``job``'s chunk with its loudness and QA result."""
    meter = LoudnessMeter(PROJECT_SAMPLE_RATE, 1, true_peak=False)
    meter.process(audio)
    lufs = meter.result().integrated_lufs
    stored = CHUNKS.put_audio(store, job.key, audio, PROJECT_SAMPLE_RATE).info
    record = ChunkRecord(index=job.index, key=job.key, uri=stored.uri, sha256=stored.sha256, bytes=stored.bytes,
                         duration_samples=int(audio.size), sample_rate=PROJECT_SAMPLE_RATE,
                         integrated_lufs=lufs if math.isfinite(lufs) else None, rendered=True, check=check)
    meta = {k: v for k, v in asdict(record).items() if k not in ("index", "rendered", "check")}
    if check is not None:
        meta["check"] = check.to_json()
    CHUNKS.put_meta(store, job.key, meta)
    return record


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
