from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from castline.core.timebase import ms_to_samples, samples_to_ms, samples_to_seconds, seconds_to_samples

RATES = [8000, 16000, 22050, 24000, 44100, 48000, 96000]


@pytest.mark.parametrize("rate", RATES)
def test_whole_seconds_are_exact(rate):
    assert seconds_to_samples(3, rate) == 3 * rate
    assert samples_to_seconds(3 * rate, rate) == 3.0


@pytest.mark.parametrize("rate", RATES)
@given(samples=st.integers(min_value=0, max_value=10**10))
def test_samples_round_trip_through_seconds(rate, samples):
    assert seconds_to_samples(samples_to_seconds(samples, rate), rate) == samples


@pytest.mark.parametrize("rate", RATES)
@given(ms=st.integers(min_value=0, max_value=10**8))
def test_ms_to_samples_matches_exact_fraction(rate, ms):
    exact = Fraction(ms * rate, 1000)
    assert abs(ms_to_samples(ms, rate) - exact) <= Fraction(1, 2)


def test_half_samples_round_away_from_zero():
    assert seconds_to_samples(Fraction(1, 2), 1) == 1
    assert seconds_to_samples(Fraction(-1, 2), 1) == -1
    assert seconds_to_samples(Fraction(3, 2), 1) == 2
    # 0.1 s at 22050 Hz is 2205 samples exactly, despite 0.1 not being exact in binary.
    assert seconds_to_samples(0.1, 22050) == 2205


def test_samples_to_ms_for_subtitles():
    assert samples_to_ms(24000, 24000) == 1000
    assert samples_to_ms(12, 24000) == 1  # 0.5 ms rounds up
    assert samples_to_ms(11, 24000) == 0


def test_bad_rate_raises():
    with pytest.raises(ValueError):
        seconds_to_samples(1, 0)
