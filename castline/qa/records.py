"""Typed QA results for one episode, their JSON form (``qa.json``) and the episode verdict.

Positions are integer samples at ``EpisodeQA.sample_rate`` (the programme's rate); loudness is
LUFS / LU, peaks dBTP, WER a fraction (0.0 = perfect, may exceed 1.0 with insertions).

JSON contract (public): the top level has at least ``verdict`` and ``chunks``; every chunk has
at least ``turn`` (int), ``text`` (str), ``transcript`` (str), ``wer`` (number or null),
``attempts`` (int), ``flags`` (list of str) and ``passed`` (bool). Non-finite floats
(a silent file's ``-inf`` LUFS) are written as the strings ``"inf"``, ``"-inf"`` and ``"nan"``
so that the file is strict JSON; ``from_json`` reads them back as floats.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1
VERDICTS = ("pass", "warn", "fail")
POLICIES = ("off", "warn", "strict")


@dataclass(frozen=True)
class AttemptQA:
    """One synthesis attempt of a chunk.

    ``attempt``: 1-based attempt number. ``seed``: the engine seed used, ``None`` for engines
    without one. ``wer``: word error rate of this take (fraction), ``None`` when not scored.
    ``flags``: what the checks found in this take. ``chosen``: this take is the one kept.
    """

    attempt: int
    seed: int | None
    wer: float | None
    flags: tuple[str, ...] = ()
    chosen: bool = False


@dataclass(frozen=True, kw_only=True)
class ChunkQA:
    """QA of one rendered chunk (the take that was kept).

    ``index``: chunk index in the programme (0-based). ``turn``: script turn it belongs to.
    ``text``: what the script asked for; ``transcript``: what ASR heard. ``wer``: word error
    rate of the kept take (fraction), ``None`` when not scored. ``attempts``: takes rendered
    (1 = no retry); ``attempt_log``: one entry per take. ``flags``: problems still present in
    the kept take. ``passed``: the kept take meets the thresholds. ``start_sample`` /
    ``end_sample``: the chunk's span in the programme (samples at the episode's sample rate,
    end exclusive). ``metrics``: further named measurements, names carry units
    (``("speech_rate_wpm", 152.0)``, ``("speaker_similarity", 0.83)``); names are unique.
    ``asr_model``: the Whisper model whose transcript judged the kept take (``"tiny.en"`` when
    the quick listen passed it, ``"base"`` when it was heard again by Whisper base, or the model
    given); ``None`` when not recorded (older results, a chunk not heard), and then left out of
    the JSON.
    """

    index: int
    turn: int
    speaker: str
    voice: str
    text: str
    transcript: str
    wer: float | None
    attempts: int
    passed: bool
    start_sample: int
    end_sample: int
    attempt_log: tuple[AttemptQA, ...] = ()
    flags: tuple[str, ...] = ()
    metrics: tuple[tuple[str, float], ...] = ()
    asr_model: str | None = None

    def __post_init__(self) -> None:
        if self.end_sample < self.start_sample:
            raise ValueError(f"chunk {self.index}: end_sample {self.end_sample} before "
                             f"start_sample {self.start_sample}")
        names = [name for name, _ in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"chunk {self.index}: duplicate metric names {names}")

    @property
    def retried(self) -> bool:
        """More than one take was rendered."""
        return self.attempts > 1

    @property
    def flagged(self) -> bool:
        """The kept take failed, or still carries flags."""
        return not self.passed or bool(self.flags)

    def metric(self, name: str) -> float | None:
        """The named metric, ``None`` when absent."""
        return dict(self.metrics).get(name)


@dataclass(frozen=True)
class SeamQA:
    """A join between two chunks: ``join_sample`` (programme samples), the level jump across it
    (``jump_db``, dB, signed: after minus before) and whether it exceeded the threshold."""

    join_sample: int
    jump_db: float
    flagged: bool


@dataclass(frozen=True)
class SpeakerQA:
    """One speaker over the episode.

    ``integrated_lufs``: integrated loudness of their chunks (LUFS). ``spread_lu``: spread of
    their per-chunk loudness (LU). ``mean_similarity``: mean speaker similarity of their chunks
    to the reference voice (cosine, unitless), ``None`` when not measured. ``drift``: change in
    similarity over the episode (cosine, unitless, late minus early), ``None`` when not
    measured.
    """

    speaker: str
    voice: str
    integrated_lufs: float
    spread_lu: float
    mean_similarity: float | None = None
    drift: float | None = None


@dataclass(frozen=True)
class FileQA:
    """One delivered file: ``format`` (``"wav"``, ``"mp3"``…), its integrated loudness (LUFS),
    true peak (dBTP, ``None`` when not measured), whether it meets its preset, and every
    problem as one readable line."""

    format: str
    integrated_lufs: float
    true_peak_dbtp: float | None
    compliant: bool
    problems: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EpisodeQA:
    """QA of a whole episode.

    ``verdict``: ``"pass"`` | ``"warn"`` | ``"fail"`` (see ``verdict_for``). ``policy``: the QA
    policy the run used, ``"off"`` | ``"warn"`` | ``"strict"``. ``episode_flags``: episode-wide
    findings (seams, loudness spread, speaker drift, compliance), one readable line each.
    ``sample_rate``: Hz of every ``*_sample`` position. ``target_lufs``: the delivery target
    (LUFS), ``None`` for presets without one; ``tolerance_lu``: its ± tolerance (LU), ``None``
    when unknown. ``thresholds``: the named limits applied (names carry units).
    ``timings_s``: seconds spent per QA stage.
    """

    episode: str
    verdict: str
    policy: str
    chunks: tuple[ChunkQA, ...]
    sample_rate: int
    episode_flags: tuple[str, ...] = ()
    seams: tuple[SeamQA, ...] = ()
    speakers: tuple[SpeakerQA, ...] = ()
    files: tuple[FileQA, ...] = ()
    target_lufs: float | None = None
    tolerance_lu: float | None = None
    thresholds: tuple[tuple[str, float], ...] = ()
    timings_s: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")

    @property
    def passed_count(self) -> int:
        return sum(1 for chunk in self.chunks if chunk.passed)

    @property
    def failed_count(self) -> int:
        return sum(1 for chunk in self.chunks if not chunk.passed)

    @property
    def retried_count(self) -> int:
        return sum(1 for chunk in self.chunks if chunk.retried)

    @property
    def heard_by(self) -> dict[str, int]:
        """Chunks per Whisper model that judged their kept take (chunks without one left out)."""
        counts: dict[str, int] = {}
        for chunk in self.chunks:
            if chunk.asr_model is not None:
                counts[chunk.asr_model] = counts.get(chunk.asr_model, 0) + 1
        return dict(sorted(counts.items()))


def verdict_for(chunks: Iterable[ChunkQA], episode_flags: Iterable[str], *,
                policy: str = "strict") -> str:
    """``"fail"`` when a chunk failed and ``policy`` is ``"strict"``; otherwise ``"warn"`` when
    any chunk failed or carries flags, or there are episode flags; otherwise ``"pass"``.

    Under ``"warn"`` and ``"off"`` the episode is delivered whatever QA found, so the verdict
    never goes past ``"warn"``; episode flags warn under every policy, since they describe
    the whole programme rather than a take a retry could replace.
    """
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")
    chunks = tuple(chunks)
    if policy == "strict" and any(not chunk.passed for chunk in chunks):
        return "fail"
    if any(chunk.flagged for chunk in chunks) or any(True for _ in episode_flags):
        return "warn"
    return "pass"


def to_json(qa: EpisodeQA) -> dict[str, Any]:
    """``qa`` as a JSON-ready dict (strict JSON: no NaN/Infinity literals). ``summary`` is
    derived and ignored by ``from_json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "episode": qa.episode,
        "verdict": qa.verdict,
        "policy": qa.policy,
        "sample_rate": qa.sample_rate,
        "target_lufs": _float_out(qa.target_lufs),
        "tolerance_lu": _float_out(qa.tolerance_lu),
        "summary": {
            "chunks": len(qa.chunks),
            "passed": qa.passed_count,
            "failed": qa.failed_count,
            "retried": qa.retried_count,
            **({"heard_by": qa.heard_by} if qa.heard_by else {}),
        },
        "episode_flags": list(qa.episode_flags),
        "thresholds": _pairs_out(qa.thresholds),
        "timings_s": _pairs_out(qa.timings_s),
        "speakers": [{
            "speaker": s.speaker,
            "voice": s.voice,
            "integrated_lufs": _float_out(s.integrated_lufs),
            "spread_lu": _float_out(s.spread_lu),
            "mean_similarity": _float_out(s.mean_similarity),
            "drift": _float_out(s.drift),
        } for s in qa.speakers],
        "files": [{
            "format": f.format,
            "integrated_lufs": _float_out(f.integrated_lufs),
            "true_peak_dbtp": _float_out(f.true_peak_dbtp),
            "compliant": f.compliant,
            "problems": list(f.problems),
        } for f in qa.files],
        "seams": [{
            "join_sample": s.join_sample,
            "jump_db": _float_out(s.jump_db),
            "flagged": s.flagged,
        } for s in qa.seams],
        "chunks": [_chunk_out(chunk) for chunk in qa.chunks],
    }


