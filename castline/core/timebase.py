"""Time is integer samples; seconds and milliseconds are derived here and only here."""

from __future__ import annotations

from fractions import Fraction


def seconds_to_samples(seconds: float | Fraction, sample_rate: int) -> int:
    """Whole samples for a duration in seconds, rounding half away from zero.

    The float is converted exactly (``Fraction(float)``) so the result never depends on
    the order of floating-point operations.
    """
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    exact = Fraction(seconds) * sample_rate
    return _round_half_away(exact)


def ms_to_samples(ms: float | int, sample_rate: int) -> int:
    """Whole samples for a duration in milliseconds (same rounding as ``seconds_to_samples``)."""
    return seconds_to_samples(Fraction(ms) / 1000, sample_rate)


def samples_to_seconds(samples: int, sample_rate: int) -> float:
    """Seconds for a whole number of samples."""
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    return samples / sample_rate


def samples_to_ms(samples: int, sample_rate: int) -> int:
    """Whole milliseconds for a sample count (half away from zero); for display and subtitles."""
    return _round_half_away(Fraction(samples * 1000, sample_rate))


def _round_half_away(value: Fraction) -> int:
    floor = value.numerator // value.denominator
    remainder = value - floor
    if remainder > Fraction(1, 2) or (remainder == Fraction(1, 2) and value > 0):
        return floor + 1
    return floor
