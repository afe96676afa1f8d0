"""Stitching on synthetic chunks: seams, pauses, timings, speaker levelling, bounded memory."""

import numpy as np
import pytest
import soundfile

from castline.dsp.loudness import LoudnessMeter
from castline.dsp.seams import CLICK_THRESHOLD_DB, seam_jump_db, seam_report
from castline.render.chunking import Boundary
from castline.render.stitch import StitchSettings, stitch
from castline.storage import open_store
from conftest import speech_like
from stitch_helpers import store_synthetic_chunks

RATE = 24_000


def _raw_chunk(seconds, seed, level_db, dc, silence_s=0.3):
    """Speech-like audio starting and ending abruptly, with a DC offset and a silent tail."""
    speech = speech_like(seconds, RATE, seed=seed, level_db=level_db) + np.float32(dc)
    tail = np.full(int(silence_s * RATE), dc, np.float32)
    return np.concatenate([speech, tail]).astype(np.float32)


@pytest.fixture
def stitched(tmp_path):
    store = open_store(tmp_path / "store")
    rng = np.random.default_rng(1)
    boundaries = [Boundary.START, Boundary.SENTENCE, Boundary.SPLIT, Boundary.TURN, Boundary.TURN, Boundary.SCENE,
                  Boundary.TURN]
    speakers = ["a", "a", "a", "b", "a", "b", "b"]
    signals = [_raw_chunk(rng.uniform(1.5, 3.0), seed, level, dc)
               for seed, (level, dc) in enumerate(zip([-18, -20, -19, -30, -21, -31, -29],
                                                      [0.05, -0.04, 0.08, 0.02, -0.06, 0.03, 0.01]))]
    jobs, records = store_synthetic_chunks(store, signals, speakers, boundaries, tmp_path)
    result = stitch(jobs, records, store, tmp_path / "stitched.wav")
    audio, rate = soundfile.read(result.path, dtype="float32")
    return result, audio, jobs, signals


def test_no_click_at_any_join(stitched):
    result, audio, jobs, _ = stitched
    joins = [p.start_sample for p in result.placements] + [p.end_sample for p in result.placements]
    assert seam_report(audio, joins, RATE) == []


def test_abrupt_chunks_click_when_butted_but_not_when_stitched(tmp_path):
    """The seam check can fail: chunks cut mid-waveform with DC offsets click when butted together."""
    signals = []
    for i, dc in enumerate([0.05, -0.05, 0.06, -0.04, 0.05]):
        speech = speech_like(1.0 + 0.1 * i, RATE, seed=10 + i, level_db=-20)
        window = RATE // 10  # cut each chunk at a waveform peak, as an engine cut mid-syllable would
        start = int(np.argmin(speech[:window]))
        end = speech.size - window + int(np.argmax(speech[-window:])) + 1
        signals.append(speech[start:end] + np.float32(dc))
    naive = np.concatenate(signals)
    joins = list(np.cumsum([s.size for s in signals])[:-1])
    assert len(seam_report(naive, joins, RATE)) >= 2
    store = open_store(tmp_path / "store")
    boundaries = [Boundary.START] + [Boundary.SPLIT] * 4
    jobs, records = store_synthetic_chunks(store, signals, ["a"] * 5, boundaries, tmp_path)
    result = stitch(jobs, records, store, tmp_path / "stitched.wav")
    audio, _ = soundfile.read(result.path, dtype="float32")
    joins = [p.start_sample for p in result.placements] + [p.end_sample for p in result.placements]
    assert seam_report(audio, joins, RATE) == []


def test_pauses_follow_boundary_types(stitched):
    result, _, jobs, _ = stitched
    settings = StitchSettings()
    placements = result.placements
    assert placements[0].start_sample == settings.lead_in_ms * RATE // 1000
    gaps = [placements[i].start_sample - placements[i - 1].end_sample for i in range(1, len(placements))]
    ms = [round(gap * 1000 / RATE) for gap in gaps]
    assert ms[0] == settings.sentence_pause_ms
    assert ms[1] == -settings.crossfade_ms  # the split sentence overlaps by the crossfade
    assert ms[2] == settings.speaker_change_pause_ms
    assert ms[3] == settings.speaker_change_pause_ms
    assert ms[4] == settings.scene_pause_ms
    assert ms[5] == settings.same_speaker_turn_pause_ms
    assert result.duration_samples == placements[-1].end_sample + settings.tail_ms * RATE // 1000


def test_dc_is_removed_and_silence_trimmed(stitched):
    result, audio, _, signals = stitched
    for placement in result.placements:
        segment = audio[placement.start_sample:placement.end_sample]
        assert abs(float(np.mean(segment))) < 2e-3
    # trimmed: each placed chunk is shorter than its raw 0.3 s silent tail would allow
    lengths = [p.end_sample - p.start_sample for p in result.placements]
    raw = [s.size for s in signals]
    assert all(length < size - 0.2 * RATE for length, size in zip(lengths[3:], raw[3:]))


def test_speakers_are_levelled_once_each(stitched):
    result, audio, jobs, _ = stitched
    gains = dict(result.speaker_gains_db)
    assert gains["b"] > 8 and gains["a"] < 0  # b was ~10 dB quieter than a
    per_speaker = {}
    for job, placement in zip(jobs, result.placements):
        meter = LoudnessMeter(RATE, 1)
        meter.process(audio[placement.start_sample:placement.end_sample])
        per_speaker.setdefault(job.speaker, []).append(meter.result().integrated_lufs)
    means = {s: np.mean(v) for s, v in per_speaker.items()}
    assert abs(means["a"] - means["b"]) < 1.5
    # within a speaker the performance is kept: chunks still differ as they did
    assert np.ptp(per_speaker["a"]) > 1.0


def test_meter_reading_matches_the_written_file(stitched):
    result, audio, _, _ = stitched
    meter = LoudnessMeter(RATE, 1)
    meter.process(audio)
    assert abs(meter.result().integrated_lufs - result.reading.integrated_lufs) < 1e-6
    assert result.reading.duration_samples == audio.size == result.duration_samples


def test_seam_metric_finds_an_injected_click():
    audio = speech_like(2.0, RATE, seed=3, level_db=-25)
    clean = seam_jump_db(audio, RATE, RATE)
    audio[RATE] += 0.5
    assert clean < CLICK_THRESHOLD_DB < seam_jump_db(audio, RATE, RATE)


def test_stitch_memory_does_not_grow_with_length(tmp_path):
    """Peak traced allocations for 20 chunks and for 80 chunks are about the same."""
    import tracemalloc

    peaks = []
    for count in (20, 80):
        store = open_store(tmp_path / f"store{count}")
        signals = [speech_like(3.0, RATE, seed=i, level_db=-20 - (i % 5)) for i in range(count)]
        boundaries = [Boundary.START] + [Boundary.TURN] * (count - 1)
        jobs, records = store_synthetic_chunks(store, signals, ["a", "b"] * (count // 2), boundaries,
                                               _mkdir(tmp_path / f"c{count}"))
        del signals
        tracemalloc.start()
        stitch(jobs, records, store, tmp_path / f"out{count}.wav")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    assert peaks[1] < peaks[0] * 1.3 + 2_000_000, peaks
    assert peaks[1] < 40_000_000  # 80 × 3 s of float32 would be 23 MB if it were all held


def _mkdir(path):
    path.mkdir()
    return path
