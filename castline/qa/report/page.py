"""The self-contained report page (inline CSS, no scripts)."""

from __future__ import annotations

from castline.qa.records import ChunkQA, EpisodeQA
from castline.qa.report.common import LOUDNESS_PNG, WAVEFORM_PNG, clock, escape, number, percent
from castline.qa.report.measure import ProgrammeSummary


def render_html(qa: EpisodeQA, summary: ProgrammeSummary | None = None) -> str:
    """The self-contained report page (inline CSS, no scripts); the plots are referenced by
    relative name, so the page belongs in the same folder as ``loudness.png`` and
    ``waveform.png``. ``summary`` adds the programme's duration and measured loudness."""
    e = escape
    verdict = qa.verdict
    facts = [
        ("Verdict", f'<span class="verdict {e(verdict)}">{e(verdict.upper())}</span>'),
        ("Policy", e(qa.policy)),
        ("Chunks", f"{len(qa.chunks)}: {qa.passed_count} passed, {qa.failed_count} failed, "
                   f"{qa.retried_count} retried"),
        ("Target", e(number(qa.target_lufs, ".1f", " LUFS"))
         + (f" ±{e(number(qa.tolerance_lu, 'g', ' LU'))}" if qa.tolerance_lu is not None else "")),
        ("Sample rate", f"{qa.sample_rate} Hz"),
    ]
    if qa.heard_by:
        facts.append(("Heard by", e(", ".join(f"{model}: {count}" for model, count in qa.heard_by.items()))))
    if summary is not None:
        facts += [
            ("Duration", clock(summary.duration_samples, summary.sample_rate)),
            ("Programme loudness", e(number(summary.integrated_lufs, ".1f", " LUFS"))),
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
            [[e(s.speaker), e(s.voice), number(s.integrated_lufs, ".1f"),
              number(s.spread_lu, ".1f"), number(s.mean_similarity, ".3f"),
              number(s.drift, "+.3f")] for s in qa.speakers])
    if qa.files:
        parts += _html_table(
            "files", "Delivered files",
            ["Format", "Integrated LUFS", "True peak dBTP", "Compliant", "Problems"],
            [[e(f.format), number(f.integrated_lufs, ".1f"), number(f.true_peak_dbtp, ".1f"),
              "yes" if f.compliant else "no", "<br>".join(e(p) for p in f.problems)]
             for f in qa.files],
            row_classes=["" if f.compliant else "fail" for f in qa.files])
    flagged_seams = [seam for seam in qa.seams if seam.flagged]
    if qa.seams:
        parts += _html_table(
            "seams", f"Seams ({len(flagged_seams)} of {len(qa.seams)} flagged)",
            ["Time", "Jump dB"],
            [[clock(s.join_sample, qa.sample_rate), number(s.jump_db, "+.1f")]
             for s in flagged_seams])
    if qa.thresholds:
        parts += _html_table("thresholds", "Thresholds", ["Name", "Value"],
                             [[e(name), number(value, "g")] for name, value in qa.thresholds])
    if qa.timings_s:
        parts += _html_table("timings", "Timings", ["Stage", "Seconds"],
                             [[e(name), number(value, ".2f")] for name, value in qa.timings_s])
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
        ["#", "Turn", "Speaker", "Time", "Text", "Transcript", "WER", "Heard by", "Attempts", "Flags",
         "Passed"],
        [_chunk_cells(chunk, qa.sample_rate) for chunk in qa.chunks],
        row_classes=[_row_class(chunk) for chunk in qa.chunks], row_base_class="chunk")
    parts.append("</section></body></html>\n")
    return "\n".join(parts)


def _chunk_cells(chunk: ChunkQA, sample_rate: int) -> list[str]:
    attempts = str(chunk.attempts)
    if chunk.attempt_log:
        log = "".join(
            f"<li>#{a.attempt} seed {_or_dash(a.seed)} WER {percent(a.wer)}"
            + (f" [{escape(', '.join(a.flags))}]" if a.flags else "")
            + (" (kept)" if a.chosen else "") + "</li>"
            for a in chunk.attempt_log)
        attempts = f"<details><summary>{chunk.attempts}</summary><ul>{log}</ul></details>"
    return [
        str(chunk.index),
        str(chunk.turn),
        escape(chunk.speaker),
        clock(chunk.start_sample, sample_rate),
        escape(chunk.text),
        escape(chunk.transcript),
        percent(chunk.wer),
        _or_dash(chunk.asr_model),
        attempts,
        "<br>".join(escape(flag) for flag in chunk.flags),
        "yes" if chunk.passed else "no",
    ]


def _or_dash(value: object) -> str:
    return "–" if value is None else escape(str(value))


def _row_class(chunk: ChunkQA) -> str:
    if not chunk.passed:
        return "fail"
    if chunk.flags:
        return "flagged"
    return "retried" if chunk.retried else ""


def _html_table(table_id: str, title: str, headers: list[str], rows: list[list[str]], *,
                row_classes: list[str] | None = None, row_base_class: str = "") -> list[str]:
    """``headers`` are plain text; cells must already be escaped HTML."""
    out = [f"<h3>{escape(title)}</h3>"] if title else []
    out += [f'<table id="{table_id}">',
           "<thead><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr></thead>",
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
