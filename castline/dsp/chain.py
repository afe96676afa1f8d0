"""Processing chains as data: small frozen step records that the DSP reads its parameters from,
and that describe themselves for the manifest (``to_manifest``).

The stitch chain (per chunk: DC high-pass, silence trim, fades, speaker gain; then the join) and
the master chain (programme gain, true-peak limiter, quantisation) are built first, then run;
the manifest records exactly the records that ran, so changing a parameter changes both the
audio and what the manifest says about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping

import numpy as np

from castline.dsp.edges import apply_fades, remove_dc, speech_bounds
from castline.dsp.limiter import TruePeakLimiter
from castline.dsp.truepeak import oversampling_for


@dataclass(frozen=True)
class DcHighpass:
    """Mean removal and a Butterworth high-pass of ``order`` at ``cutoff_hz``; one causal pass
    unless ``zero_phase`` (forward and backward)."""

    cutoff_hz: float = 40.0
    order: int = 2
    zero_phase: bool = False
    step: ClassVar[str] = "dc_highpass"

    def apply(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        return remove_dc(audio, sample_rate, self.cutoff_hz, order=self.order, zero_phase=self.zero_phase)

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "cutoff_hz": self.cutoff_hz, "order": self.order, "zero_phase": self.zero_phase}


@dataclass(frozen=True)
class TrimSilence:
    """Cut leading and trailing audio quieter than ``threshold_dbfs``, keeping ``keep_ms`` of it."""

    threshold_dbfs: float = -45.0
    keep_ms: float = 40.0
    step: ClassVar[str] = "trim_silence"

    def bounds(self, audio: np.ndarray, sample_rate: int) -> tuple[int, int]:
        """``(start, end)`` of what to keep (``castline.dsp.edges.speech_bounds``)."""
        return speech_bounds(audio, sample_rate, self.threshold_dbfs, keep_ms=self.keep_ms)

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "threshold_dbfs": self.threshold_dbfs, "keep_ms": self.keep_ms}


@dataclass(frozen=True)
class Fades:
    """Raised-cosine fades of ``fade_ms`` at a chunk's free ends (none where it joins a neighbour)."""

    fade_ms: float = 5.0
    shape: str = "raised-cosine"
    step: ClassVar[str] = "fades"

    def __post_init__(self) -> None:
        if self.shape != "raised-cosine":
            raise ValueError(f"fade shape '{self.shape}' is not supported (raised-cosine)")

    def apply(self, audio: np.ndarray, fade_in_samples: int, fade_out_samples: int) -> np.ndarray:
        return apply_fades(audio, fade_in_samples, fade_out_samples)

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "shape": self.shape, "fade_ms": self.fade_ms}


@dataclass(frozen=True)
class SpeakerGain:
    """One gain per speaker (dB), ``gains_db`` as sorted ``(speaker, dB)`` pairs."""

    gains_db: tuple[tuple[str, float], ...] = ()
    step: ClassVar[str] = "speaker_gain"

    def gain_db(self, speaker: str) -> float:
        return dict(self.gains_db).get(speaker, 0.0)

    def apply(self, audio: np.ndarray, speaker: str) -> np.ndarray:
        gain = np.float32(10 ** (self.gain_db(speaker) / 20))
        if audio.dtype == np.float32:
            return np.multiply(audio, gain)
        return (audio * gain).astype(np.float32)

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "gains_db": dict(sorted(self.gains_db))}


JOIN_PAUSES = ("lead_in", "sentence", "same_speaker_turn", "speaker_change", "scene", "tail")
"""The join's pause names, in the manifest's order."""


@dataclass(frozen=True)
class Join:
    """How conditioned chunks are joined: silence of ``pauses_ms[name]`` by boundary, and an
    equal-power crossfade of ``crossfade_ms`` where one sentence was split across chunks."""

    crossfade_ms: float = 10.0
    pauses_ms: tuple[tuple[str, int], ...] = field(default=())
    step: ClassVar[str] = "join"

    def __post_init__(self) -> None:
        if sorted(name for name, _ in self.pauses_ms) != sorted(JOIN_PAUSES):
            raise ValueError(f"join pauses must name exactly {', '.join(JOIN_PAUSES)}")

    def pause_ms(self, name: str) -> int:
        return dict(self.pauses_ms)[name]

    def to_manifest(self) -> dict[str, object]:
        pauses = dict(self.pauses_ms)
        return {"step": self.step, "crossfade_ms_inside_split_sentences": self.crossfade_ms,
                "pauses_ms": {name: pauses[name] for name in JOIN_PAUSES}}


