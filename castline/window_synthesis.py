"""Render windows with a windowed engine, split each waveform into its lines, store them as chunks."""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.alignment import line_boundaries
from castline.audio.chunkfile import write_chunk
from castline.audio.resample import resample
from castline.dsp.loudness import LoudnessMeter
from castline.engines.base import Window, WindowError, WindowLine
from castline.engines.pool import get_engine
from castline.errors import EngineError
from castline.hashing import derive_seed
from castline.progress import emit
from castline.qa.chunk_check import ChunkCheck, check_take
from castline.render_plan import RenderPlan, WindowJob
from castline.storage import Store
from castline.synthesis import ChunkRecord, audio_key, cached_record, meta_key

MAX_ATTEMPTS = 3
"""A window that fails (no audio, no end within budget, non-finite) is retried with new seeds."""


def batch_windows(windows: Sequence[WindowJob], workers: int, per_batch: int = 4) -> list[tuple[WindowJob, ...]]:
    """Consecutive windows in batches of at most ``per_batch`` (one ``generate`` call each)."""
    if not windows:
        return []
    size = max(1, min(per_batch, math.ceil(len(windows) / max(1, workers))))
    return [tuple(windows[start:start + size]) for start in range(0, len(windows), size)]


def synthesise_windows(windows: Sequence[WindowJob], plan: RenderPlan, store: Store) -> list[ChunkRecord]:
    """Reuse windows whose every line is stored; render the rest (batched), split, store."""
    records: list[ChunkRecord] = []
    pending: list[WindowJob] = []
    for window in windows:
        cached = [cached_record(plan.jobs[index], store, plan) for index in window.chunk_indexes]
        if all(record is not None for record in cached):
            records.extend(cached)
            emit("synthesise", advance=len(cached), detail="reused")
        else:
            pending.append(window)
    if pending:
        engine = get_engine(pending[0].engine, plan.options.engine_options)
        for window, audio in zip(pending, _render(engine, pending, plan), strict=True):
            native = resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
            segments, checks = _heard(window, native, engine, plan)
            records.extend(_store_lines(window, segments, checks, plan, store))
            emit("synthesise", advance=len(window.chunk_indexes), detail="rendered")
    return sorted(records, key=lambda record: record.index)


def _render(engine, windows: Sequence[WindowJob], plan: RenderPlan) -> list[np.ndarray]:
    try:
        return engine.synthesize_windows([_window(job, plan, job.seed) for job in windows])
    except WindowError:
        pass
    # Some window in the batch failed: render each alone, retrying the failing ones with new seeds.
    return [_render_alone(engine, job, plan) for job in windows]


def _render_alone(engine, job: WindowJob, plan: RenderPlan) -> np.ndarray:
    failures = []
    for attempt in range(MAX_ATTEMPTS):
        seed = job.seed if attempt == 0 else derive_seed(job.seed, f"retry-{attempt}")
        try:
            [audio] = engine.synthesize_windows([_window(job, plan, seed)])
            return audio
        except WindowError as error:
            failures.append(error.message)
    first, last = plan.jobs[job.chunk_indexes[0]], plan.jobs[job.chunk_indexes[-1]]
    raise EngineError(f"window {job.index} (script lines {first.source_line}–{last.source_line}) failed "
                      f"{MAX_ATTEMPTS} times: {failures[-1]}", source=plan.episode.source_path,
                      line=first.source_line)


def _window(job: WindowJob, plan: RenderPlan, seed: int) -> Window:
    lines = tuple(WindowLine(speaker=job.voice_ids.index(plan.jobs[i].voice_id), text=plan.jobs[i].text)
                  for i in job.chunk_indexes)
    return Window(lines=lines, voices=tuple(plan.voice(v) for v in job.voice_ids), seed=seed,
                  estimated_seconds=job.estimated_seconds)


