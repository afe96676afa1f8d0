"""Signal checks: each passes on clean real renders and fires on a crafted bad case."""

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.qa.signal_checks import (Finding, chunk_checks, clipping_check, count_words, frame_levels_db,
                                       active_frames, long_silence_check, loudness_spread, non_speech_energy_check,
                                       seam_findings, silence_check, speech_rate_check)
from tts_renders import render_sentences

RATE = PROJECT_SAMPLE_RATE
TEXTS = (
    "The harbour lights came on one by one as the fog rolled in. Nobody expected the quarterly numbers "
    "to look quite this strong. She packed three notebooks, a torch, and far too many pencils.",
    "Bees communicate the direction of flowers with a little dance. The museum reopened after two years "
    "of careful restoration. I have never seen a crowd that quiet during a final.",
)
SENTENCES = (
    "If you listen closely, you can hear the train before you see it.",
    "Our next guest spent a decade mapping caves under the desert.",
    "The recipe calls for butter, but olive oil works just as well.",
    "Honestly, I think the second half of the season was better.",
    "A small change in temperature can shift the whole ecosystem.",
    "We recorded this episode in a cabin with no running water.",
)


_render = render_sentences


@pytest.fixture(scope="module")
def clean(voices_dir):
    """``(text, audio)``: a three-sentence chunk from each voice."""
    heart = _render("hibari", "heart", TEXTS[:1], voices_dir)
    joe = _render("piper", "joe", TEXTS[1:], voices_dir)
    return [(TEXTS[0], heart[0]), (TEXTS[1], joe[0])]


@pytest.fixture(scope="module")
def sentences(voices_dir):
    return _render("hibari", "heart", SENTENCES, voices_dir)


def _speech_rms(audio):
    levels = frame_levels_db(audio, RATE)
    return float(np.sqrt(np.mean(10 ** (levels[active_frames(levels)] / 10))))


def _chord_bed(samples, level):
    """Sustained major triads (four harmonics per note), a new chord every 2 s, at RMS ``level``."""
    time = np.arange(samples) / RATE
    bed = np.zeros_like(time)
    for start, root in zip(np.arange(0, samples / RATE, 2.0), [130.81, 174.61, 196.0, 146.83] * 8):
        held = (time >= start) & (time < start + 2.0)
        for note in (root, root * 2 ** (4 / 12), root * 2 ** (7 / 12)):
            for harmonic in range(1, 5):
                bed[held] += np.sin(2 * np.pi * note * harmonic * time[held]) / harmonic
    return (bed / np.sqrt(np.mean(bed ** 2)) * level).astype(np.float32)


def _pink_noise(samples, level, seed=0):
    spectrum = np.fft.rfft(np.random.default_rng(seed).standard_normal(samples))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1))
    noise = np.fft.irfft(spectrum, samples)
    return (noise / np.sqrt(np.mean(noise ** 2)) * level).astype(np.float32)


def test_clean_renders_pass_every_check(clean):
    for text, audio in clean:
        findings = chunk_checks(audio, RATE, text)
        assert {f.check for f in findings} == {"silence", "clipping", "long-silence", "non-speech-energy",
                                                "speech-rate"}
        assert [f for f in findings if f.flag] == []
        assert all(isinstance(f, Finding) and f.detail for f in findings)


def test_words_are_counted_like_a_reader_would():
    assert count_words("Don't stop — it's 2024, and we're 3 hosts.") == 8


