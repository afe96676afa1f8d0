"""Delivery presets: loudness and peak targets an episode is mastered to and checked against."""

from __future__ import annotations

from dataclasses import asdict, dataclass

MONO_CONVENTION = "dual-mono"
"""A mono file is measured as if played on two channels (+3.01 dB vs one channel), in every meter
and preset: −16 LUFS here equals −19 LUFS measured as a single channel."""


@dataclass(frozen=True)
class Preset:
    """Targets for one delivery spec.

    Exactly one of ``target_lufs`` (BS.1770 integrated loudness) or ``target_rms_dbfs``
    (unweighted RMS, for ACX) drives the programme gain. ``ceiling_dbtp`` is the limiter's
    ceiling; with ``peak_measure="sample"`` the spec checks sample peak (dBFS) instead of true
    peak, and true peak ≥ sample peak, so limiting to the same figure in dBTP is safe.
    """

    name: str
    description: str
    ceiling_dbtp: float
    target_lufs: float | None = None
    target_rms_dbfs: float | None = None
    rms_window_dbfs: tuple[float, float] | None = None
    tolerance_lu: float = 0.5
    peak_measure: str = "true"
    noise_floor_max_dbfs: float | None = None
    limiter_margin_db: float = 0.3

    @property
    def limiter_ceiling_dbtp(self) -> float:
        """The limiter aims a little under the spec so lossy encodings have headroom."""
        return self.ceiling_dbtp - self.limiter_margin_db

    def to_manifest(self) -> dict[str, object]:
        data = asdict(self)
        data["mono_convention"] = MONO_CONVENTION
        return data


PRESETS: dict[str, Preset] = {
    "podcast": Preset(name="podcast", description="Apple Podcasts / general podcast: -16 LUFS, -1 dBTP",
                      target_lufs=-16.0, ceiling_dbtp=-1.0, tolerance_lu=1.0),
    "ebu-r128": Preset(name="ebu-r128", description="EBU R 128 broadcast: -23 LUFS, -1 dBTP",
                       target_lufs=-23.0, ceiling_dbtp=-1.0, tolerance_lu=0.5),
    "atsc-a85": Preset(name="atsc-a85", description="ATSC A/85 US television: -24 LKFS, -2 dBTP",
                       target_lufs=-24.0, ceiling_dbtp=-2.0, tolerance_lu=0.5),
    "acx": Preset(name="acx", description="ACX/Audible audiobooks: RMS -23..-18 dB, -3 dB peak, noise floor <= -60 dB",
                  target_rms_dbfs=-20.0, rms_window_dbfs=(-23.0, -18.0), ceiling_dbtp=-3.0,
                  peak_measure="sample", noise_floor_max_dbfs=-60.0, limiter_margin_db=1.0, tolerance_lu=1.0),
}

