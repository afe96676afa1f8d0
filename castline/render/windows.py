"""Render windows with a windowed engine, split each waveform into its lines, store them as chunks."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.render.alignment import line_boundaries
from castline.audio.resample import resample
from castline.engines.base import Window, WindowError, WindowLine
from castline.engines.pool import get_engine
from castline.core.errors import EngineError
from castline.core.hashing import derive_seed
from castline.core.progress import emit
from castline.qa.chunk_check import ChunkCheck, Take, check_takes
from castline.render.plan import RenderPlan, WindowJob
from castline.storage import Store
from castline.render.synthesis import ChunkRecord, rate_band, refresh_checks, store_chunk, stored_chunk

MAX_ATTEMPTS = 3
"""A window that fails (no audio, no end within budget, non-finite) is retried with new seeds."""


def batch_windows(windows: Sequence[WindowJob], workers: int, per_batch: int = 4) -> list[tuple[WindowJob, ...]]:
    """Consecutive windows in batches of at most ``per_batch`` (one ``generate`` call each)."""
    if not windows:
        return []
    size = max(1, min(per_batch, math.ceil(len(windows) / max(1, workers))))
    return [tuple(windows[start:start + size]) for start in range(0, len(windows), size)]


def synthesise_windows(windows: Sequence[WindowJob], plan: RenderPlan, store: Store) -> list[ChunkRecord]:
    """Reuse windows whose every line is stored; render the rest (batched), split, hear every
    line of every window together, retry the windows with failing lines, store."""
    records: list[ChunkRecord] = []
    pending: list[WindowJob] = []
    complete: list[tuple[WindowJob, list]] = []
    for window in windows:
        found = [stored_chunk(plan.jobs[index], store) for index in window.chunk_indexes]
        if all(item is not None for item in found):
            complete.append((window, found))
        else:
            pending.append(window)
    if complete:  # stale QA results of all complete windows are heard again together
        found = [item for _, items in complete for item in items]
        jobs = [plan.jobs[index] for window, _ in complete for index in window.chunk_indexes]
        records.extend(refresh_checks(found, jobs, store, plan))
        emit("synthesise", advance=len(jobs), detail="reused")
    if pending:
        engine = get_engine(pending[0].engine, plan.options.engine_options)
        first = [resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE)
                 for audio in _render(engine, pending, plan)]
        for window, (segments, checks) in zip(pending, _heard(pending, first, engine, plan), strict=True):
            records.extend(_store_lines(window, segments, checks, plan, store))
            emit("synthesise", advance=len(window.chunk_indexes), detail="rendered")
    return sorted(records, key=lambda record: record.index)


def _render(engine, windows: Sequence[WindowJob], plan: RenderPlan) -> list[np.ndarray]:
    try:
        return engine.synthesize_windows([_window(job, plan, job.seed) for job in windows],
                                         batch_size=plan.options.window_batch)
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
    lines = tuple(WindowLine(speaker=job.voice_ids.index(plan.jobs[i].voice_id), text=plan.jobs[i].spoken_text)
                  for i in job.chunk_indexes)
    return Window(lines=lines, voices=tuple(plan.voice(v) for v in job.voice_ids), seed=seed,
                  estimated_seconds=job.estimated_seconds)


def _split(window: WindowJob, audio: np.ndarray, plan: RenderPlan) -> list[np.ndarray]:
    jobs = [plan.jobs[index] for index in window.chunk_indexes]
    cuts = [0, *line_boundaries(audio, PROJECT_SAMPLE_RATE, [job.spoken_text for job in jobs]), audio.size]
    return [audio[start:end] for start, end in zip(cuts[:-1], cuts[1:], strict=True)]


def _heard(windows: Sequence[WindowJob], audios: Sequence[np.ndarray], engine,
           plan: RenderPlan) -> list[tuple[list[np.ndarray], list[ChunkCheck | None]]]:
    """Split each window into lines and hear every line of every window together; while a
    window has a failing line and attempts remain, render it again with a new seed (all such
    windows in one call) and hear the new lines together; per window keep the take with the
    fewest failing lines (then lowest WER sum)."""
    settings = plan.options.qa
    split = [_split(window, audio, plan) for window, audio in zip(windows, audios, strict=True)]
    if not settings.enabled:
        return [(segments, [None] * len(segments)) for segments in split]
    takes: dict[int, list[tuple[list[np.ndarray], list[ChunkCheck | None]]]] = {w.index: [] for w in windows}
    todo = [(window, window.seed, segments) for window, segments in zip(windows, split)]
    attempt = 0
    while todo:
        heard = _check_lines(todo, plan)
        retry = []
        for (window, seed, segments), checks in zip(todo, heard, strict=True):
            takes[window.index].append((segments, checks))
            failing = any(check is None or not check.passed for check in checks)
            if failing and len(takes[window.index]) < settings.max_attempts:
                retry.append(window)
        attempt += 1
        seeds = [derive_seed(window.seed, f"qa-retry-{attempt}") for window in retry]
        todo = [(window, seed, _split(window, resample(audio, engine.capabilities.sample_rate, PROJECT_SAMPLE_RATE),
                                      plan))
                for window, seed, audio in zip(retry, seeds, _retakes(engine, retry, seeds, plan), strict=True)
                if audio is not None]
    return [_chosen(takes[window.index]) for window in windows]


def _check_lines(todo: Sequence[tuple[WindowJob, int, list[np.ndarray]]],
                 plan: RenderPlan) -> list[list[ChunkCheck | None]]:
    """Every non-empty line of every window heard in one packed pass; None for empty lines."""
    lines = [(number, line, Take(segment, plan.jobs[index].reference_text, plan.jobs[index].engine, seed,
                                 rate_band(plan, plan.jobs[index].voice_id)))
             for number, (window, seed, segments) in enumerate(todo)
             for line, (index, segment) in enumerate(zip(window.chunk_indexes, segments, strict=True)) if segment.size]
    checks = check_takes([take for _, _, take in lines], PROJECT_SAMPLE_RATE, language=plan.episode.meta.language,
                         settings=plan.options.qa)
    out: list[list[ChunkCheck | None]] = [[None] * len(segments) for _, _, segments in todo]
    for (number, line, _), check in zip(lines, checks, strict=True):
        out[number][line] = check
    return out


def _retakes(engine, windows: Sequence[WindowJob], seeds: Sequence[int], plan: RenderPlan) -> list[np.ndarray | None]:
    """New takes of ``windows`` with ``seeds``, in one call; a window the engine fails on (alone)
    gets None and keeps the takes it has."""
    if not windows:
        return []
    try:
        return engine.synthesize_windows([_window(window, plan, seed) for window, seed in zip(windows, seeds)],
                                         batch_size=plan.options.window_batch)
    except WindowError:
        pass
    out = []
    for window, seed in zip(windows, seeds, strict=True):
        try:
            [audio] = engine.synthesize_windows([_window(window, plan, seed)])
        except WindowError:
            audio = None
        out.append(audio)
    return out


def _chosen(takes: list[tuple[list[np.ndarray], list[ChunkCheck | None]]]
            ) -> tuple[list[np.ndarray], list[ChunkCheck | None]]:
    def badness(take):
        checks = take[1]
        return (sum(1 for c in checks if c is None or not c.passed),
                sum((c.wer or 0.0) if c is not None else 99.0 for c in checks))

    best = min(range(len(takes)), key=lambda i: badness(takes[i]))
    chosen_segments, chosen_checks = takes[best]
    logged: list[ChunkCheck | None] = []
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
    for job, segment, check in zip(jobs, segments, checks, strict=True):
        if segment.size == 0:
            raise EngineError(f"window {window.index} left no audio for a line ({job.text[:40]!r})",
                              source=plan.episode.source_path, line=job.source_line)
        records.append(store_chunk(job, segment, store, check))
    return records
