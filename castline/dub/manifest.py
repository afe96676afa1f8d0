"""The dub manifest (schema ``castline.dub/1``) and the per-cue timing table: references, hashes
and times, never audio."""

from __future__ import annotations

import dataclasses
from typing import Sequence

from castline import __version__
from castline.dub.mix import MixResult
from castline.dub.plan import LanguagePlan
from castline.dub.voicing import VoicedLanguage, VoicedUnit
from castline.delivery.manifest import PublishedFile, _file_entry, reading_dict
from castline.dsp.presets import PRESETS
from castline.storage import ObjectInfo
from castline.delivery.subtitles import Cue as SubtitleCue
from castline.core.timebase import samples_to_ms, samples_to_seconds

SCHEMA = "castline.dub/1"


def cue_entry(item: VoicedUnit, sample_rate: int) -> dict[str, object]:
    unit, fit = item.unit, item.fit
    return {
        "index": unit.index, "cue": unit.cue, "cue_id": unit.cue_id, "part": unit.part, "parts": unit.parts,
        "speaker": unit.speaker, "voice": unit.voice_id, "text": unit.text, "source_line": unit.source_line,
        "slot_start_sample": unit.slot_start_sample, "slot_end_sample": unit.slot_end_sample,
        "speech_start_sample": item.speech_start_sample, "speech_end_sample": item.speech_end_sample,
        "natural_ms": samples_to_ms(fit.natural_samples, sample_rate),
        "rate": fit.rate, "stretch": fit.stretch,
        "borrowed_ms": samples_to_ms(fit.borrowed_samples, sample_rate),
        "overrun_ms": samples_to_ms(fit.overrun_samples, sample_rate),
        "truncated": fit.truncated, "outcome": fit.outcome, "steps": list(fit.steps),
        "takes_rendered": item.takes_rendered, "takes_reused": item.takes_reused,
    }


def timing_table(voiced: VoicedLanguage, sample_rate: int) -> list[dict[str, object]]:
    """One row per cue for the Prefect table artifact (times in ms for reading)."""
    rows = []
    for item in voiced.units:
        entry = cue_entry(item, sample_rate)
        rows.append({"index": entry["index"], "cue": entry["cue_id"] or entry["cue"], "speaker": entry["speaker"],
                     "slot_ms": f"{samples_to_ms(item.unit.slot_start_sample, sample_rate)}–"
                                f"{samples_to_ms(item.unit.slot_end_sample, sample_rate)}",
                     "speech_ms": f"{samples_to_ms(item.speech_start_sample, sample_rate)}–"
                                  f"{samples_to_ms(item.speech_end_sample, sample_rate)}",
                     "rate": entry["rate"], "stretch": entry["stretch"], "borrowed_ms": entry["borrowed_ms"],
                     "overrun_ms": entry["overrun_ms"], "outcome": entry["outcome"], "text": item.unit.text[:60]})
    return rows


def fit_summary(voiced: VoicedLanguage) -> dict[str, object]:
    """Counts and shares of cues by what it took to fit them."""
    units = voiced.units
    total = len(units) or 1

    def share(count: int) -> float:
        return round(count / total, 4)

    rated = sum("rate" in item.fit.steps for item in units)
    stretched = sum(item.fit.stretch > 1.0 for item in units)
    borrowed = sum(item.fit.borrowed_samples > 0 for item in units)
    overrun = sum(item.fit.overrun_samples > 0 for item in units)
    return {"cues": len(units), "fits_as_is": sum(not item.fit.steps for item in units),
            "rate": rated, "stretched": stretched, "borrowed": borrowed, "overrun": overrun,
            "truncated": sum(item.fit.truncated for item in units),
            "share_rate": share(rated), "share_stretched": share(stretched), "share_borrowed": share(borrowed),
            "share_overrun": share(overrun)}


