"""Encoding: files measured after decoding; out-of-spec lossy files are corrected and re-encoded."""

from dataclasses import replace

import pytest

from castline.audio.encode import deliver, measure_file
from castline.delivery.master import master
from castline.dsp.presets import PRESETS
from test_master import _programme

RATE = 24_000


@pytest.fixture(scope="module")
def mastered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("enc")
    path, reading, _ = _programme(folder, seconds=30.0)
    # A preset with no margin: the master sits right at the ceiling, so lossy codecs overshoot.
    preset = replace(PRESETS["podcast"], limiter_margin_db=0.0)
    result = master(path, reading, preset, folder / "master.wav")
    return folder, path, reading, preset, result


@pytest.mark.parametrize("fmt, rate", [("flac", 24000), ("mp3", 44100), ("opus", 48000)])
def test_every_format_is_verified_on_the_decoded_file(mastered, fmt, rate):
    folder, stitched_path, stitched_reading, preset, result = mastered
    calls = []

    def remaster(gain_offset_db, ceiling_dbtp):
        calls.append((gain_offset_db, ceiling_dbtp))
        path = folder / f"re-{fmt}-{len(calls)}.wav"
        master(stitched_path, stitched_reading, preset, path, ceiling_dbtp=ceiling_dbtp, gain_offset_db=gain_offset_db)
        return path

    encoded = deliver(result.path, result.reading, fmt, folder / f"ep.{fmt}", preset, result.ceiling_dbtp, remaster)
    again = measure_file(folder / f"ep.{fmt}", rate, 1)
    assert again.true_peak_dbtp <= preset.ceiling_dbtp
    assert abs(again.integrated_lufs - preset.target_lufs) <= preset.tolerance_lu
    assert abs(again.integrated_lufs - encoded.reading.integrated_lufs) < 1e-6
    assert encoded.attempts == len(calls) + 1
    if fmt == "flac":
        assert encoded.attempts == 1 and abs(again.integrated_lufs - result.reading.integrated_lufs) < 0.01


def test_opus_overshoot_is_corrected(mastered):
    """A master limited above the spec's ceiling gives an out-of-spec Opus file; castline fixes it."""
    folder, stitched_path, stitched_reading, preset, _ = mastered
    result = master(stitched_path, stitched_reading, preset, folder / "hot.wav", ceiling_dbtp=-0.3)
    first = measure_file(_encode_once(result.path, folder), 48000, 1)
    assert first.true_peak_dbtp > preset.ceiling_dbtp  # the problem is real

    def remaster(gain_offset_db, ceiling_dbtp):
        path = folder / "re-opus.wav"
        master(stitched_path, stitched_reading, preset, path, ceiling_dbtp=ceiling_dbtp, gain_offset_db=gain_offset_db)
        return path

    encoded = deliver(result.path, result.reading, "opus", folder / "fixed.opus", preset, result.ceiling_dbtp,
                      remaster)
    assert encoded.attempts >= 2 and encoded.corrections
    assert encoded.reading.true_peak_dbtp <= preset.ceiling_dbtp


def _encode_once(master_path, folder):
    from castline.audio.encode import encode_file

    target = folder / "once.opus"
    encode_file(master_path, "opus", target)
    return target
