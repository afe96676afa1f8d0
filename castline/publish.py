"""Publish an episode to the store: audio and transcripts first, the manifest last."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from castline.encode import CODECS, EncodedFile
from castline.manifest import PublishedFile, RenderStats, build_manifest, manifest_json
from castline.master import MasterResult
from castline.render_plan import RenderPlan
from castline.stitch import StitchResult
from castline.storage import ObjectInfo, Store
from castline.subtitles import Cue, to_srt, to_vtt
from castline.synthesis import ChunkRecord


def transcript_cues(plan: RenderPlan, stitched: StitchResult) -> list[Cue]:
    """One cue per chunk, at the chunk's real position in the programme."""
    placements = {placement.index: placement for placement in stitched.placements}
    return [Cue(start_sample=placements[job.index].start_sample, end_sample=placements[job.index].end_sample,
                speaker=plan.episode.display_name(job.speaker), text=job.text, first_of_turn=job.position == 0)
            for job in plan.jobs]


def publish_episode(store: Store, plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult,
                    mastered: MasterResult, encoded: Sequence[EncodedFile], stats: RenderStats,
                    script_sha256: str, qa_files: Sequence[Path] = (), qa_summary: dict | None = None) -> ObjectInfo:
    """Write ``<episode>/episode.<ext>``, ``transcript.srt|vtt`` and, last, ``manifest.json``.

    Each object is written atomically; the manifest only ever lists objects already stored.
    """
    prefix = plan.episode.meta.episode_id
    published = [PublishedFile(encoded=item,
                               stored=store.put_file(item.path, f"{prefix}/episode.{CODECS[item.format].extension}"))
                 for item in encoded]
    cues = transcript_cues(plan, stitched)
    transcripts = [
        store.put_bytes(to_srt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.srt"),
        store.put_bytes(to_vtt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.vtt"),
    ]
    reports = [store.put_file(path, f"{prefix}/{Path(path).name}") for path in qa_files]
    manifest = build_manifest(plan, records, stitched, mastered, published, transcripts, stats, script_sha256)
    if qa_summary is not None:
        manifest["qa"] = {**qa_summary, "files": [{"name": Path(info.key).name, "uri": info.uri,
                                                    "sha256": info.sha256, "bytes": info.bytes} for info in reports]}
    return store.put_bytes(manifest_json(manifest), f"{prefix}/manifest.json")