def subtitle_cues(voiced: VoicedLanguage) -> list[SubtitleCue]:
    """Subtitles re-timed to the speech as placed (speaker names only where the file gave them)."""
    from castline.dub.cast import DEFAULT_SPEAKER

    return [SubtitleCue(start_sample=item.speech_start_sample, end_sample=item.speech_end_sample,
                        speaker=item.unit.speaker if item.unit.speaker != DEFAULT_SPEAKER else "",
                        text=item.unit.text, first_of_turn=item.unit.speaker != DEFAULT_SPEAKER)
            for item in sorted(voiced.units, key=lambda item: (item.speech_start_sample, item.unit.index))]


def build_dub_manifest(plan: LanguagePlan, voiced: VoicedLanguage, mixed: MixResult,
                       files: Sequence[PublishedFile], dialogue: ObjectInfo, subtitles: Sequence[ObjectInfo],
                       timings_s: dict[str, float], started_at: str, finished_at: str) -> dict[str, object]:
    options = plan.options
    rate = plan.sample_rate
    background = None
    if plan.background is not None:
        background = {"path": plan.background.path, "sha256": plan.background.sha256,
                      "sample_rate": plan.background.sample_rate, "channels": plan.background.channels,
                      "duration_samples": plan.background.duration_samples}
    return {
        "schema": SCHEMA,
        "programme": plan.programme,
        "language": plan.language,
        "source": {"path": plan.cue_path, "format": plan.cue_format, "sha256": plan.cue_sha256},
        "background": background,
        "sample_rate": rate,
        "channels": mixed.channels,
        "duration_samples": mixed.duration_samples,
        "duration_seconds": round(samples_to_seconds(mixed.duration_samples, rate), 3),
        "preset": PRESETS[options.preset].to_manifest(),
        "files": [_file_entry(item) for item in files],
        "stems": [{"name": "dialogue", "uri": dialogue.uri, "sha256": dialogue.sha256, "bytes": dialogue.bytes,
                   "format": "WAV float32 mono", "gain": "the mix's programme gain",
                   "reading": reading_dict(mixed.dialogue_reading)}],
        "subtitles": [{"format": info.key.rsplit(".", 1)[-1], "uri": info.uri, "sha256": info.sha256,
                       "bytes": info.bytes} for info in subtitles],
        "cues": [cue_entry(item, rate) for item in voiced.units],
        "fit": {**dataclasses.asdict(options.fit), "stretcher": voiced.stretcher, **fit_summary(voiced)},
        "duck": dataclasses.asdict(options.duck),
        "dialogue": {"target_lufs": round(mixed.dialogue_target_lufs, 3),
                     "source_dialogue_lufs": (None if mixed.source_dialogue_lufs is None
                                              else round(mixed.source_dialogue_lufs, 3)),
                     "speaker_gains_db": dict(mixed.speaker_gains_db)},
        "voices": [{"id": voice.voice_id, "name": voice.display_name, "language": voice.language,
                    "engine": voice.engine, "engine_voice": voice.engine_voice,
                    "engine_options": dict(voice.engine_options), "profile_hash": voice.profile_hash,
                    "cloned": voice.is_clone} for voice in plan.voices],
        "engines": [{"voice": voice_id, "version": identity} for voice_id, identity in plan.engines],
        "mastering": {"chain": list(mixed.chain), "programme_gain_db": round(mixed.mastered.gain_db, 4),
                      "passes": mixed.mastered.passes, "limited_samples": mixed.mastered.limited_samples,
                      "max_gain_reduction_db": round(mixed.mastered.max_gain_reduction_db, 3),
                      "premix": reading_dict(mixed.premix_reading), "master": reading_dict(mixed.mastered.reading)},
        "render": {"castline_version": __version__, "seed": options.seed, "started_at": started_at,
                   "finished_at": finished_at, "timings_s": {k: round(v, 3) for k, v in timings_s.items()}},
        "warnings": list(plan.warnings),
    }
