"""Synthesise chunk jobs into the store, reusing any chunk whose content hash is already there."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator, Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.dsp.loudness import LoudnessMeter
from castline.engines.locks import engine_lock
from castline.core.allocator import release_free_memory
from castline.engines.pool import get_engine
from castline.engines.registry import engine_class
from castline.engines.takes import TakeCache
from castline.core.errors import EngineError, StorageError
from castline.core.hashing import content_hash, derive_seed
from castline.core.progress import emit
from castline.core.timebase import ms_to_samples
from castline.qa.chunk_check import ChunkCheck, Take, check_takes, choose_best
from castline.qa.signal_checks import WORDS_PER_MINUTE_BAND
from castline.render.plan import SKIPPED_CHUNK_MS, UNSPEAKABLE_FLAG, ChunkJob, RenderPlan
from castline.storage import ObjectInfo, Store

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
    as soon as it is settled. Every take is stored the moment it is made, and its check the moment
    it is heard (``_render_heard``), so a render killed between the two loses no take.

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
        emit("synthesise", advance=1, detail="rendered" if record.rendered else "reused")
    release_free_memory()  # the batch's working arrays, freed but kept by the allocator
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

    With QA on, a stored chunk without a QA result is a first take still to be settled (stored
    without QA, or by a QA render killed before settling it): None here, it goes to the QA
    rounds (``_render_heard``), which hear it with the other takes of its round and retry it if
    it fails. Settled chunks whose QA result was made under other QA settings (or another
    words-per-minute band) are heard again, together, and kept (the audio is reused; only the
    check runs)."""
    found = [stored_chunk(job, store) for job in jobs]
    if plan is not None and plan.options.qa.enabled:
        found = [item if item is not None and item.record.check is not None else None for item in found]
    return refresh_checks(found, jobs, store, plan)


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
        meta.pop(TAKE_FIELD, None)  # a first take not yet settled: the chunk as made, without QA
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
    records = [store_chunk(job, audio, store) for job, audio in zip(jobs, outputs, strict=True) if audio is not None]
    emit("take", advance=len(records), detail="made")
    return records


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


TAKE_FIELD = "take"
"""Metadata field of a take not yet settled: its ``attempt`` (0: the first), ``seed`` and, once
heard, its ``check``. A settled chunk has ``check`` instead."""


def take_seed(job: ChunkJob, attempt: int) -> int:
    """The seed of take ``attempt`` (0: the first) of ``job``: retakes get seeds derived from the first."""
    return job.seed if attempt == 0 else derive_seed(job.seed, f"qa-retry-{attempt}")


def retake_key(key: str, attempt: int) -> str:
    """Where take ``attempt`` of chunk ``key`` waits in the chunk cache until the chunk is settled.
    The first take waits under the chunk's own key (a chunk settled on it needs no copy) and is
    copied here only while a later take replaces it there."""
    return content_hash({"chunk": key, "qa_take": attempt})


@dataclass(frozen=True)
class _HeldTake:
    """One stored take of a chunk in the QA rounds: ``attempt``, ``seed``, the cache ``key`` it is
    stored under, ``meta`` (its record's fields as stored), ``samples`` (at the project rate, as
    the cache holds them: what is heard, whether the take was made by this render or an earlier
    one) and ``check`` once heard."""

    attempt: int
    seed: int
    key: str
    meta: dict
    samples: np.ndarray = field(repr=False, compare=False)
    check: ChunkCheck | None = None

    def stored_meta(self) -> dict:
        take: dict[str, object] = {"attempt": self.attempt, "seed": self.seed}
        if self.check is not None:
            take["check"] = self.check.to_json()
        return {**self.meta, TAKE_FIELD: take}