def from_json(data: Mapping[str, Any]) -> EpisodeQA:
    """The ``EpisodeQA`` that ``to_json`` wrote (``data`` may come straight from ``json.load``)."""
    version = data.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ValueError(f"qa.json schema_version {version} is not supported "
                         f"(this castline reads {SCHEMA_VERSION})")
    return EpisodeQA(
        episode=data["episode"],
        verdict=data["verdict"],
        policy=data["policy"],
        sample_rate=int(data["sample_rate"]),
        target_lufs=_float_in(data.get("target_lufs")),
        tolerance_lu=_float_in(data.get("tolerance_lu")),
        episode_flags=tuple(data.get("episode_flags", ())),
        thresholds=_pairs_in(data.get("thresholds", {})),
        timings_s=_pairs_in(data.get("timings_s", {})),
        speakers=tuple(SpeakerQA(
            speaker=s["speaker"],
            voice=s["voice"],
            integrated_lufs=_float_in(s["integrated_lufs"]),
            spread_lu=_float_in(s["spread_lu"]),
            mean_similarity=_float_in(s.get("mean_similarity")),
            drift=_float_in(s.get("drift")),
        ) for s in data.get("speakers", ())),
        files=tuple(FileQA(
            format=f["format"],
            integrated_lufs=_float_in(f["integrated_lufs"]),
            true_peak_dbtp=_float_in(f.get("true_peak_dbtp")),
            compliant=bool(f["compliant"]),
            problems=tuple(f.get("problems", ())),
        ) for f in data.get("files", ())),
        seams=tuple(SeamQA(
            join_sample=int(s["join_sample"]),
            jump_db=_float_in(s["jump_db"]),
            flagged=bool(s["flagged"]),
        ) for s in data.get("seams", ())),
        chunks=tuple(_chunk_in(chunk) for chunk in data["chunks"]),
    )


