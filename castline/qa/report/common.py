"""What the report's parts share: its file names and how numbers and text are written."""

from __future__ import annotations

import html
import math
import re

from castline.core.timebase import samples_to_seconds

QA_JSON = "qa.json"
REPORT_HTML = "report.html"
LOUDNESS_PNG = "loudness.png"
WAVEFORM_PNG = "waveform.png"


def clock(samples: int, sample_rate: int) -> str:
    """``mm:ss`` (minutes not wrapped at 60: ``93:05``), truncated to the whole second."""
    seconds = int(samples_to_seconds(samples, sample_rate))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def number(value: float | None, spec: str, unit: str = "") -> str:
    if value is None:
        return "–"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return ("∞" if value > 0 else "-∞") + unit
    return f"{value:{spec}}{unit}"


def percent(wer: float | None) -> str:
    return "–" if wer is None else number(100.0 * wer, ".1f", "%")


def shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def escape(text: str) -> str:
    return html.escape(text, quote=True)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|#~])")


def md(text: str) -> str:
    """Plain text made safe for one Markdown table cell or list item."""
    text = " ".join(text.split())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)
