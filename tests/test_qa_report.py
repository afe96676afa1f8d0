"""QA report: qa.json contract and round trip, report.html, plots, verdicts, bounded memory."""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from castline.dsp.loudness import measure_loudness
from castline.qa.records import (VERDICTS, AttemptQA, ChunkQA, EpisodeQA, FileQA, SeamQA, SpeakerQA,
                               from_json, to_json, verdict_for)
from castline.qa.report import (ENVELOPE_MAX_COLUMNS, ReportFiles, chunk_table, render_html,
                                summarize_programme, summary_markdown, write_report)

RATE = 24_000
SECONDS = 60
CHUNK_SECONDS = 5
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE_TEXT = 'Then she said <script>alert("x")</script> & left | fast'
FAILED_INDEX = 7
RETRIED_INDEX = 3


def speechish(rate: int, seconds: float, seed: int, channels: int) -> np.ndarray:
    """Noise under a syllable-rate envelope with pauses, ``(frames, channels)`` float32."""
    rng = np.random.default_rng(seed)
    frames = int(rate * seconds)
    syllable = rate // 5
    envelope = np.repeat(rng.uniform(0.05, 1.0, frames // syllable + 1), syllable)[:frames]
    envelope[(np.arange(frames) // (2 * rate)) % 7 == 6] = 0.0
    signal = 0.3 * envelope[:, np.newaxis] * rng.standard_normal((frames, channels))
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def make_chunk(index: int, *, passed: bool = True, flags: tuple[str, ...] = (),
               attempts: int = 1, text: str | None = None, wer: float | None = 0.0) -> ChunkQA:
    log = tuple(AttemptQA(attempt=n, seed=1000 + n, wer=0.4 if n < attempts else wer,
                          flags=("wer_high",) if n < attempts else flags, chosen=n == attempts)
                for n in range(1, attempts + 1))
    return ChunkQA(
        index=index, turn=index // 2, speaker="Ana" if index % 2 == 0 else "Ben",
        voice="ana-v1" if index % 2 == 0 else "ben-v2",
        text=text if text is not None else f"Chunk number {index} of the episode.",
        transcript=f"chunk number {index} of the episode", wer=wer, attempts=attempts,
        attempt_log=log, flags=flags, passed=passed,
        start_sample=index * CHUNK_SECONDS * RATE, end_sample=(index + 1) * CHUNK_SECONDS * RATE,
        metrics=(("speech_rate_wpm", 150.0 + index), ("speaker_similarity", 0.8)))


def sample_chunks() -> tuple[ChunkQA, ...]:
    chunks = []
    for index in range(SECONDS // CHUNK_SECONDS):
        if index == FAILED_INDEX:
            chunks.append(make_chunk(index, passed=False, flags=("wer_high", "truncated"),
                                     attempts=3, wer=0.42))
        elif index == RETRIED_INDEX:
            chunks.append(make_chunk(index, attempts=2, wer=0.05))
        elif index == 4:
            chunks.append(make_chunk(index, text=HOSTILE_TEXT, wer=None))
        else:
            chunks.append(make_chunk(index))
    return tuple(chunks)


def sample_episode(chunks: tuple[ChunkQA, ...], policy: str = "warn",
                   episode_flags: tuple[str, ...] = ("seam jump 7.1 dB at 00:25",)) -> EpisodeQA:
    return EpisodeQA(
        episode="ep-042 <b>pilot</b>",
        verdict=verdict_for(chunks, episode_flags, policy=policy),
        policy=policy,
        chunks=chunks,
        sample_rate=RATE,
        episode_flags=episode_flags,
        seams=(SeamQA(join_sample=5 * 5 * RATE, jump_db=7.1, flagged=True),
               SeamQA(join_sample=6 * 5 * RATE, jump_db=-0.4, flagged=False)),
        speakers=(SpeakerQA("Ana", "ana-v1", -16.3, 1.2, 0.81, -0.03),
                  SpeakerQA("Ben", "ben-v2", -15.8, 2.4, None, None)),
        files=(FileQA("mp3", -16.1, -1.3, True),
               FileQA("wav", -math.inf, None, False, ("integrated -inf LUFS, target -16.0 ±1 LU",))),
        target_lufs=-16.0,
        tolerance_lu=1.0,
        thresholds=(("wer_max", 0.15), ("seam_jump_max_db", 6.0)),
        timings_s=(("asr", 3.25), ("report", 0.5)),
    )


@pytest.fixture(scope="module")
def programme(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("programme") / "episode.wav"
    sf.write(path, speechish(RATE, SECONDS, seed=1, channels=2), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def report(programme, tmp_path_factory) -> tuple[EpisodeQA, ReportFiles]:
    qa = sample_episode(sample_chunks())
    files = write_report(qa, programme, tmp_path_factory.mktemp("report") / "qa")
    return qa, files


def test_report_writes_every_file_with_valid_pngs(report):
    _, files = report
    for path in (files.qa_json, files.report_html, files.loudness_png, files.waveform_png):
        assert path.is_file(), path
        assert path.parent == files.qa_json.parent
    for png in (files.loudness_png, files.waveform_png):
        data = png.read_bytes()
        assert data[:8] == PNG_SIGNATURE
        assert data[12:16] == b"IHDR"
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert width >= 800 and height >= 200
        assert len(data) > 10_000, f"{png.name} suspiciously small ({len(data)} bytes)"
    assert not [p for p in files.qa_json.parent.iterdir() if p.name.startswith(".")]


def test_qa_json_public_contract(report):
    qa, files = report

    def reject(constant):
        raise AssertionError(f"non-standard JSON constant {constant}")

    data = json.loads(files.qa_json.read_text(encoding="utf-8"), parse_constant=reject)
    assert data["verdict"] in VERDICTS
    assert data["verdict"] == qa.verdict == "warn"
    assert len(data["chunks"]) == len(qa.chunks)
    for chunk in data["chunks"]:
        assert type(chunk["turn"]) is int
        assert isinstance(chunk["text"], str) and isinstance(chunk["transcript"], str)
        assert chunk["wer"] is None or type(chunk["wer"]) is float
        assert type(chunk["attempts"]) is int and chunk["attempts"] >= 1
        assert isinstance(chunk["flags"], list) and all(isinstance(f, str) for f in chunk["flags"])
        assert type(chunk["passed"]) is bool
    failed = data["chunks"][FAILED_INDEX]
    assert failed["passed"] is False and failed["flags"] == ["wer_high", "truncated"]
    assert failed["attempts"] == 3 and len(failed["attempt_log"]) == 3
    assert data["chunks"][4]["wer"] is None and data["chunks"][4]["text"] == HOSTILE_TEXT
    assert data["files"][1]["integrated_lufs"] == "-inf"
    assert data["summary"] == {"chunks": 12, "passed": 11, "failed": 1, "retried": 2}
    assert data["thresholds"] == {"wer_max": 0.15, "seam_jump_max_db": 6.0}


def test_json_round_trip(report):
    qa, files = report
    loaded = from_json(json.loads(files.qa_json.read_text(encoding="utf-8")))
    assert loaded == qa
    assert loaded.files[1].integrated_lufs == -math.inf
    assert to_json(loaded) == to_json(qa)
    with pytest.raises(ValueError, match="schema_version"):
        from_json({**to_json(qa), "schema_version": 99})


def test_html_tables_escaping_and_images(report):
    qa, files = report
    page = files.report_html.read_text(encoding="utf-8")
    assert "<table" in page
    chunk_section = page[page.index('<table id="chunks">'):]
    chunk_section = chunk_section[:chunk_section.index("</table>")]
    rows = re.findall(r'<tr class="chunk[^"]*">', chunk_section)
    assert len(rows) == len(qa.chunks)
    assert rows[FAILED_INDEX] == '<tr class="chunk fail">'
    assert rows[RETRIED_INDEX] == '<tr class="chunk retried">'
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; left" in page
    assert "ep-042 &lt;b&gt;pilot&lt;/b&gt;" in page and "<b>pilot" not in page
    assert 'src="loudness.png"' in page and 'src="waveform.png"' in page
    assert "seam jump 7.1 dB at 00:25" in page
    for heading in ("Speakers", "Delivered files"):
        assert f"<h3>{heading}</h3>" in page
    assert "11 passed, 1 failed, 2 retried" in page
    assert "00:35" in chunk_section  # chunk 7 starts at 35 s


def test_summary_matches_whole_signal(tmp_path):
    signal = speechish(RATE, 9.5, seed=2, channels=2)
    path = tmp_path / "short.wav"
    sf.write(path, signal, RATE, subtype="FLOAT")
    columns = 50
    summary = summarize_programme(path, block_samples=1001, max_columns=columns)
    per_column = math.ceil(signal.shape[0] / columns)
    assert summary.samples_per_column == per_column
    assert summary.duration_samples == signal.shape[0]
    expected_min = [signal[i:i + per_column].min() for i in range(0, signal.shape[0], per_column)]
    expected_max = [signal[i:i + per_column].max() for i in range(0, signal.shape[0], per_column)]
    np.testing.assert_array_equal(summary.envelope_min, expected_min)
    np.testing.assert_array_equal(summary.envelope_max, expected_max)
    whole = measure_loudness(signal.T, RATE)
    assert summary.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=1e-9)
    assert summary.short_term_lufs.size == 95 - 30 + 1


@pytest.mark.parametrize("policy, chunks, episode_flags, expected", [
    ("strict", (make_chunk(0), make_chunk(1, passed=False, flags=("wer_high",))), (), "fail"),
    ("warn", (make_chunk(0), make_chunk(1, passed=False, flags=("wer_high",))), (), "warn"),
    ("off", (make_chunk(0, passed=False),), (), "warn"),
    ("warn", (make_chunk(0), make_chunk(1)), ("loudness spread 4.2 LU",), "warn"),
    ("strict", (make_chunk(0), make_chunk(1)), ("speaker Ben drifts",), "warn"),
    ("strict", (make_chunk(0, flags=("fast_speech",)),), (), "warn"),
    ("strict", (make_chunk(0), make_chunk(1, attempts=2)), (), "pass"),
    ("warn", (make_chunk(0), make_chunk(1)), (), "pass"),
])
def test_verdict(policy, chunks, episode_flags, expected):
    assert verdict_for(chunks, episode_flags, policy=policy) == expected
    assert verdict_for(iter(chunks), iter(episode_flags), policy=policy) == expected


def test_invalid_values_are_refused():
    with pytest.raises(ValueError, match="policy"):
        verdict_for((), (), policy="lenient")
    with pytest.raises(ValueError, match="verdict"):
        EpisodeQA(episode="e", verdict="ok", policy="warn", chunks=(), sample_rate=RATE)
    with pytest.raises(ValueError, match="duplicate metric"):
        ChunkQA(index=0, turn=0, speaker="a", voice="v", text="", transcript="", wer=None,
                attempts=1, passed=True, start_sample=0, end_sample=1,
                metrics=(("x", 1.0), ("x", 2.0)))


def test_artifact_tables_are_flat(report):
    qa, _ = report
    rows = chunk_table(qa)
    assert len(rows) == len(qa.chunks)
    for row in rows:
        assert all(type(value) in (str, float, int, bool) for value in row.values()), row
        assert list(row) == list(rows[0])
    assert rows[4]["wer"] == "" and rows[4]["text"] == HOSTILE_TEXT
    assert rows[FAILED_INDEX]["passed"] is False
    assert rows[FAILED_INDEX]["flags"] == "wer_high; truncated"
    assert rows[FAILED_INDEX]["time"] == "00:35" and rows[FAILED_INDEX]["start_s"] == 35.0
    assert rows[0]["speech_rate_wpm"] == 150.0
    markdown = summary_markdown(qa)
    assert "**WARN**" in markdown and "11 passed, 1 failed, 2 retried" in markdown
    assert "seam jump 7.1 dB at 00:25" in markdown
    assert "<b>" not in markdown and "ep-042 &lt;b&gt;pilot&lt;/b&gt;" in markdown
    hostile = dataclasses.replace(qa, chunks=tuple(
        dataclasses.replace(c, text=HOSTILE_TEXT) if c.index == FAILED_INDEX else c
        for c in qa.chunks))
    markdown = summary_markdown(hostile)
    assert "&lt;script&gt;" in markdown and "\\| fast" in markdown
    assert "<script" not in markdown


def test_clean_episode_passes_and_renders_without_audio_summary():
    chunks = tuple(make_chunk(i) for i in range(3))
    qa = sample_episode(chunks, policy="strict", episode_flags=())
    assert qa.verdict == "pass"
    page = render_html(qa)
    assert '<span class="verdict pass">PASS</span>' in page and "<p>None.</p>" in page


def test_twenty_minute_report_streams_in_bounded_memory(tmp_path, report):
    rate, minutes = 16_000, 20
    path = tmp_path / "long.wav"
    with sf.SoundFile(path, "w", rate, 1, "PCM_16") as sink:
        for minute in range(minutes):
            sink.write(speechish(rate, 60, seed=minute, channels=1))
    chunks = tuple(
        ChunkQA(index=i, turn=i, speaker="Ana", voice="ana-v1", text=f"chunk {i}",
                transcript=f"chunk {i}", wer=0.0, attempts=1 + (i % 9 == 0), passed=i % 13 != 5,
                start_sample=i * 6 * rate, end_sample=(i + 1) * 6 * rate)
        for i in range(minutes * 10))
    qa = EpisodeQA(episode="long", verdict=verdict_for(chunks, (), policy="warn"), policy="warn",
                   chunks=chunks, sample_rate=rate, target_lufs=-16.0, tolerance_lu=1.0)
    # 20 min at 16 kHz is 19.2 M samples: 77 MB as float32 if read whole.
    tracemalloc.start()
    try:
        files = write_report(qa, path, tmp_path / "out")
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak_bytes < 50e6, f"peak {peak_bytes / 1e6:.1f} MB"
    assert files.waveform_png.read_bytes()[:8] == PNG_SIGNATURE
    summary = summarize_programme(path)
    assert summary.duration_samples == minutes * 60 * rate
    assert summary.envelope_min.size <= ENVELOPE_MAX_COLUMNS
    assert summary.short_term_lufs.size == minutes * 600 - 29