def _render_heard(jobs: Sequence[ChunkJob], plan: RenderPlan, store: Store,
                  failures: list[tuple[int, EngineError]]) -> Iterator[ChunkRecord]:
    """Render, hear and retry ``jobs`` in rounds (see ``synthesise_batch``); yields each chunk's
    record once its best take is stored. Every take's check is kept for the attempt log.

    Each take is stored as it is made (``_store_take``) and its check as it is heard, all checks
    of a round before any chunk of it is settled. A render killed part-way therefore left takes
    that this one picks up (``_stored_takes``) and hears in the rounds an uninterrupted render
    hears them in, with the same other takes (packed hearing depends on them): a round whose
    checks were only partly stored is heard again whole. The same takes are made, heard
    together, retried and chosen as without the kill, and none is made twice."""
    settings = plan.options.qa
    takes = {job.index: _stored_takes(job, plan, store) for job in jobs}
    heard_rounds = min((_heard_count(held) for held in takes.values()), default=0)
    takes = {index: [replace(take, check=None) if take.attempt >= heard_rounds else take for take in held]
             for index, held in takes.items()}
    made: set[int] = set()  # jobs with a take made by this render
    todo = list(jobs)
    while todo:
        waiting = []
        for job in todo:
            heard = takes[job.index][:_heard_count(takes[job.index])]
            if heard and (heard[-1].check.passed or len(heard) >= settings.max_attempts):
                yield _settle(job, heard, takes[job.index], store, rendered=job.index in made)
            else:
                waiting.append(job)
        if not waiting:
            return
        attempt = _heard_count(takes[waiting[0].index])  # the same for every chunk of a round
        needed = [job for job in waiting if len(takes[job.index]) <= attempt]
        round_failures: list[tuple[int, EngineError]] = []
        if attempt and needed:
            # Whisper's working memory from the last round, before its retries are made (a batch
            # with none left is trimmed once at its end, by synthesise_batch).
            release_free_memory()
        for job, seed, audio in _synthesise_rows(needed, [take_seed(job, attempt) for job in needed], plan,
                                                 round_failures):
            if audio is None:
                waiting.remove(job)
                heard = takes[job.index][:attempt]
                if heard:  # a retry failed: the takes already heard still count
                    yield _settle(job, heard, takes[job.index], store, rendered=job.index in made)
                else:
                    failures.append((job.index, dict(round_failures)[job.index]))
                continue
            takes[job.index].append(_store_take(job, attempt, seed, audio, store))
            made.add(job.index)
            emit("take", advance=1, detail="made")
        if not waiting:
            return
        heard_now = [takes[job.index][attempt] for job in waiting]
        release_free_memory()  # synthesis's working arrays, before Whisper's
        checks = check_takes([Take(take.samples, job.reference_text, job.engine, take.seed,
                                   rate_band(plan, job.voice_id))
                              for job, take in zip(waiting, heard_now, strict=True)],
                             PROJECT_SAMPLE_RATE, language=plan.episode.meta.language, settings=settings)
        for job, take, check in zip(waiting, heard_now, checks, strict=True):
            # as stored, so that a render resumed from the store holds exactly the same check
            take = replace(take, check=ChunkCheck.from_json(check.to_json()))
            CHUNKS.put_meta(store, take.key, take.stored_meta())
            takes[job.index][attempt] = take
        todo = waiting


def _heard_count(takes: Sequence[_HeldTake]) -> int:
    """How many of the first takes have been heard."""
    count = 0
    while count < len(takes) and takes[count].check is not None:
        count += 1
    return count


def _stored_takes(job: ChunkJob, plan: RenderPlan, store: Store) -> list[_HeldTake]:
    """The takes of ``job`` an interrupted render stored, first take first, as far as they run
    unbroken (a chunk stored without QA is a first take not yet heard). A check made under other
    QA settings counts as not heard, and so does every check after a take not heard."""
    settings = plan.options.qa
    fingerprint = settings.fingerprint(rate_band(plan, job.voice_id))
    takes: list[_HeldTake] = []
    for attempt in range(settings.max_attempts):
        keys = (job.key, retake_key(job.key, 0)) if attempt == 0 else (retake_key(job.key, attempt),)
        found = next(((key, meta) for key in keys if (meta := CHUNKS.find(store, key)) is not None
                      and _first_take_or_retake(meta, job)), None)
        if found is None:
            break
        key, meta = found
        try:
            take = meta.pop(TAKE_FIELD, None) or {"attempt": 0, "seed": job.seed}
            meta.pop("check", None)
            check = ChunkCheck.from_json(take["check"]) if take.get("check") else None
            if int(take["attempt"]) != attempt or int(take["seed"]) != take_seed(job, attempt):
                break
        except (ValueError, TypeError, KeyError, AttributeError):
            break
        try:
            audio, rate = CHUNKS.read(store, key)
        except (OSError, RuntimeError, ValueError, StorageError):  # gone meanwhile (a chunk repeated elsewhere)
            break
        heard = check is not None and check.fingerprint == fingerprint and _heard_count(takes) == len(takes)
        takes.append(_HeldTake(attempt, take_seed(job, attempt), key, meta, resample(audio, rate, PROJECT_SAMPLE_RATE),
                               check if heard else None))
    return takes