def test_time_compressed_speech_is_too_fast(clean):
    text, audio = clean[0]
    normal = speech_rate_check(audio, RATE, text)
    doubled = speech_rate_check(resample(audio, 2 * RATE, RATE), RATE, text)  # played at twice the speed
    assert normal.flag is None
    assert doubled.flag == "too-fast" and doubled.value > 1.8 * normal.value
    stretched = speech_rate_check(resample(audio, RATE * 9 // 20, RATE), RATE, text)
    assert stretched.flag == "too-slow"


def test_speech_rate_band_is_per_voice(clean):
    text, audio = clean[1]
    measured = speech_rate_check(audio, RATE, text).value
    assert speech_rate_check(audio, RATE, text, (measured * 1.2, 400.0)).flag == "too-slow"


def test_inserted_silence_is_found(clean):
    _, audio = clean[0]
    middle = audio.size // 2
    padded = np.concatenate([audio[:middle], np.zeros(2 * RATE, np.float32), audio[middle:]])
    assert long_silence_check(audio, RATE).flag is None
    finding = long_silence_check(padded, RATE)
    assert finding.flag == "long-silence" and 2000 <= finding.value < 2700


def test_music_bed_under_speech_is_music(clean):
    for _, audio in clean:
        bed = _chord_bed(audio.size, _speech_rms(audio) * 10 ** (-15 / 20))
        assert non_speech_energy_check(audio, RATE).flag is None
        assert non_speech_energy_check(audio + bed, RATE).flag == "music"


def test_music_instead_of_speech_is_music():
    assert non_speech_energy_check(_chord_bed(6 * RATE, 0.05), RATE).flag == "music"


def test_noise_under_speech_is_noise(clean):
    for _, audio in clean:
        noise = _pink_noise(audio.size, _speech_rms(audio) * 10 ** (-20 / 20))
        finding = non_speech_energy_check(audio + noise, RATE)
        assert finding.flag == "noise" and finding.value < finding.threshold


def test_the_tonal_cue_is_measured_only_where_pauses_are_loud(clean):
    _, audio = clean[0]
    assert "tonal persistence" not in non_speech_energy_check(audio, RATE).detail
    noise = _pink_noise(audio.size, _speech_rms(audio) * 10 ** (-20 / 20))
    assert "tonal persistence" in non_speech_energy_check(audio + noise, RATE).detail


def test_the_held_note_spectrogram_is_scipys_stft(clean):
    from scipy.signal import stft

    from castline.qa.signal_checks import _power_spectrogram

    _, audio = clean[1]
    freqs, power = _power_spectrogram(audio, RATE, 4096, 1024)
    expected_freqs, _, spectrum = stft(audio.astype(np.float64), RATE, nperseg=4096, noverlap=3072,
                                       boundary=None, padded=False)
    assert power.shape == spectrum.shape
    np.testing.assert_array_equal(freqs, expected_freqs)
    np.testing.assert_allclose(power, np.abs(spectrum) ** 2, rtol=1e-9, atol=1e-20)


def test_silent_chunk_is_silent(clean):
    quiet = _pink_noise(5 * RATE, 10 ** (-75 / 20))
    quiet[RATE:RATE + RATE // 20] += 0.1  # one 50 ms blip is not speech
    assert silence_check(quiet, RATE).flag == "silent"
    assert [f.check for f in chunk_checks(quiet, RATE, TEXTS[0])] == ["silence"]
    assert silence_check(clean[0][1], RATE).flag is None


def test_clipping_is_found_also_after_a_gain_change(clean):
    _, audio = clean[0]
    assert clipping_check(audio, RATE).flag is None
    driven = np.clip(audio * 10.0, -1.0, 1.0)
    assert clipping_check(driven, RATE).flag == "clipped"
    assert clipping_check(driven * 0.5, RATE).flag == "clipped"  # flat tops at −6 dBFS


def test_seam_click_is_found(sentences):
    first, second = sentences[0], sentences[1]
    joined = np.concatenate([first, second])
    join = first.size
    clicked = joined.copy()
    clicked[join:join + 12] += np.float32(0.05)  # half a millisecond of offset: a butt join's click
    levels = frame_levels_db(first, RATE)
    inside_speech = int(np.argmax(levels)) * RATE // 100 + 120  # mid-vowel: a join that does not click
    [ok, natural] = seam_findings(joined, [join, inside_speech], RATE)
    [bad] = seam_findings(clicked, [join], RATE)
    assert ok.flag is None and natural.flag is None and np.isfinite(natural.value)
    assert bad.flag == "click" and bad.value > bad.threshold


def test_loudness_spread_flags_an_uneven_speaker(sentences):
    gains_db = [0, -9, 6, -7, 5, -8]
    report = loudness_spread({"steady": sentences,
                              "uneven": [s * np.float32(10 ** (g / 20)) for s, g in zip(sentences, gains_db)]},
                             RATE)
    steady, uneven = report
    assert steady.finding.flag is None and steady.spread_lu < 2.5
    assert uneven.finding.flag == "loudness-spread" and uneven.spread_lu > 10
    assert all(np.isfinite(r.integrated_lufs) for r in report)
