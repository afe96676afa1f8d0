"""Processing chains are data: the records the DSP ran with are what the manifest records."""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile

from castline.delivery.master import master
from castline.dsp.chain import (DcHighpass, Fades, Join, MasterChain, ProgrammeGain, Quantise, TruePeakLimit,
                                TrimSilence)
from castline.dsp.loudness import LoudnessMeter
from castline.dsp.presets import PRESETS
from castline.dsp.truepeak import measure_true_peak_dbtp
from castline.render.chunking import Boundary
from castline.render.stitch import StitchSettings, stitch
from castline.storage import open_store
from conftest import speech_like
from stitch_helpers import store_synthetic_chunks

RATE = 24_000
FIXTURE = Path(__file__).parent / "fixtures" / "manifests" / "episode-v0.1.0.json"


def _programme(tmp_path):
    audio = speech_like(20.0, RATE, seed=4, level_db=-30.0)
    for position in np.linspace(RATE, audio.size - RATE, 8).astype(int):
        audio[position:position + 24] += np.float32(10 ** (-6 / 20)) * np.hanning(24)
    path = tmp_path / "stitched.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    meter = LoudnessMeter(RATE, 1)
    meter.process(audio)
    return path, meter.result()


def _true_peak_dbtp(path):
    audio, rate = soundfile.read(path, dtype="float32")
    return measure_true_peak_dbtp(audio, rate)


def test_a_changed_limiter_ceiling_changes_the_master_and_its_recorded_chain(tmp_path):
    path, reading = _programme(tmp_path)
    results = {ceiling: master(path, reading, PRESETS["podcast"], tmp_path / f"master{ceiling}.wav",
                               ceiling_dbtp=ceiling) for ceiling in (-1.0, -4.0)}
    peaks = {ceiling: _true_peak_dbtp(result.path) for ceiling, result in results.items()}
    assert peaks[-4.0] <= -4.0 + 1e-3 < -1.5 < peaks[-1.0] <= -1.0 + 1e-3
    for ceiling, result in results.items():
        [limiter] = [step for step in result.chain if step["step"] == "true_peak_limiter"]
        assert limiter["ceiling_dbtp"] == ceiling == result.steps.limit.ceiling_dbtp
        assert result.chain == result.steps.to_manifest()
        assert result.chain[0] == {"step": "programme_gain", "gain_db": round(result.gain_db, 4)}


def test_the_master_runs_the_chain_it_is_given(tmp_path):
    """The pass reads gain, limiter and quantiser from the records: a 16-bit quantiser writes 16 bits."""
    from castline.delivery.master import _master_pass

    path, _ = _programme(tmp_path)
    chain = MasterChain(gain=ProgrammeGain(6.0), limit=TruePeakLimit.at(RATE, -2.0), quantise=Quantise(bits=16))
    _master_pass(path, tmp_path / "m16.wav", chain, 65536)
    info = soundfile.info(tmp_path / "m16.wav")
    assert info.subtype == "PCM_16"
    assert chain.to_manifest()[2] == {"step": "quantise", "format": "WAV PCM 16-bit"}
    assert _true_peak_dbtp(tmp_path / "m16.wav") <= -2.0 + 0.01  # the 16-bit grid rounds by ~1.5e-5


def test_the_limiter_step_records_the_oversampling_it_runs_at():
    assert TruePeakLimit.at(24_000, -1.0).oversampling == 4
    assert TruePeakLimit.at(96_000, -1.0).oversampling == 2
    with pytest.raises(ValueError, match="oversamples 2x at 96000 Hz"):
        TruePeakLimit(ceiling_dbtp=-1.0, oversampling=4).limiter(96_000, 1)


@pytest.fixture
def chunks(tmp_path):
    store = open_store(tmp_path / "store")
    signals = [speech_like(1.5 + 0.2 * i, RATE, seed=i, level_db=-20 - 3 * i) for i in range(4)]
    boundaries = [Boundary.START, Boundary.SENTENCE, Boundary.TURN, Boundary.TURN]
    jobs, records = store_synthetic_chunks(store, signals, ["a", "a", "b", "a"], boundaries, tmp_path)
    return store, jobs, records


def test_a_changed_stitch_parameter_changes_the_audio_and_its_recorded_chain(tmp_path, chunks):
    store, jobs, records = chunks
    base = stitch(jobs, records, store, tmp_path / "base.wav")
    longer = stitch(jobs, records, store, tmp_path / "longer.wav",
                    StitchSettings(sentence_pause_ms=700))
    assert longer.duration_samples - base.duration_samples == (700 - 250) * RATE // 1000
    assert [step["pauses_ms"]["sentence"] for step in (base.chain[4], longer.chain[4])] == [250, 700]
    steeper = stitch(jobs, records, store, tmp_path / "steeper.wav", StitchSettings(highpass_hz=120.0))
    assert steeper.chain[0]["cutoff_hz"] == 120.0 and base.chain[0]["cutoff_hz"] == 40.0
    base_audio = soundfile.read(base.path, dtype="float32")[0]
    steeper_audio = soundfile.read(steeper.path, dtype="float32")[0]
    assert base_audio.size == steeper_audio.size and not np.array_equal(base_audio, steeper_audio)
    for result in (base, longer, steeper):
        assert result.chain == result.steps.to_manifest()
        assert result.chain[3]["gains_db"] == dict(result.speaker_gains_db)


def test_chains_describe_themselves_as_the_published_manifests_do():
    published = json.loads(FIXTURE.read_text(encoding="utf-8"))["mastering"]
    gains = published["stitch_chain"][3]["gains_db"]
    stitch_chain = StitchSettings().chain(gains).to_manifest()
    # One value differs on purpose: v0.1.0 wrote "zero_phase": true for a filter that has always
    # run one causal pass (castline.dsp.edges.remove_dc); the record says what runs.
    assert stitch_chain[0] == {**published["stitch_chain"][0], "zero_phase": False}
    assert list(stitch_chain[1:]) == published["stitch_chain"][1:]
    assert json.dumps(stitch_chain[1:]) == json.dumps(published["stitch_chain"][1:])  # key order too
    gain = published["master_chain"][0]["gain_db"]
    master_chain = MasterChain(gain=ProgrammeGain(gain), limit=TruePeakLimit.at(RATE, -1.3)).to_manifest()
    assert json.dumps(list(master_chain)) == json.dumps(published["master_chain"])


def test_step_records_are_frozen_and_check_what_they_cannot_run():
    step = DcHighpass()
    with pytest.raises(dataclasses.FrozenInstanceError):
        step.cutoff_hz = 80.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="fade shape"):
        Fades(shape="linear")
    with pytest.raises(ValueError, match="quantise to 20 bits"):
        Quantise(bits=20)
    with pytest.raises(ValueError, match="join pauses"):
        Join(pauses_ms=(("lead_in", 300),))
    assert TrimSilence(threshold_dbfs=-60.0).to_manifest() == {"step": "trim_silence", "threshold_dbfs": -60.0,
                                                              "keep_ms": 40.0}


def test_zero_phase_highpass_runs_when_the_record_asks():
    audio = speech_like(1.0, RATE, seed=2) + np.float32(0.05)
    one_pass = DcHighpass().apply(audio, RATE)
    two_pass = DcHighpass(zero_phase=True).apply(audio, RATE)
    assert not np.array_equal(one_pass, two_pass)
    assert abs(float(np.mean(two_pass))) < 1e-3 and abs(float(np.mean(one_pass))) < 1e-3
