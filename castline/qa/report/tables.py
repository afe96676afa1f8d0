"""Flat summaries of a report for Prefect artifacts: a table row per chunk and a Markdown summary."""

from __future__ import annotations

from castline.core.timebase import samples_to_seconds
from castline.qa.records import EpisodeQA
from castline.qa.report.common import clock, md, number, percent, shorten

MARKDOWN_MAX_CHUNK_ROWS = 50


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
            "time": clock(chunk.start_sample, qa.sample_rate),
            "start_s": samples_to_seconds(chunk.start_sample, qa.sample_rate),
            "duration_s": samples_to_seconds(chunk.end_sample - chunk.start_sample,
                                             qa.sample_rate),
            "text": chunk.text,
            "transcript": chunk.transcript,
            "wer": "" if chunk.wer is None else float(chunk.wer),
            "asr_model": chunk.asr_model or "",
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
        f"## QA: {md(qa.episode)} — **{qa.verdict.upper()}**",
        "",
        f"Policy `{qa.policy}` · {len(qa.chunks)} chunks: {qa.passed_count} passed, "
        f"{qa.failed_count} failed, {qa.retried_count} retried · target "
        f"{number(qa.target_lufs, '.1f', ' LUFS')}"
        + (f" ±{number(qa.tolerance_lu, 'g', ' LU')}" if qa.tolerance_lu is not None else ""),
        "",
    ]
    if qa.episode_flags:
        lines += ["### Episode flags", ""]
        lines += [f"- {md(flag)}" for flag in qa.episode_flags]
        lines.append("")
    if qa.speakers:
        lines += ["### Speakers", "",
                  "| speaker | voice | integrated LUFS | spread LU | similarity | drift |",
                  "|---|---|---:|---:|---:|---:|"]
        lines += [f"| {md(s.speaker)} | {md(s.voice)} | {number(s.integrated_lufs, '.1f')} | "
                  f"{number(s.spread_lu, '.1f')} | {number(s.mean_similarity, '.2f')} | "
                  f"{number(s.drift, '+.2f')} |" for s in qa.speakers]
        lines.append("")
    if qa.files:
        lines += ["### Files", "",
                  "| format | integrated LUFS | true peak dBTP | compliant | problems |",
                  "|---|---:|---:|---|---|"]
        lines += [f"| {md(f.format)} | {number(f.integrated_lufs, '.1f')} | "
                  f"{number(f.true_peak_dbtp, '.1f')} | {'yes' if f.compliant else '**no**'} | "
                  f"{md('; '.join(f.problems))} |" for f in qa.files]
        lines.append("")
    notable = [chunk for chunk in qa.chunks if chunk.flagged or chunk.retried]
    if notable:
        lines += ["### Chunks failed, flagged or retried", "",
                  "| # | turn | speaker | time | WER | attempts | flags | passed | text |",
                  "|---:|---:|---|---|---:|---:|---|---|---|"]
        for chunk in notable[:MARKDOWN_MAX_CHUNK_ROWS]:
            lines.append(
                f"| {chunk.index} | {chunk.turn} | {md(chunk.speaker)} | "
                f"{clock(chunk.start_sample, qa.sample_rate)} | {percent(chunk.wer)} | "
                f"{chunk.attempts} | {md(', '.join(chunk.flags))} | "
                f"{'yes' if chunk.passed else '**no**'} | {md(shorten(chunk.text, 120))} |")
        if len(notable) > MARKDOWN_MAX_CHUNK_ROWS:
            lines.append("")
            lines.append(f"… and {len(notable) - MARKDOWN_MAX_CHUNK_ROWS} more (see qa.json).")
        lines.append("")
    return "\n".join(lines)
