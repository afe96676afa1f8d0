"""Render options: validated once where they enter (CLI or flow parameters)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from castline.engines.base import EngineOptions
from castline.dsp.presets import PRESETS
from castline.qa.settings import QASettings

SUPPORTED_FORMATS = ("wav", "flac", "mp3", "opus", "m4a", "m4b")
RUNNERS = ("threads", "dask")
"""Where chunk synthesis runs: threads in this process, or a Dask cluster (``--runner dask``)."""
PAUSE_NAMES = ("lead_in", "sentence", "same_speaker_turn", "speaker_change", "scene", "tail")


@dataclass(frozen=True)
class RenderOptions:
    """Everything a render depends on besides the script and voice files.

    ``workers``: parallel synthesis workers (threads; with ``runner="dask"`` and no address, the
    size of the local Dask cluster); ``seed``: base seed for every chunk. ``runner`` and
    ``dask_address`` decide where synthesis runs, never what it produces.
    """

    script: str
    out: str = "output"
    preset: str | None = None
    formats: tuple[str, ...] = ("wav",)
    cast: tuple[tuple[str, str], ...] = ()
    engine: str | None = None
    workers: int = field(default_factory=lambda: max(1, min(os.cpu_count() or 1, 4)))
    seed: int = 0
    voices_dir: str | None = None
    pauses_ms: tuple[tuple[str, int], ...] = ()
    force: bool = False
    engine_options: EngineOptions = EngineOptions()
    window_words: int = 120
    window_batch: int = 4
    """Windowed engines: at most this many windows per model call (``--window-batch``). It sets speed and
    GPU memory, not what is said: each window keeps its own seed, so it is not part of any cache key."""
    exact_timings: bool = False
    qa: QASettings = QASettings()
    runner: str = "threads"
    dask_address: str | None = None
    meta: tuple[str, ...] = ()
    package: str | None = None
    """``--package audiobook``: also an M4B and ACX chapter files (``castline.delivery.audiobook``)."""
    """``--meta KEY=VALUE`` episode metadata, over the script's (see ``castline.delivery.metadata``)."""
    lexicons: tuple[str, ...] = ()
    """``--lexicon`` files, first = highest precedence (see ``castline.render.plan.lexicon_files``)."""
    show_lexicons: tuple[str, ...] = ()
    """The show file's ``lexicons:`` (lowest precedence)."""
    normalise: bool = False
    """Spell out numbers, dates, money, units and abbreviations before synthesis (``--normalise``)."""
    narrator: str | None = None
    """Manuscripts (.md, .epub): the narrator's speaker name (default ``narrator``)."""
    dialogue_pattern: str | None = None
    """Manuscripts: a regular expression with ``speaker`` and ``text`` groups for dialogue lines."""
    front_matter: bool = False
    """EPUB: read the cover, title and copyright pages too."""

    def __post_init__(self) -> None:
        if self.runner not in RUNNERS:
            raise ValueError(f"--runner: unknown runner '{self.runner}' (known: {', '.join(RUNNERS)})")
        if self.dask_address is not None:
            if self.runner != "dask":
                raise ValueError("--dask-address needs --runner dask")
            if not re.fullmatch(r"(tcp|tls|inproc|ucx)://[^\s/:]+(:\d{1,5})?", self.dask_address):
                raise ValueError(f"--dask-address: '{self.dask_address}' is not like tcp://HOST:PORT")
        if not self.formats:
            raise ValueError("--format: at least one format is required")
        if self.package not in (None, "audiobook"):
            raise ValueError(f"--package: unknown package '{self.package}' (known: audiobook)")
        for item in self.meta:
            if "=" not in item or not item.partition("=")[0].strip():
                raise ValueError(f"--meta: '{item}' is not KEY=VALUE (e.g. title=Episode 3)")
        unknown = [fmt for fmt in self.formats if fmt not in SUPPORTED_FORMATS]
        if unknown:
            raise ValueError(f"--format: unknown format(s) {', '.join(unknown)} "
                             f"(supported: {', '.join(SUPPORTED_FORMATS)})")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError("--format: a format is listed twice")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"--preset: unknown preset '{self.preset}' (known: {', '.join(PRESETS)})")
        if not 1 <= self.workers <= 64:
            raise ValueError(f"--workers: must be between 1 and 64, got {self.workers}")
        for name, value in self.pauses_ms:
            if name not in PAUSE_NAMES:
                raise ValueError(f"--pause: unknown pause '{name}' (known: {', '.join(PAUSE_NAMES)})")
            if not 0 <= value <= 60_000:
                raise ValueError(f"--pause: {name} must be 0..60000 ms, got {value}")
        options = self.engine_options
        if options.device != "auto" and not (options.device == "cpu" or options.device.startswith("cuda")):
            raise ValueError(f"--device: '{options.device}' is not auto, cpu, cuda or cuda:N")
        if options.dtype not in ("auto", "float32", "bfloat16", "float16"):
            raise ValueError(f"--dtype: '{options.dtype}' is not auto, float32, bfloat16 or float16")
        if not 1 <= options.diffusion_steps <= 1000:
            raise ValueError(f"--diffusion-steps: must be 1..1000, got {options.diffusion_steps}")
        if not 0.0 < options.guidance_scale <= 20.0:
            raise ValueError(f"--guidance-scale: must be in (0, 20], got {options.guidance_scale}")
        if not 10 <= self.window_words <= 2000:
            raise ValueError(f"--window-words: must be 10..2000, got {self.window_words}")
        if not 1 <= self.window_batch <= 64:
            raise ValueError(f"--window-batch: must be 1..64, got {self.window_batch}")
        if not 0 <= self.seed < 2**31:
            raise ValueError(f"--seed: must be between 0 and 2147483647, got {self.seed}")


def parse_cast(pairs: list[str] | tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """``["1=joe", "2=heart"]`` → ``(("1", "joe"), ("2", "heart"))``; a bad pair is a ValueError."""
    result: list[tuple[str, str]] = []
    for pair in pairs:
        for item in pair.split(","):
            speaker, sep, voice = item.partition("=")
            if not sep or not speaker.strip() or not voice.strip():
                raise ValueError(f"--cast: '{item}' is not SPEAKER=VOICE (e.g. 1=heart)")
            speaker = speaker.strip()
            if speaker.lower().startswith("speaker"):
                speaker = speaker[len("speaker"):].strip()
            result.append((speaker, voice.strip()))
    speakers = [speaker for speaker, _ in result]
    if len(set(speakers)) != len(speakers):
        raise ValueError("--cast: a speaker is cast twice")
    return tuple(result)


def parse_pauses(pairs: list[str] | tuple[str, ...]) -> tuple[tuple[str, int], ...]:
    """``["sentence=300", "scene=2000"]`` → ``(("scene", 2000), ("sentence", 300))``."""
    result: dict[str, int] = {}
    for pair in pairs:
        for item in pair.split(","):
            name, sep, value = item.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or not value.strip().lstrip("-").isdigit():
                raise ValueError(f"--pause: '{item}' is not NAME=MS (e.g. sentence=300)")
            result[name] = int(value)
    return tuple(sorted(result.items()))
