"""Dubbing settings: frozen, validated once where they enter (CLI or flow parameters)."""

from __future__ import annotations

from dataclasses import dataclass, field

from castline.engines.base import EngineOptions
from castline.render.options import SUPPORTED_FORMATS
from castline.dsp.presets import PRESETS

OVERRUN_POLICIES = ("allow-overlap", "truncate", "fail")
QA_MODES = ("off", "warn", "strict")
DEFAULT_SAMPLE_RATE = 48_000
"""The mix's rate when there is no background (otherwise the background's rate)."""


@dataclass(frozen=True)
class FitSettings:
    """The fit ladder, per cue: rate control up to ``max_rate``×, then a pitch-preserving stretch
    up to ``max_stretch``×, then silence borrowed from the gap before the next cue (keeping
    ``min_gap_ms`` of it, and at most ``max_borrow_ms``), then ``policy`` for what still overruns.
    ``stretcher``: "auto" (rubberband when ffmpeg has it, else atempo), "rubberband" or "atempo".
    """

    max_rate: float = 1.3
    max_stretch: float = 1.25
    min_gap_ms: int = 80
    max_borrow_ms: int = 2000
    policy: str = "allow-overlap"
    stretcher: str = "auto"
    margin: float = 0.02
    """Requested speed-ups aim this much past the slot, since engines do not hit a rate exactly."""

    def __post_init__(self) -> None:
        if not 1.0 <= self.max_rate <= 2.0:
            raise ValueError(f"--max-rate: must be 1.0..2.0, got {self.max_rate}")
        if not 1.0 <= self.max_stretch <= 2.0:
            raise ValueError(f"--max-stretch: must be 1.0..2.0, got {self.max_stretch}")
        if not 0 <= self.min_gap_ms <= 5000:
            raise ValueError(f"--min-gap-ms: must be 0..5000, got {self.min_gap_ms}")
        if not 0 <= self.max_borrow_ms <= 60_000:
            raise ValueError(f"--max-borrow-ms: must be 0..60000, got {self.max_borrow_ms}")
        if self.policy not in OVERRUN_POLICIES:
            raise ValueError(f"--overrun: unknown policy '{self.policy}' (known: {', '.join(OVERRUN_POLICIES)})")
        if self.stretcher not in ("auto", "rubberband", "atempo"):
            raise ValueError(f"--stretcher: '{self.stretcher}' is not auto, rubberband or atempo")
        if not 0.0 <= self.margin <= 0.2:
            raise ValueError(f"margin must be 0..0.2, got {self.margin}")


@dataclass(frozen=True)
class DuckSettings:
    """Background gain under speech: down by ``depth_db`` while a cue speaks, reached over
    ``attack_ms`` before the speech onset (the timeline is known, so the duck leads the voice),
    held ``hold_ms`` after the speech ends, back up over ``release_ms``. Raised-cosine ramps in dB."""

    depth_db: float = 12.0
    attack_ms: float = 120.0
    release_ms: float = 350.0
    hold_ms: float = 80.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.depth_db <= 60.0:
            raise ValueError(f"--duck-depth-db: must be 0..60, got {self.depth_db}")
        for name in ("attack_ms", "release_ms", "hold_ms"):
            value = getattr(self, name)
            if not 0.0 <= value <= 5000.0:
                raise ValueError(f"--{name.replace('_', '-')}: must be 0..5000, got {value}")


@dataclass(frozen=True)
class DubOptions:
    """One dubbing job: cue files (with their language, or ``None`` to infer it), the background
    stem, per-language cast file, store, preset and formats; dialogue level before mastering
    (``dialogue_lufs``, or the loudness of ``match_dialogue``, the source programme's dialogue stem)."""

    cues: tuple[str, ...]
    languages: tuple[str, ...] = ()
    background: str | None = None
    cast: str | None = None
    out: str = "output"
    programme: str | None = None
    preset: str = "ebu-r128"
    formats: tuple[str, ...] = ("wav",)
    fit: FitSettings = FitSettings()
    duck: DuckSettings = DuckSettings()
    dialogue_lufs: float = -23.0
    match_dialogue: str | None = None
    voices_dir: str | None = None
    seed: int = 0
    engine_options: EngineOptions = field(default_factory=EngineOptions)
    video: str | None = None
    """The programme's video (any container ffmpeg reads): the dub is muxed back into it
    (``castline.dub.video``). Without ``background`` its own audio is the bed, dialogue ducked
    (voice-over); ``background="none"`` gives dialogue only."""
    keep_original_audio: bool = False
    containers: tuple[str, ...] = ("mkv",)
    video_audio_codec: str = "aac"
    qa: str = "off"
    """Hear every take (``castline.dub.takes_qa``): "off", "warn" (report, deliver) or "strict"
    (publish nothing while a take still fails)."""

    @property
    def background_none(self) -> bool:
        return self.background is not None and self.background.lower() == "none"

    def __post_init__(self) -> None:
        if self.qa not in QA_MODES:
            raise ValueError(f"--qa: '{self.qa}' is not one of {', '.join(QA_MODES)}")
        if self.video is None and (self.keep_original_audio or self.containers != ("mkv",)):
            raise ValueError("--keep-original-audio and --mp4 need --video")
        if not self.containers or any(container not in ("mkv", "mp4") for container in self.containers):
            raise ValueError(f"containers must be mkv and/or mp4, got {', '.join(self.containers) or 'none'}")
        if self.video_audio_codec not in ("aac", "opus"):
            raise ValueError(f"--audio-codec: '{self.video_audio_codec}' is not aac or opus")
        if not self.cues:
            raise ValueError("--cues: at least one cue file is required")
        if len(set(self.cues)) != len(self.cues):
            raise ValueError("--cues: a cue file is listed twice")
        if self.languages and len(self.languages) != len(self.cues):
            raise ValueError(f"--lang: give one language per --cues file ({len(self.cues)} cue files, "
                             f"{len(self.languages)} languages), or none to read them from the file names")
        if self.preset not in PRESETS:
            raise ValueError(f"--preset: unknown preset '{self.preset}' (known: {', '.join(PRESETS)})")
        unknown = [fmt for fmt in self.formats if fmt not in SUPPORTED_FORMATS]
        if not self.formats or unknown:
            raise ValueError(f"--format: unknown or missing format(s) {', '.join(unknown)} "
                             f"(supported: {', '.join(SUPPORTED_FORMATS)})")
        if "wav" not in self.formats:
            raise ValueError("--format: wav is always delivered (mix.wav); add others after it, e.g. wav,mp3")
        if not -60.0 <= self.dialogue_lufs <= 0.0:
            raise ValueError(f"--dialogue-lufs: must be -60..0, got {self.dialogue_lufs}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"--seed: must be between 0 and 2147483647, got {self.seed}")
