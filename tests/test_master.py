"""Mastering on synthetic programmes: every preset's target, the ceiling, timing, mono convention."""

import math

import numpy as np
import pytest
import soundfile

from castline.dsp.loudness import LoudnessMeter
from castline.delivery.master import master
from castline.dsp.presets import PRESETS
from conftest import speech_like

RATE = 24_000


def _programme(tmp_path, seconds=40.0, level_db=-30.0, peaky=True):
    audio = speech_like(seconds, RATE, seed=4, level_db=level_db)
    if peaky:  # a few loud consonant-like spikes that gain alone would push over the ceiling
        for position in np.linspace(RATE, audio.size - RATE, 12).astype(int):
            audio[position:position + 24] += np.float32(10 ** ((level_db + 24) / 20)) * np.hanning(24)
    path = tmp_path / "stitched.wav"
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    meter = LoudnessMeter(RATE, 1)
    meter.process(audio)
    return path, meter.result(), audio


@pytest.mark.parametrize("name", ["podcast", "ebu-r128", "atsc-a85", "acx"])
def test_each_preset_lands_on_target_under_its_ceiling(tmp_path, name):
    preset = PRESETS[name]
    path, reading, _ = _programme(tmp_path)
    result = master(path, reading, preset, tmp_path / "master.wav")
    after = result.reading
    if preset.target_lufs is not None:
        assert abs(after.integrated_lufs - preset.target_lufs) <= 0.1
    else:
        assert abs(after.rms_dbfs - preset.target_rms_dbfs) <= 0.1
    assert after.true_peak_dbtp <= preset.ceiling_dbtp
    assert after.true_peak_dbtp <= preset.limiter_ceiling_dbtp + 1e-3
    # independent re-read of the written file agrees with the reading
    audio, _ = soundfile.read(tmp_path / "master.wav", dtype="float32")
    meter = LoudnessMeter(RATE, 1)
    meter.process(audio)
    assert abs(meter.result().integrated_lufs - after.integrated_lufs) < 1e-6


def test_gain_alone_would_clip_so_the_limiter_works(tmp_path):
    path, reading, audio = _programme(tmp_path)
    gain_db = PRESETS["podcast"].target_lufs - reading.integrated_lufs
    assert 20 * math.log10(np.abs(audio).max()) + gain_db > 0  # would clip without a limiter
    result = master(path, reading, PRESETS["podcast"], tmp_path / "master.wav")
    assert result.limited_samples > 0 and result.reading.true_peak_dbtp <= -1.0


def test_mastering_does_not_move_anything_in_time(tmp_path):
    path, reading, audio = _programme(tmp_path, peaky=False, level_db=-26)
    marker = RATE * 10
    audio[marker - 2400:marker + 2400] = 0.0
    audio[marker] = 0.01  # a lone impulse inside silence
    soundfile.write(path, audio, RATE, subtype="FLOAT")
    meter = LoudnessMeter(RATE, 1)
    meter.process(audio)
    master(path, meter.result(), PRESETS["ebu-r128"], tmp_path / "master.wav")
    out, _ = soundfile.read(tmp_path / "master.wav", dtype="float32")
    assert out.size == audio.size
    assert int(np.argmax(np.abs(out[marker - 2400:marker + 2400]))) == 2400


def test_mono_is_measured_as_dual_mono(tmp_path):
    """A −16 LUFS podcast master in mono reads −19 LUFS as a single channel (pyloudnorm)."""
    import pyloudnorm

    path, reading, _ = _programme(tmp_path, peaky=False)
    master(path, reading, PRESETS["podcast"], tmp_path / "master.wav")
    audio, _ = soundfile.read(tmp_path / "master.wav", dtype="float64")
    single = pyloudnorm.Meter(RATE, filter_class="DeMan").integrated_loudness(audio)
    assert abs(single - (-16.0 - 10 * math.log10(2))) < 0.15


def test_silent_programme_is_an_error(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(path, np.zeros(RATE * 5, np.float32), RATE, subtype="FLOAT")
    meter = LoudnessMeter(RATE, 1)
    meter.process(np.zeros(RATE * 5, np.float32))
    with pytest.raises(ValueError, match="silent"):
        master(path, meter.result(), PRESETS["podcast"], tmp_path / "master.wav")


def test_noise_floor_is_measured():
    rng = np.random.default_rng(0)
    hiss = (rng.standard_normal(RATE * 3) * 10 ** (-65 / 20)).astype(np.float32)
    speech = speech_like(3.0, RATE, seed=1, level_db=-20)
    meter = LoudnessMeter(RATE, 1)
    for block in np.array_split(np.concatenate([speech, hiss, speech]), 7):
        meter.process(block)
    assert abs(meter.noise_floor_dbfs() - (-65.0)) < 0.5
    silent = LoudnessMeter(RATE, 1)
    silent.process(np.concatenate([speech, np.zeros(RATE, np.float32)]))
    assert silent.noise_floor_dbfs() == -np.inf
    short = LoudnessMeter(RATE, 1)
    short.process(speech[:RATE // 4])
    assert np.isnan(short.noise_floor_dbfs())
