"""The QA report of one episode: ``qa.json``, a self-contained ``report.html`` and two plots,
plus flat summaries for Prefect artifacts.

The programme is read once, in bounded blocks; the plots are drawn from per-block summaries
(a min/max envelope of at most ``ENVELOPE_MAX_COLUMNS`` columns and the streaming meter's
short-term loudness, one value per 100 ms), so memory does not grow with the audio itself.

Split by job: ``measure`` (the streaming pass over the programme), ``plots``, ``page`` (the
HTML), ``tables`` (flat summaries for Prefect artifacts), ``common`` (file names, formatting).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from castline.core.atomic import write_bytes_atomic
from castline.qa.records import EpisodeQA, to_json
from castline.qa.report.common import LOUDNESS_PNG, QA_JSON, REPORT_HTML, WAVEFORM_PNG
from castline.qa.report.measure import ENVELOPE_MAX_COLUMNS, ProgrammeSummary, summarize_programme
from castline.qa.report.page import render_html
from castline.qa.report.plots import plot_loudness, plot_waveform
from castline.qa.report.tables import MARKDOWN_MAX_CHUNK_ROWS, chunk_table, summary_markdown

__all__ = ["ENVELOPE_MAX_COLUMNS", "LOUDNESS_PNG", "MARKDOWN_MAX_CHUNK_ROWS", "QA_JSON", "REPORT_HTML", "ReportFiles",
           "ProgrammeSummary", "WAVEFORM_PNG", "chunk_table", "render_html", "summarize_programme",
           "summary_markdown", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    """Paths of everything ``write_report`` wrote."""

    qa_json: Path
    report_html: Path
    loudness_png: Path
    waveform_png: Path


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
    write_bytes_atomic(files.qa_json, text.encode("utf-8"))
    summary = summarize_programme(audio_path, block_samples=block_samples)
    plot_loudness(qa, summary, files.loudness_png)
    plot_waveform(qa, summary, files.waveform_png)
    # Last, so the page never refers to plots that are not there yet.
    write_bytes_atomic(files.report_html, render_html(qa, summary).encode("utf-8"))
    return files