def _chunk_out(chunk: ChunkQA) -> dict[str, Any]:
    return {
        "index": chunk.index,
        "turn": chunk.turn,
        "speaker": chunk.speaker,
        "voice": chunk.voice,
        "text": chunk.text,
        "transcript": chunk.transcript,
        "wer": _float_out(chunk.wer),
        "attempts": chunk.attempts,
        "flags": list(chunk.flags),
        "passed": chunk.passed,
        "start_sample": chunk.start_sample,
        "end_sample": chunk.end_sample,
        "metrics": _pairs_out(chunk.metrics),
        **({"asr_model": chunk.asr_model} if chunk.asr_model is not None else {}),
        "attempt_log": [{
            "attempt": a.attempt,
            "seed": a.seed,
            "wer": _float_out(a.wer),
            "flags": list(a.flags),
            "chosen": a.chosen,
        } for a in chunk.attempt_log],
    }


def _chunk_in(data: Mapping[str, Any]) -> ChunkQA:
    return ChunkQA(
        index=int(data["index"]),
        turn=int(data["turn"]),
        speaker=data["speaker"],
        voice=data["voice"],
        text=data["text"],
        transcript=data["transcript"],
        wer=_float_in(data["wer"]),
        attempts=int(data["attempts"]),
        flags=tuple(data.get("flags", ())),
        passed=bool(data["passed"]),
        start_sample=int(data["start_sample"]),
        end_sample=int(data["end_sample"]),
        metrics=_pairs_in(data.get("metrics", {})),
        asr_model=data.get("asr_model"),
        attempt_log=tuple(AttemptQA(
            attempt=int(a["attempt"]),
            seed=None if a.get("seed") is None else int(a["seed"]),
            wer=_float_in(a.get("wer")),
            flags=tuple(a.get("flags", ())),
            chosen=bool(a.get("chosen", False)),
        ) for a in data.get("attempt_log", ())),
    )


def _float_out(value: float | None) -> float | str | None:
    if value is None:
        return None
    value = float(value)
    if math.isfinite(value):
        return value
    return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")


def _float_in(value: float | str | None) -> float | None:
    return None if value is None else float(value)


def _pairs_out(pairs: Iterable[tuple[str, float]]) -> dict[str, float | str | None]:
    # An object rather than a list of pairs: consumers read qa.json["thresholds"]["wer_max"].
    out: dict[str, float | str | None] = {}
    for name, value in pairs:
        if name in out:
            raise ValueError(f"duplicate name {name!r}")
        out[name] = _float_out(value)
    return out


def _pairs_in(data: Mapping[str, float | str | None]) -> tuple[tuple[str, float], ...]:
    return tuple((name, _float_in(value)) for name, value in data.items())
