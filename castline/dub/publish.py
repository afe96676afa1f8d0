"""Publish one language's dub under ``<programme>/<language>/``: audio, stem and subtitles first,
``manifest.json`` last (each object written atomically by the store)."""

from __future__ import annotations

from typing import Sequence

from castline.dub.manifest import build_dub_manifest, subtitle_cues
from castline.dub.mix import MixResult
from castline.dub.plan import LanguagePlan
from castline.dub.voicing import VoicedLanguage
from castline.audio.encode import CODECS, EncodedFile
from castline.delivery.manifest import PublishedFile
from castline.storage import ObjectInfo, Store
from castline.delivery.subtitles import to_srt, to_vtt


def publish_language(store: Store, plan: LanguagePlan, voiced: VoicedLanguage, mixed: MixResult,
                     encoded: Sequence[EncodedFile], started_at: str, finished_at: str) -> ObjectInfo:
    prefix = plan.prefix
    timings_s = {"voice": voiced.seconds, "mix": mixed.seconds}
    files = [PublishedFile(encoded=item, stored=store.put_file(item.path, f"{prefix}/mix.{CODECS[item.format].extension}"))
             for item in encoded]
    dialogue = store.put_file(mixed.dialogue_path, f"{prefix}/dialogue.wav")
    cues = subtitle_cues(voiced)
    # The cue sheet's own cues, re-timed: they were authored for the picture, so no re-wrapping.
    srt = to_srt(cues, plan.sample_rate, line_limits=False)
    subtitles = [store.put_bytes(srt.encode("utf-8"), f"{prefix}/subtitles.srt"),
                 store.put_bytes(_vtt(cues, plan.sample_rate).encode("utf-8"), f"{prefix}/subtitles.vtt")]
    manifest = build_dub_manifest(plan, voiced, mixed, files, dialogue, subtitles, timings_s, started_at,
                                  finished_at)
    return store.put_bytes(manifest.to_bytes(), f"{prefix}/manifest.json")


def _vtt(cues, sample_rate: int) -> str:
    # Cues with no named speaker carry no voice span.
    return to_vtt(cues, sample_rate, line_limits=False).replace("<v >", "")
