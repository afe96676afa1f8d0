"""The report's two plots (short-term loudness and the waveform envelope), drawn from a
``ProgrammeSummary`` on a bare Agg figure and written atomically."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from castline.core.atomic import atomic_path
from castline.dsp.loudness import SHORT_TERM_SUB_BLOCKS, SUB_BLOCKS_PER_SECOND
from castline.qa.records import EpisodeQA
from castline.qa.report.measure import ProgrammeSummary

_FIGURE_SIZE_IN = (12.0, 3.6)
_FIGURE_DPI = 100
_FAILED_COLOUR = "#d62728"
_RETRIED_COLOUR = "#ffb000"
_LOUDNESS_FLOOR_LUFS = -70.0
_LOUDNESS_MAX_POINTS = 1200


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on an Agg canvas: no pyplot state, no display, safe in worker threads.
    figure = Figure(figsize=_FIGURE_SIZE_IN, dpi=_FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as temp:
        figure.savefig(temp, format="png")


def plot_loudness(qa: EpisodeQA, summary: ProgrammeSummary, path: Path) -> None:
    figure = _new_figure()
    axes = figure.add_subplot()
    series = summary.short_term_lufs
    duration_min = summary.duration_s / 60.0
    ends_min = (np.arange(series.size) + SHORT_TERM_SUB_BLOCKS) / SUB_BLOCKS_PER_SECOND / 60.0
    # Silence (-inf) and near-silence are drawn as gaps rather than cliffs to the floor.
    shown = np.where(series > _LOUDNESS_FLOOR_LUFS, series, np.nan)
    columns = _LOUDNESS_MAX_POINTS
    if shown.size > 2 * columns:
        # Beyond ~2 points a pixel a line is a solid smear: draw each column's range as a band
        # and its energy mean as the line, so excursions stay visible at 90 minutes.
        per_column = math.ceil(shown.size / columns)
        padded = np.full(math.ceil(shown.size / per_column) * per_column, np.nan)
        padded[:shown.size] = shown
        grid = padded.reshape(-1, per_column)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanmin(grid, axis=1), np.nanmax(grid, axis=1)
            mean = 10.0 * np.log10(np.nanmean(10.0 ** (grid / 10.0), axis=1))
        centres = ends_min[0] + (np.arange(grid.shape[0]) + 0.5) * per_column \
            / SUB_BLOCKS_PER_SECOND / 60.0
        axes.fill_between(centres, low, high, color="#1f77b4", alpha=0.3, linewidth=0,
                          label="short-term range")
        axes.plot(centres, mean, linewidth=0.8, color="#1f77b4", label="short-term (3 s), mean")
    elif np.isfinite(shown).any():
        axes.plot(ends_min, shown, linewidth=0.8, color="#1f77b4", label="short-term (3 s)")
    if not np.isfinite(shown).any():
        axes.text(0.5, 0.5, "no short-term loudness (programme silent or under 3 s)",
                  transform=axes.transAxes, ha="center", va="center")
    limits = [float(np.nanmin(shown)), float(np.nanmax(shown))] if np.isfinite(shown).any() else []
    if qa.target_lufs is not None and math.isfinite(qa.target_lufs):
        axes.axhline(qa.target_lufs, color="#2ca02c", linestyle="--", linewidth=1.0, zorder=3,
                     label=f"target {qa.target_lufs:.1f} LUFS")
        limits.append(qa.target_lufs)
        if qa.tolerance_lu is not None and qa.tolerance_lu > 0:
            axes.axhspan(qa.target_lufs - qa.tolerance_lu, qa.target_lufs + qa.tolerance_lu,
                         color="#2ca02c", alpha=0.15, linewidth=0,
                         label=f"±{qa.tolerance_lu:g} LU")
            limits += [qa.target_lufs - qa.tolerance_lu, qa.target_lufs + qa.tolerance_lu]
    if math.isfinite(summary.integrated_lufs):
        axes.axhline(summary.integrated_lufs, color="#555555", linestyle=":", linewidth=1.0, zorder=3,
                     label=f"integrated {summary.integrated_lufs:.1f} LUFS")
    if limits:
        axes.set_ylim(max(min(limits) - 3.0, _LOUDNESS_FLOOR_LUFS), max(limits) + 3.0)
    axes.set_xlim(0.0, max(duration_min, 1e-3))
    axes.set_xlabel("time (min)")
    axes.set_ylabel("loudness (LUFS)")
    axes.set_title(f"{qa.episode}: short-term loudness")
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right", fontsize="small")
    _save_figure(figure, path)


def plot_waveform(qa: EpisodeQA, summary: ProgrammeSummary, path: Path) -> None:
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    figure = _new_figure()
    axes = figure.add_subplot()
    per_column_s = summary.samples_per_column / summary.sample_rate
    centres_min = (np.arange(summary.envelope_min.size) + 0.5) * per_column_s / 60.0
    axes.fill_between(centres_min, summary.envelope_min, summary.envelope_max,
                      color="#1f77b4", linewidth=0, step="mid")
    handles = []
    for colour, label, chunks in (
            (_FAILED_COLOUR, "failed / flagged", [c for c in qa.chunks if c.flagged]),
            (_RETRIED_COLOUR, "retried, passed", [c for c in qa.chunks
                                                  if c.retried and not c.flagged])):
        if not chunks:
            continue
        # One collection spanning the full height (axes coordinates in y) per colour: cheap
        # even with hundreds of chunks, unlike one axvspan each.
        spans = [(c.start_sample / qa.sample_rate / 60.0, c.end_sample / qa.sample_rate / 60.0)
                 for c in chunks]
        polygons = [[(a, 0.0), (a, 1.0), (b, 1.0), (b, 0.0)] for a, b in spans]
        axes.add_collection(PolyCollection(polygons, facecolors=colour, alpha=0.35, linewidths=0,
                                           transform=axes.get_xaxis_transform(), zorder=0))
        handles.append(Patch(facecolor=colour, alpha=0.35, label=f"{label} ({len(chunks)})"))
    seams = [s.join_sample / qa.sample_rate / 60.0 for s in qa.seams if s.flagged]
    if seams:
        axes.vlines(seams, 0.0, 1.0, transform=axes.get_xaxis_transform(), colors="#9467bd",
                    linestyles="--", linewidth=0.8)
        handles.append(Line2D([], [], color="#9467bd", linestyle="--", linewidth=0.8,
                              label=f"flagged seam ({len(seams)})"))
    axes.set_xlim(0.0, max(summary.duration_s / 60.0, 1e-3))
    axes.set_ylim(-1.05, 1.05)
    axes.set_xlabel("time (min)")
    axes.set_ylabel("amplitude (full scale)")
    axes.set_title(f"{qa.episode}: waveform")
    axes.grid(True, alpha=0.3)
    if handles:
        axes.legend(handles=handles, loc="lower right", fontsize="small")
    _save_figure(figure, path)
