"""Publish an episode to the store: a verified release first, the live manifest last."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from castline.audio.encode import CODECS, EncodedFile
from castline.core.errors import StorageError
from castline.core.hashing import sha256_file
from castline.delivery.manifest import PublishedFile, RenderStats, build_manifest, manifest_json
from castline.delivery.master import MasterResult
from castline.core.progress import emit
from castline.delivery.releases import live_release, manifest_key, prune_releases, release_id, release_prefix
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchResult
from castline.storage import ObjectInfo, Store
from castline.delivery.subtitles import Cue, to_srt, to_vtt
from castline.render.synthesis import ChunkRecord


def transcript_cues(plan: RenderPlan, stitched: StitchResult) -> list[Cue]:
    """One cue per chunk, at the chunk's real position in the programme."""
    placements = {placement.index: placement for placement in stitched.placements}
    return [Cue(start_sample=placements[job.index].start_sample, end_sample=placements[job.index].end_sample,
                speaker=plan.episode.display_name(job.speaker), text=job.text, first_of_turn=job.position == 0)
            for job in plan.jobs]


@dataclass(frozen=True)
class Published:
    """The live manifest plus what publishing did: objects uploaded, objects already stored intact."""

    manifest: ObjectInfo
    release: str
    uploaded: int
    reused: int
    pruned: tuple[str, ...]


def publish_episode(store: Store, plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult,
                    mastered: MasterResult, encoded: Sequence[EncodedFile], stats: RenderStats,
                    script_sha256: str, qa_files: Sequence[Path] = (), qa_summary: dict | None = None) -> Published:
    """Upload a release (``<episode>/releases/<release>/…``), verify it, then swap the live manifest.

    Files: ``episode.<ext>``, ``transcript.srt|vtt``, the QA report files and the release's own
    ``manifest.json``; last, ``<episode>/manifest.json``. An object already stored under the release
    with the same SHA-256 (a run killed while publishing) is not uploaded again. See
    ``castline.delivery.releases`` for the layout and why readers never see a mix of two releases.
    """
    episode_id = plan.episode.meta.episode_id
    release = release_id(stats.render_key)
    prefix = release_prefix(episode_id, release)
    previous = live_release(store, episode_id)
    writer = _VerifiedWriter(store)
    emit("publish", total=len(encoded) + 2 + len(qa_files) + 2)
    published = [PublishedFile(encoded=item,
                               stored=writer.put_file(item.path, f"{prefix}/episode.{CODECS[item.format].extension}"))
                 for item in encoded]
    cues = transcript_cues(plan, stitched)
    transcripts = [
        writer.put_bytes(to_srt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.srt"),
        writer.put_bytes(to_vtt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.vtt"),
    ]
    reports = [writer.put_file(path, f"{prefix}/{Path(path).name}") for path in qa_files]
    manifest = build_manifest(plan, records, stitched, mastered, published, transcripts, stats, script_sha256)
    manifest["release"] = release
    manifest["render"]["objects_uploaded"] = writer.uploaded
    manifest["render"]["objects_reused"] = writer.reused
    if qa_summary is not None:
        manifest["qa"] = {**qa_summary, "files": [{"name": Path(info.key).name, "key": info.key, "uri": info.uri,
                                                    "sha256": info.sha256, "bytes": info.bytes} for info in reports]}
    body = manifest_json(manifest)
    writer.put_bytes(body, f"{prefix}/manifest.json")
    live = store.put_bytes(body, manifest_key(episode_id))
    emit("publish", advance=1)
    keep = {release} | ({previous} if previous else set())
    pruned = tuple(prune_releases(store, episode_id, keep))
    return Published(manifest=live, release=release, uploaded=writer.uploaded, reused=writer.reused, pruned=pruned)


class _VerifiedWriter:
    """Puts objects and checks each one stored intact (size and SHA-256) before the manifest may list it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.uploaded = 0
        self.reused = 0

    def put_file(self, path: str | Path, key: str) -> ObjectInfo:
        return self._put(key, lambda: sha256_file(path), Path(path).stat().st_size,
                         lambda: self.store.put_file(path, key))

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        return self._put(key, lambda: hashlib.sha256(data).hexdigest(), len(data),
                         lambda: self.store.put_bytes(data, key))

    def _put(self, key: str, local_sha256, size: int, upload) -> ObjectInfo:
        existing = self._stored(key)
        # The local file is hashed only to compare with an object already there (a resumed
        # publish); a fresh upload hashes what it sends, once, and that is what is checked.
        if existing is not None and existing.bytes == size and existing.sha256 == local_sha256():
            self.reused += 1
        else:
            sent = upload()
            self.uploaded += 1
            existing = self._stored(key)
            if existing is None or existing.sha256 != sent.sha256 or existing.bytes != size:
                raise StorageError(f"{self.store.uri_for(key)} did not store intact "
                                   "(SHA-256 or size differs after upload)")
        emit("publish", advance=1)
        return existing

    def _stored(self, key: str) -> ObjectInfo | None:
        return self.store.info(key) if self.store.exists(key) else None
