"""Publish an episode to the store: a verified release first, the live manifest last."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from castline.audio.encode import CODECS, EncodedFile
from castline.core.errors import StorageError
from castline.core.hashing import sha256_file
from castline.delivery.manifest import EpisodeManifest, PublishedFile, RenderStats, StoredRelease, build_manifest
from castline.delivery.master import MasterResult
from castline.core.progress import emit
from castline.delivery.releases import live_release, manifest_key, prune_releases, release_id, release_prefix
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchResult
from castline.storage import ObjectInfo, Store
from castline.delivery.subtitles import Cue, to_srt, to_vtt
from castline.delivery.audiobook import AudiobookPackage
from castline.delivery.episode_meta import (audiobook_manifest, chapter_entries, episode_metadata, metadata_json,
                                            update_feed)
from castline.delivery.sidecars import chapters_json, transcript_json
from castline.render.synthesis import ChunkRecord
from castline.qa.records import EpisodeQA


def transcript_cues(plan: RenderPlan, stitched: StitchResult) -> list[Cue]:
    """One cue per chunk, at the chunk's real position in the programme."""
    placements = {placement.index: placement for placement in stitched.placements}
    return [Cue(start_sample=placements[job.index].start_sample, end_sample=placements[job.index].end_sample,
                speaker=plan.episode.display_name(job.speaker), text=job.text, first_of_turn=job.position == 0)
            for job in plan.jobs]


@dataclass(frozen=True)
class Published:
    """The live manifest (its object and its record) plus what publishing did: objects uploaded,
    objects already stored intact, releases pruned."""

    manifest: ObjectInfo
    release: str
    uploaded: int
    reused: int
    pruned: tuple[str, ...]
    record: EpisodeManifest | None = None


def publish_episode(store: Store, plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult,
                    mastered: MasterResult, encoded: Sequence[EncodedFile], stats: RenderStats,
                    script_sha256: str, qa_files: Sequence[Path] = (), qa: EpisodeQA | None = None,
                    book: AudiobookPackage | None = None) -> Published:
    """Upload a release (``<episode>/releases/<release>/…``), verify it, then swap the live manifest.

    Files: ``episode.<ext>``, ``transcript.srt|vtt``, the QA report files and the release's own
    ``manifest.json``; last, ``<episode>/manifest.json``. An object already stored under the release
    with the same SHA-256 (a run killed while publishing) is not uploaded again. See
    ``castline.delivery.releases`` for the layout and why readers never see a mix of two releases.

    The manifest is built once, after every object it lists is stored and verified: the release
    id, upload counts and QA files are known by then, so nothing edits it afterwards.
    """
    episode_id = plan.episode.meta.episode_id
    release = release_id(stats.render_key)
    prefix = release_prefix(episode_id, release)
    previous = live_release(store, episode_id)
    writer = _VerifiedWriter(store)
    delivery = episode_metadata(plan)
    chapters = chapter_entries(plan, stitched)
    book_count = 0 if book is None else 1 + len(book.chapter_files)
    emit("publish", total=len(encoded) + 3 + bool(chapters) + bool(delivery.cover) + book_count + len(qa_files) + 2)
    published = tuple(PublishedFile(encoded=item,
                                    stored=writer.put_file(item.path, f"{prefix}/episode.{CODECS[item.format].extension}"))
                      for item in encoded)
    cues = transcript_cues(plan, stitched)
    transcripts = (
        writer.put_bytes(to_srt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.srt"),
        writer.put_bytes(to_vtt(cues, stitched.sample_rate).encode("utf-8"), f"{prefix}/transcript.vtt"),
        writer.put_bytes(transcript_json(cues, stitched.sample_rate), f"{prefix}/transcript.json"),
    )
    # Podcasting 2.0 chapters and the cover, beside the files (the feed links both).
    chapters_file = (writer.put_bytes(chapters_json(chapters, stitched.sample_rate), f"{prefix}/chapters.json")
                     if chapters else None)
    cover = (writer.put_bytes(delivery.cover.data, f"{prefix}/cover.{'png' if delivery.cover.mime == 'image/png' else 'jpg'}")
             if delivery.cover else None)
    reports = tuple(writer.put_file(path, f"{prefix}/{Path(path).name}") for path in qa_files)
    book_files = [] if book is None else [book.m4b_path] + [reading.path for reading in book.chapter_files]
    book_stored = {path: writer.put_file(path, f"{prefix}/audiobook/{Path(path).name}") for path in book_files}
    stored = StoredRelease(release=release, files=published, transcripts=transcripts, qa_files=reports,
                           uploaded=writer.uploaded, reused=writer.reused, chapters_file=chapters_file, cover=cover,
                           metadata=None if delivery.is_empty else metadata_json(delivery),
                           show=delivery.show.show_id if delivery.show else None,
                           audiobook=None if book is None else audiobook_manifest(book, book_stored))
    manifest = build_manifest(plan, records, stitched, mastered, stats, script_sha256, stored, qa)
    body = manifest.to_bytes()
    writer.put_bytes(body, f"{prefix}/manifest.json")
    live = store.put_bytes(body, manifest_key(episode_id))
    update_feed(store, delivery, episode_id, live.key)  # the show's feed.xml, rebuilt and swapped in
    emit("publish", advance=1)
    keep = {release} | ({previous} if previous else set())
    pruned = tuple(prune_releases(store, episode_id, keep))
    return Published(manifest=live, release=release, uploaded=writer.uploaded, reused=writer.reused, pruned=pruned,
                     record=manifest)


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