@dataclass(frozen=True)
class StitchChain:
    """The stitch chain in the order it runs on each chunk, then the join."""

    highpass: DcHighpass
    trim: TrimSilence
    fades: Fades
    speaker_gain: SpeakerGain
    join: Join

    @property
    def steps(self) -> tuple:
        return (self.highpass, self.trim, self.fades, self.speaker_gain, self.join)

    def to_manifest(self) -> tuple[dict[str, object], ...]:
        return tuple(step.to_manifest() for step in self.steps)


@dataclass(frozen=True)
class ProgrammeGain:
    """One gain (dB) for the whole programme; the manifest rounds it to 4 decimals."""

    gain_db: float
    step: ClassVar[str] = "programme_gain"

    @property
    def factor(self) -> np.float32:
        return np.float32(10 ** (self.gain_db / 20))

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "gain_db": round(self.gain_db, 4)}


@dataclass(frozen=True)
class TruePeakLimit:
    """The lookahead true-peak limiter (``castline.dsp.limiter``) and its parameters;
    ``oversampling`` is the true-peak interpolation factor, fixed by the sample rate."""

    ceiling_dbtp: float
    lookahead_ms: float = 5.0
    release_ms: float = 80.0
    oversampling: int = 4
    step: ClassVar[str] = "true_peak_limiter"

    @classmethod
    def at(cls, sample_rate: int, ceiling_dbtp: float, **settings: float) -> "TruePeakLimit":
        """The limiter step for ``sample_rate`` (its oversampling factor set from the rate)."""
        return cls(ceiling_dbtp=ceiling_dbtp, oversampling=oversampling_for(sample_rate), **settings)

    def limiter(self, sample_rate: int, channels: int) -> TruePeakLimiter:
        if self.oversampling != oversampling_for(sample_rate):
            raise ValueError(f"the limiter oversamples {oversampling_for(sample_rate)}x at {sample_rate} Hz, "
                             f"not {self.oversampling}x")
        return TruePeakLimiter(sample_rate, channels, ceiling_dbtp=self.ceiling_dbtp,
                               lookahead_ms=self.lookahead_ms, release_ms=self.release_ms)

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "ceiling_dbtp": self.ceiling_dbtp, "lookahead_ms": self.lookahead_ms,
                "release_ms": self.release_ms, "oversampling": self.oversampling}


_PCM_SUBTYPES: Mapping[int, str] = {16: "PCM_16", 24: "PCM_24"}


@dataclass(frozen=True)
class Quantise:
    """Rounding to the ``bits``-bit grid of the WAV file written (the meter reads the rounded samples)."""

    bits: int = 24
    step: ClassVar[str] = "quantise"

    def __post_init__(self) -> None:
        if self.bits not in _PCM_SUBTYPES:
            raise ValueError(f"quantise to {self.bits} bits is not supported ({', '.join(map(str, _PCM_SUBTYPES))})")

    @property
    def subtype(self) -> str:
        """The soundfile subtype that holds exactly this grid."""
        return _PCM_SUBTYPES[self.bits]

    def apply(self, samples: np.ndarray) -> np.ndarray:
        return self.quantised(samples)[0]

    def quantised(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(values, codes)``: the samples rounded to the grid (float32), and the same as int32
        codes scaled to full 32-bit range, as libsndfile takes integers (they write the identical
        file, several times faster than having libsndfile convert the floats)."""
        scale = float(2 ** (self.bits - 1))
        steps = np.round(np.clip(samples, -1.0, 1.0 - 1 / scale) * scale)
        codes = steps.astype(np.int32)
        np.left_shift(codes, 32 - self.bits, out=codes)
        return (steps / scale).astype(np.float32, copy=False), codes

    def to_manifest(self) -> dict[str, object]:
        return {"step": self.step, "format": f"WAV PCM {self.bits}-bit"}


@dataclass(frozen=True)
class MasterChain:
    """The master chain in the order it runs."""

    gain: ProgrammeGain
    limit: TruePeakLimit
    quantise: Quantise = Quantise()

    @property
    def steps(self) -> tuple:
        return (self.gain, self.limit, self.quantise)

    def to_manifest(self) -> tuple[dict[str, object], ...]:
        return tuple(step.to_manifest() for step in self.steps)
