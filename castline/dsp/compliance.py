"""Does a measured file meet its delivery preset? Every problem as one readable line."""

from __future__ import annotations

import math

from castline.dsp.loudness import LoudnessReading
from castline.dsp.presets import Preset

PEAK_TOLERANCE_DB = 0.0


def compliance_problems(reading: LoudnessReading, preset: Preset) -> list[str]:
    """Empty when ``reading`` is inside ``preset``; otherwise what is off and by how much."""
    problems = []
    if preset.target_lufs is not None:
        error = reading.integrated_lufs - preset.target_lufs
        if not math.isfinite(error) or abs(error) > preset.tolerance_lu:
            problems.append(f"integrated {reading.integrated_lufs:.2f} LUFS, target {preset.target_lufs:.1f} "
                            f"±{preset.tolerance_lu} LU")
    if preset.rms_window_dbfs is not None:
        low, high = preset.rms_window_dbfs
        if not low <= reading.rms_dbfs <= high:
            problems.append(f"RMS {reading.rms_dbfs:.2f} dBFS outside {low}..{high} dBFS")
    peak = reading.sample_peak_dbfs if preset.peak_measure == "sample" else reading.true_peak_dbtp
    unit = "dBFS sample peak" if preset.peak_measure == "sample" else "dBTP"
    if peak is not None and peak > preset.ceiling_dbtp + PEAK_TOLERANCE_DB:
        problems.append(f"peak {peak:.2f} {unit} above {preset.ceiling_dbtp:.1f}")
    return problems


def loudness_error_db(reading: LoudnessReading, preset: Preset) -> float:
    """Target minus measured (dB): the gain that would fix the level."""
    if preset.target_lufs is not None:
        return preset.target_lufs - reading.integrated_lufs
    return float(preset.target_rms_dbfs) - reading.rms_dbfs


def peak_excess_db(reading: LoudnessReading, preset: Preset) -> float:
    """How far the relevant peak is above the ceiling (dB; ≤ 0 when fine)."""
    peak = reading.sample_peak_dbfs if preset.peak_measure == "sample" else reading.true_peak_dbtp
    return (peak if peak is not None else -math.inf) - preset.ceiling_dbtp


def noise_floor_problem(noise_floor_dbfs: float, preset: Preset) -> str | None:
    """For presets with a noise-floor limit (ACX): what is wrong, or None."""
    limit = preset.noise_floor_max_dbfs
    if limit is None or math.isnan(noise_floor_dbfs) or noise_floor_dbfs <= limit:
        return None
    return f"noise floor {noise_floor_dbfs:.1f} dBFS above {limit:.0f} dBFS"