def _split(window: WindowJob, audio: np.ndarray, plan: RenderPlan) -> list[np.ndarray]:
    jobs = [plan.jobs[index] for index in window.chunk_indexes]
    cuts = [0, *line_boundaries(audio, PROJECT_SAMPLE_RATE, [job.text for job in jobs]), audio.size]
    return [audio[start:end] for start, end in zip(cuts[:-1], cuts[1:], strict=True)]


def _heard(window: WindowJob, audio: np.ndarray, engine,
           plan: RenderPlan) -> tuple[list[np.ndarray], list[ChunkCheck | None]]:
    """Split the window into lines and QA each; while a line fails and attempts remain, render the
    window again with a new seed; keep the take with the fewest failing lines (then lowest WER)."""
    settings = plan.options.qa
    jobs = [plan.jobs[index] for index in window.chunk_indexes]
    segments = _split(window, audio, plan)
    if not settings.enabled:
        return segments, [None] * len(segments)
    takes = []
    seed = window.seed
    while True:
        checks = [check_take(segment, PROJECT_SAMPLE_RATE, job.text, engine=job.engine,
                             language=plan.episode.meta.language, settings=settings, seed=seed)
                  if segment.size else None for job, segment in zip(jobs, segments, strict=True)]
        takes.append((segments, checks))
        failing = sum(1 for check in checks if check is None or not check.passed)
        if failing == 0 or len(takes) >= settings.max_attempts:
            break
        seed = derive_seed(window.seed, f"qa-retry-{len(takes)}")
        [retake] = engine.synthesize_windows([_window(window, plan, seed)])
        segments = _split(window, resample(retake, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE), plan)

    def badness(take):
        checks = take[1]
        return (sum(1 for c in checks if c is None or not c.passed),
                sum((c.wer or 0.0) if c is not None else 99.0 for c in checks))

    best = min(range(len(takes)), key=lambda i: badness(takes[i]))
    chosen_segments, chosen_checks = takes[best]
    logged = []
    for line, check in enumerate(chosen_checks):
        if check is None:
            logged.append(None)
            continue
        log = tuple((i + 1, take[1][line].seed if take[1][line] else 0, take[1][line].wer if take[1][line] else None,
                     take[1][line].flags if take[1][line] else ("silent",), i == best) for i, take in enumerate(takes))
        logged.append(replace(check, attempts=len(takes), attempt_log=log))
    return chosen_segments, logged


def _store_lines(window: WindowJob, segments: list[np.ndarray], checks: list[ChunkCheck | None], plan: RenderPlan,
                 store: Store) -> list[ChunkRecord]:
    jobs = [plan.jobs[index] for index in window.chunk_indexes]
    records = []
    with tempfile.TemporaryDirectory(prefix="castline-window-") as folder:
        for job, segment, check in zip(jobs, segments, checks, strict=True):
            if segment.size == 0:
                raise EngineError(f"window {window.index} left no audio for a line ({job.text[:40]!r})",
                                  source=plan.episode.source_path, line=job.source_line)
            meter = LoudnessMeter(PROJECT_SAMPLE_RATE, 1, true_peak=False)
            meter.process(segment)
            lufs = meter.result().integrated_lufs
            path = Path(folder) / f"{job.index}.flac"
            write_chunk(path, segment, PROJECT_SAMPLE_RATE)
            stored = store.put_file(path, audio_key(job.key))
            record = ChunkRecord(index=job.index, key=job.key, uri=stored.uri, sha256=stored.sha256,
                                 bytes=stored.bytes, duration_samples=int(segment.size),
                                 sample_rate=PROJECT_SAMPLE_RATE,
                                 integrated_lufs=lufs if math.isfinite(lufs) else None, rendered=True, check=check)
            meta = {k: v for k, v in asdict(record).items() if k not in ("index", "rendered", "check")}
            if check is not None:
                meta["check"] = check.to_json()
            store.put_bytes(json.dumps(meta, sort_keys=True).encode(), meta_key(job.key))
            records.append(record)
    return records
