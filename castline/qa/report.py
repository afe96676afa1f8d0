"""The QA report of one episode: ``qa.json``, a self-contained ``report.html`` and two plots,
plus flat summaries for Prefect artifacts.

The programme is read once, in bounded blocks; the plots are drawn from per-block summaries
(a min/max envelope of at most ``ENVELOPE_MAX_COLUMNS`` columns and the streaming meter's
short-term loudness, one value per 100 ms), so memory does not grow with the audio itself.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from castline.dsp.loudness import SHORT_TERM_SUB_BLOCKS, SUB_BLOCKS_PER_SECOND, LoudnessMeter
from castline.qa.records import ChunkQA, EpisodeQA, to_json
from castline.core.timebase import samples_to_seconds

QA_JSON = "qa.json"
REPORT_HTML = "report.html"
LOUDNESS_PNG = "loudness.png"
WAVEFORM_PNG = "waveform.png"
ENVELOPE_MAX_COLUMNS = 4000
MARKDOWN_MAX_CHUNK_ROWS = 50
_FIGURE_SIZE_IN = (12.0, 3.6)
_FIGURE_DPI = 100
_FAILED_COLOUR = "#d62728"
_RETRIED_COLOUR = "#ffb000"
_LOUDNESS_FLOOR_LUFS = -70.0
_LOUDNESS_MAX_POINTS = 1200


@dataclass(frozen=True)
class ReportFiles:
    """Paths of everything ``write_report`` wrote."""

    qa_json: Path
    report_html: Path
    loudness_png: Path
    waveform_png: Path


@dataclass(frozen=True, eq=False)
class ProgrammeSummary:
    """What the plots need from a programme, gathered in one streaming pass.

    ``envelope_min`` / ``envelope_max``: smallest / largest sample over all channels in each
    column of ``samples_per_column`` samples (full scale 1.0, at most
    ``ENVELOPE_MAX_COLUMNS`` columns). ``short_term_lufs``: 3 s loudness every 100 ms
    (element ``i`` ends at ``(i + 30) x 100 ms``), ``-inf`` for silence.
    ``integrated_lufs``: integrated loudness of the whole file (LUFS).
    """

    sample_rate: int
    channels: int
    duration_samples: int
    samples_per_column: int
    envelope_min: np.ndarray
    envelope_max: np.ndarray
    short_term_lufs: np.ndarray
    integrated_lufs: float

    @property
    def duration_s(self) -> float:
        return samples_to_seconds(self.duration_samples, self.sample_rate)


def summarize_programme(audio_path: str | Path, *, block_samples: int = 65536,
                        max_columns: int = ENVELOPE_MAX_COLUMNS) -> ProgrammeSummary:
    """Read ``audio_path`` in blocks of ``block_samples`` frames and keep only its envelope and
    loudness series (memory: O(block_samples + max_columns + duration / 100 ms))."""
    if block_samples <= 0:
        raise ValueError(f"block_samples must be positive, got {block_samples}")
    if max_columns <= 0:
        raise ValueError(f"max_columns must be positive, got {max_columns}")
    with sf.SoundFile(str(audio_path)) as source:
        rate, channels = source.samplerate, source.channels
        # Some decoders only estimate the length; columns are sized from it and clamped below.
        expected = max(int(source.frames), 0)
        per_column = max(1, math.ceil(expected / max_columns))
        columns = max(1, math.ceil(expected / per_column))
        low = np.full(columns, np.inf, dtype=np.float32)
        high = np.full(columns, -np.inf, dtype=np.float32)
        # true_peak=False: the oversampling true-peak meter would be most of the cost, and the
        # report takes true peaks from the FileQA measurements.
        meter = LoudnessMeter(rate, channels, true_peak=False)
        buffer = np.empty((block_samples, channels), dtype=np.float32)
        position = 0
        # out= reuses one buffer (its length is the block size) instead of a new array a block.
        for block in source.blocks(dtype="float32", always_2d=True, out=buffer):
            count = block.shape[0]
            if count == 0:
                continue
            meter.process(block.T)
            first_column = position // per_column
            next_edge = (first_column + 1) * per_column - position
            starts = np.concatenate(([0], np.arange(next_edge, count, per_column)))
            indices = np.minimum(first_column + np.arange(starts.size), columns - 1)
            # Reduce along time first, channels last: min(axis=1) over a (frames, 2) block is a
            # short inner reduction per frame and measured ~25x slower.
            np.minimum.at(low, indices, np.minimum.reduceat(block, starts, axis=0).min(axis=1))
            np.maximum.at(high, indices, np.maximum.reduceat(block, starts, axis=0).max(axis=1))
            position += count
    used = max(1, min(columns, math.ceil(position / per_column)))
    low, high = low[:used], high[:used]
    empty = ~np.isfinite(low)
    low[empty] = 0.0
    high[empty] = 0.0
    return ProgrammeSummary(
        sample_rate=rate,
        channels=channels,
        duration_samples=position,
        samples_per_column=per_column,
        envelope_min=low,
        envelope_max=high,
        short_term_lufs=meter.short_term_series(),
        integrated_lufs=meter.result().integrated_lufs,
    )


def write_report(qa: EpisodeQA, audio_path: str | Path, out_dir: str | Path, *,
                 block_samples: int = 65536) -> ReportFiles:
    """Write ``qa.json``, ``loudness.png``, ``waveform.png`` and ``report.html`` into
    ``out_dir`` (created if missing) for the programme at ``audio_path``, read in blocks of
    ``block_samples`` frames. Each file is written under a temporary name and then renamed,
    so a reader never sees half a file."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(qa_json=out / QA_JSON, report_html=out / REPORT_HTML,
                        loudness_png=out / LOUDNESS_PNG, waveform_png=out / WAVEFORM_PNG)
    text = json.dumps(to_json(qa), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    _write_atomic(files.qa_json, text.encode("utf-8"))
    summary = summarize_programme(audio_path, block_samples=block_samples)
    _plot_loudness(qa, summary, files.loudness_png)
    _plot_waveform(qa, summary, files.waveform_png)
    # Last, so the page never refers to plots that are not there yet.
    _write_atomic(files.report_html, render_html(qa, summary).encode("utf-8"))
    return files


def chunk_table(qa: EpisodeQA) -> list[dict[str, str | float | int | bool]]:
    """One flat dict per chunk for a Prefect table artifact (values str/float/int/bool only).

    ``wer`` is a fraction, ``""`` when not scored; ``flags`` is ``"; "``-joined; each metric
    becomes a column of its own (``""`` where a chunk lacks it), renamed ``metric_<name>``
    only if it would clash with a fixed column.
    """
    names: dict[str, None] = {}
    for chunk in qa.chunks:
        names.update(dict.fromkeys(name for name, _ in chunk.metrics))
    rows = []
    for chunk in qa.chunks:
        row: dict[str, str | float | int | bool] = {
            "index": chunk.index,
            "turn": chunk.turn,
            "speaker": chunk.speaker,
            "voice": chunk.voice,
            "time": _clock(chunk.start_sample, qa.sample_rate),
            "start_s": samples_to_seconds(chunk.start_sample, qa.sample_rate),
            "duration_s": samples_to_seconds(chunk.end_sample - chunk.start_sample,
                                             qa.sample_rate),
            "text": chunk.text,
            "transcript": chunk.transcript,
            "wer": "" if chunk.wer is None else float(chunk.wer),
            "attempts": chunk.attempts,
            "flags": "; ".join(chunk.flags),
            "passed": chunk.passed,
        }
        metrics = dict(chunk.metrics)
        for name in names:
            key = f"metric_{name}" if name in row else name
            row[key] = float(metrics[name]) if name in metrics else ""
        rows.append(row)
    return rows


def summary_markdown(qa: EpisodeQA) -> str:
    """A Markdown summary for a Prefect markdown artifact: verdict, counts, episode flags,
    speakers, files, and the failed or retried chunks (at most ``MARKDOWN_MAX_CHUNK_ROWS``)."""
    lines = [
        f"## QA: {_md(qa.episode)} — **{qa.verdict.upper()}**",
        "",
        f"Policy `{qa.policy}` · {len(qa.chunks)} chunks: {qa.passed_count} passed, "
        f"{qa.failed_count} failed, {qa.retried_count} retried · target "
        f"{_number(qa.target_lufs, '.1f', ' LUFS')}"
        + (f" ±{_number(qa.tolerance_lu, 'g', ' LU')}" if qa.tolerance_lu is not None else ""),
        "",
    ]
    if qa.episode_flags:
        lines += ["### Episode flags", ""]
        lines += [f"- {_md(flag)}" for flag in qa.episode_flags]
        lines.append("")
    if qa.speakers:
        lines += ["### Speakers", "",
                  "| speaker | voice | integrated LUFS | spread LU | similarity | drift |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {_md(s.speaker)} | {_md(s.voice)} | {_number(s.integrated_lufs, '.1f')} | "
                  f"{_number(s.spread_lu, '.1f')} | {_number(s.mean_similarity, '.2f')} | "
                  f"{_number(s.drift, '+.2f')} |" for s in qa.speakers]
        lines.append("")
    if qa.files:
        lines += ["### Files", "",
                  "| format | integrated LUFS | true peak dBTP | compliant | problems |",
                  "|---|---:|---:|---|---|"]
        lines += [f"| {_md(f.format)} | {_number(f.integrated_lufs, '.1f')} | "
                  f"{_number(f.true_peak_dbtp, '.1f')} | {'yes' if f.compliant else '**no**'} | "
                  f"{_md('; '.join(f.problems))} |" for f in qa.files]
        lines.append("")
    notable = [chunk for chunk in qa.chunks if chunk.flagged or chunk.retried]
    if notable:
        lines += ["### Chunks failed, flagged or retried", "",
                  "| # | turn | speaker | time | WER | attempts | flags | passed | text |",
                  "|---:|---:|---|---|---:|---:|---|---|---|"]
        for chunk in notable[:MARKDOWN_MAX_CHUNK_ROWS]:
            lines.append(
                f"| {chunk.index} | {chunk.turn} | {_md(chunk.speaker)} | "
                f"{_clock(chunk.start_sample, qa.sample_rate)} | {_percent(chunk.wer)} | "
                f"{chunk.attempts} | {_md(', '.join(chunk.flags))} | "
                f"{'yes' if chunk.passed else '**no**'} | {_md(_shorten(chunk.text, 120))} |")
        if len(notable) > MARKDOWN_MAX_CHUNK_ROWS:
            lines.append("")
            lines.append(f"… and {len(notable) - MARKDOWN_MAX_CHUNK_ROWS} more (see qa.json).")
        lines.append("")
    return "\n".join(lines)


def render_html(qa: EpisodeQA, summary: ProgrammeSummary | None = None) -> str:
    """The self-contained report page (inline CSS, no scripts); the plots are referenced by
    relative name, so the page belongs in the same folder as ``loudness.png`` and
    ``waveform.png``. ``summary`` adds the programme's duration and measured loudness."""
    e = _escape
    verdict = qa.verdict
    facts = [
        ("Verdict", f'<span class="verdict {e(verdict)}">{e(verdict.upper())}</span>'),
        ("Policy", e(qa.policy)),
        ("Chunks", f"{len(qa.chunks)}: {qa.passed_count} passed, {qa.failed_count} failed, "
                   f"{qa.retried_count} retried"),
        ("Target", e(_number(qa.target_lufs, ".1f", " LUFS"))
         + (f" ±{e(_number(qa.tolerance_lu, 'g', ' LU'))}" if qa.tolerance_lu is not None else "")),
        ("Sample rate", f"{qa.sample_rate} Hz"),
    ]
    if summary is not None:
        facts += [
            ("Duration", _clock(summary.duration_samples, summary.sample_rate)),
            ("Programme loudness", e(_number(summary.integrated_lufs, ".1f", " LUFS"))),
        ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>QA report: {e(qa.episode)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>QA report: {e(qa.episode)}</h1>",
        '<section id="summary"><h2>Summary</h2><table class="facts">',
        *(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in facts),
        "</table>",
        "<h3>Episode flags</h3>",
        ("<ul>" + "".join(f"<li>{e(flag)}</li>" for flag in qa.episode_flags) + "</ul>")
        if qa.episode_flags else "<p>None.</p>",
    ]
    if qa.speakers:
        parts += _html_table(
            "speakers", "Speakers",
            ["Speaker", "Voice", "Integrated LUFS", "Spread LU", "Mean similarity", "Drift"],
            [[e(s.speaker), e(s.voice), _number(s.integrated_lufs, ".1f"),
              _number(s.spread_lu, ".1f"), _number(s.mean_similarity, ".3f"),
              _number(s.drift, "+.3f")] for s in qa.speakers])
    if qa.files:
        parts += _html_table(
            "files", "Delivered files",
            ["Format", "Integrated LUFS", "True peak dBTP", "Compliant", "Problems"],
            [[e(f.format), _number(f.integrated_lufs, ".1f"), _number(f.true_peak_dbtp, ".1f"),
              "yes" if f.compliant else "no", "<br>".join(e(p) for p in f.problems)]
             for f in qa.files],
            row_classes=["" if f.compliant else "fail" for f in qa.files])
    flagged_seams = [seam for seam in qa.seams if seam.flagged]
    if qa.seams:
        parts += _html_table(
            "seams", f"Seams ({len(flagged_seams)} of {len(qa.seams)} flagged)",
            ["Time", "Jump dB"],
            [[_clock(s.join_sample, qa.sample_rate), _number(s.jump_db, "+.1f")]
             for s in flagged_seams])
    if qa.thresholds:
        parts += _html_table("thresholds", "Thresholds", ["Name", "Value"],
                             [[e(name), _number(value, "g")] for name, value in qa.thresholds])
    if qa.timings_s:
        parts += _html_table("timings", "Timings", ["Stage", "Seconds"],
                             [[e(name), _number(value, ".2f")] for name, value in qa.timings_s])
    parts += [
        "</section>",
        '<section id="plots"><h2>Loudness</h2>',
        f'<img src="{LOUDNESS_PNG}" alt="Short-term loudness over time">',
        "<h2>Waveform</h2>",
        f'<img src="{WAVEFORM_PNG}" alt="Waveform envelope; failed or flagged chunks red, '
        'retried chunks amber">',
        "</section>",
    ]
    parts.append('<section id="chunk-list"><h2>Chunks</h2>')
    parts += _html_table(
        "chunks", "",
        ["#", "Turn", "Speaker", "Time", "Text", "Transcript", "WER", "Attempts", "Flags",
         "Passed"],
        [_chunk_cells(chunk, qa.sample_rate) for chunk in qa.chunks],
        row_classes=[_row_class(chunk) for chunk in qa.chunks], row_base_class="chunk")
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


def _chunk_cells(chunk: ChunkQA, sample_rate: int) -> list[str]:
    attempts = str(chunk.attempts)
    if chunk.attempt_log:
        log = "".join(
            f"<li>#{a.attempt} seed {_or_dash(a.seed)} WER {_percent(a.wer)}"
            + (f" [{_escape(', '.join(a.flags))}]" if a.flags else "")
            + (" (kept)" if a.chosen else "") + "</li>"
            for a in chunk.attempt_log)
        attempts = f"<details><summary>{chunk.attempts}</summary><ul>{log}</ul></details>"
    return [
        str(chunk.index),
        str(chunk.turn),
        _escape(chunk.speaker),
        _clock(chunk.start_sample, sample_rate),
        _escape(chunk.text),
        _escape(chunk.transcript),
        _percent(chunk.wer),
        attempts,
        "<br>".join(_escape(flag) for flag in chunk.flags),
        "yes" if chunk.passed else "no",
    ]


def _or_dash(value: object) -> str:
    return "–" if value is None else _escape(str(value))


def _row_class(chunk: ChunkQA) -> str:
    if not chunk.passed:
        return "fail"
    if chunk.flags:
        return "flagged"
    return "retried" if chunk.retried else ""


def _html_table(table_id: str, title: str, headers: list[str], rows: list[list[str]], *,
                row_classes: list[str] | None = None, row_base_class: str = "") -> list[str]:
    """``headers`` are plain text; cells must already be escaped HTML."""
    out = [f"<h3>{_escape(title)}</h3>"] if title else []
    out += [f'<table id="{table_id}">',
           "<thead><tr>" + "".join(f"<th>{_escape(h)}</th>" for h in headers) + "</tr></thead>",
           "<tbody>"]
    for i, cells in enumerate(rows):
        classes = " ".join(c for c in (row_base_class, (row_classes or [""] * len(rows))[i]) if c)
        attribute = f' class="{classes}"' if classes else ""
        out.append(f"<tr{attribute}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    out += ["</tbody>", "</table>"]
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}h3{font-size:1em}
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
thead th{background:#f0f0f0;position:sticky;top:0}
table.facts th{background:#f7f7f7}
tr.fail td{background:#fdd}
tr.flagged td{background:#fee8e8}
tr.retried td{background:#fff2cc}
.verdict{font-weight:bold;padding:.1em .5em;border-radius:.3em}
.verdict.pass{background:#cfc}.verdict.warn{background:#fe9}.verdict.fail{background:#f99}
img{max-width:100%;height:auto;display:block;margin:.5em 0}
#chunks td:nth-child(5),#chunks td:nth-child(6){max-width:30em}
details summary{cursor:pointer}
details ul{margin:.2em 0;padding-left:1.2em}
""".strip().replace("\n", "")


def _new_figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # A bare Figure on an Agg canvas: no pyplot state, no display, safe in worker threads.
    figure = Figure(figsize=_FIGURE_SIZE_IN, dpi=_FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save_figure(figure, path: Path) -> None:
    temp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
    try:
        figure.savefig(temp, format="png")
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def _plot_loudness(qa: EpisodeQA, summary: ProgrammeSummary, path: Path) -> None:
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


def _plot_waveform(qa: EpisodeQA, summary: ProgrammeSummary, path: Path) -> None:
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


def _write_atomic(path: Path, data: bytes) -> None:
    temp = path.with_name(f".{uuid.uuid4().hex}-{path.name}")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        if temp.exists():
            temp.unlink()


def _clock(samples: int, sample_rate: int) -> str:
    """``mm:ss`` (minutes not wrapped at 60: ``93:05``), truncated to the whole second."""
    seconds = int(samples_to_seconds(samples, sample_rate))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _number(value: float | None, spec: str, unit: str = "") -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return ("∞" if value > 0 else "-∞") + unit
    return f"{value:{spec}}{unit}"


def _percent(wer: float | None) -> str:
    return "–" if wer is None else _number(100.0 * wer, ".1f", "%")


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def _md(text: str) -> str:
    """Plain text made safe for one Markdown table cell or list item."""
    text = " ".join(text.split())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)