def _first_take_or_retake(meta: dict, job: ChunkJob) -> bool:
    """False for a chunk settled on a retake meanwhile (the same line in another batch, under the
    same key): its audio is not the first take."""
    settled = meta.get("check")
    return TAKE_FIELD in meta or not isinstance(settled, dict) or settled.get("seed", job.seed) == job.seed


def _store_take(job: ChunkJob, attempt: int, seed: int, audio: np.ndarray, store: Store) -> _HeldTake:
    """Store a take just made, not yet heard (its loudness measured on ``audio`` as made, as
    ``store_chunk`` measures it)."""
    key = job.key if attempt == 0 else retake_key(job.key, attempt)
    stored = CHUNKS.put_audio(store, key, audio, PROJECT_SAMPLE_RATE, read_back=True)
    take = _HeldTake(attempt, seed, key, _chunk_meta(job.key, stored.info, audio), stored.audio)
    CHUNKS.put_meta(store, key, take.stored_meta())
    return take


def _settle(job: ChunkJob, heard: Sequence[_HeldTake], stored: Sequence[_HeldTake], store: Store, *,
            rendered: bool) -> ChunkRecord:
    """Store the best of the ``heard`` takes as ``job``'s chunk, with the attempt log, and remove
    the other ``stored`` takes. When a retake wins, the first take is copied aside before its
    place is taken, so a kill part-way leaves every take findable. The winning retake is written
    from its samples (the cache's own), not copied: a chunk repeated in another batch may have
    settled and removed the same retake meanwhile."""
    best, chosen = choose_best([take.check for take in heard])
    take = heard[best]
    meta = take.meta
    if take.key != job.key:
        first = stored[0]
        if first.key == job.key:
            aside = replace(first, key=retake_key(job.key, 0))
            store.copy(CHUNKS.audio_key(first.key), CHUNKS.audio_key(aside.key))
            CHUNKS.put_meta(store, aside.key, aside.stored_meta())
            stored = [aside, *stored[1:]]
        store.delete(CHUNKS.meta_key(job.key))
        info = CHUNKS.put_audio(store, job.key, take.samples, PROJECT_SAMPLE_RATE).info
        meta = {**meta, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes}
    CHUNKS.put_meta(store, job.key, {**meta, "check": chosen.to_json()})
    for other in stored:
        if other.key != job.key:
            store.delete(CHUNKS.meta_key(other.key))
            store.delete(CHUNKS.audio_key(other.key))
    return ChunkRecord(**{**meta, "index": job.index, "rendered": rendered, "check": chosen})


def _synthesise_rows(jobs: Sequence[ChunkJob], seeds: Sequence[int], plan: RenderPlan,
                     failures: list[tuple[int, EngineError]]) -> Iterator[tuple[ChunkJob, int, np.ndarray | None]]:
    """``_synthesise_or_fail`` for jobs of any voices, one call per row group: (job, seed, audio)
    for each, yielded as each call returns."""
    seed_of = {job.index: seed for job, seed in zip(jobs, seeds, strict=True)}
    for group in _row_groups(jobs, plan):
        engine = get_engine(group[0].engine, plan.options.engine_options)
        audios = _synthesise_or_fail(engine, group, [seed_of[job.index] for job in group], plan, failures)
        yield from ((job, seed_of[job.index], audio) for job, audio in zip(group, audios, strict=True))


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
    meta = _chunk_meta(job.key, CHUNKS.put_audio(store, job.key, audio, PROJECT_SAMPLE_RATE).info, audio)
    CHUNKS.put_meta(store, job.key, {**meta, "check": check.to_json()} if check is not None else meta)
    return ChunkRecord(**{**meta, "index": job.index, "rendered": True, "check": check})


def _chunk_meta(key: str, stored: ObjectInfo, audio: np.ndarray) -> dict:
    """The stored fields of a chunk record for ``audio`` (as made) stored as ``stored``."""
    meter = LoudnessMeter(PROJECT_SAMPLE_RATE, 1, true_peak=False)
    meter.process(audio)
    lufs = meter.result().integrated_lufs
    return {"key": key, "uri": stored.uri, "sha256": stored.sha256, "bytes": stored.bytes,
            "duration_samples": int(audio.size), "sample_rate": PROJECT_SAMPLE_RATE,
            "integrated_lufs": lufs if math.isfinite(lufs) else None}


def _excerpt(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")
