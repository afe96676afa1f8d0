"""An episode's metadata through the pipeline: read once from the script and ``--meta``, then
turned into the tags each file carries, the sidecars of the release and the show's feed.

``episode_metadata(plan)`` is called where a render is prepared (so a bad field fails in one
line before anything runs), for the render key, and again by the encode and publish steps:
it re-reads the small script file rather than carrying metadata inside the render plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from castline.core.errors import ScriptError
from castline.core.timebase import samples_to_ms
from castline.delivery.feed import Show, load_show, rebuild_feed, register_episode
from castline.delivery.metadata import EpisodeMetadata, metadata_from_options, metadata_from_script, read_cover
from castline.delivery.sidecars import ChapterEntry
from castline.delivery.tags import CoverArt, TagSet, chapters_from_starts
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchResult
from castline.storage import ObjectInfo, Store


@dataclass(frozen=True)
class EpisodeDelivery:
    """Metadata, cover bytes and the show (if the episode names one), ready to deliver."""

    metadata: EpisodeMetadata
    cover: CoverArt | None
    show: Show | None

    @property
    def is_empty(self) -> bool:
        return self.metadata == EpisodeMetadata()


def episode_metadata(plan: RenderPlan) -> EpisodeDelivery:
    """The script's ``episode:`` metadata (YAML scripts) with ``--meta`` options on top."""
    episode = plan.episode
    script = Path(episode.source_path or plan.options.script)
    metadata = EpisodeMetadata()
    if episode.source_format == "yaml" and script.is_file():
        metadata = metadata_from_script(script.read_text(encoding="utf-8"), str(script), script.parent)
    options = tuple(getattr(plan.options, "meta", ()) or ())
    if options:
        metadata = metadata.merged(metadata_from_options(options, script.parent))
    cover = None
    if metadata.cover is not None:
        cover = CoverArt(read_cover(metadata.cover.location), metadata.cover.mime or "image/jpeg",
                         metadata.cover.width or 0, metadata.cover.height or 0)
    show = None
    if metadata.show is not None:
        show = load_show(metadata.show)
        if show.format not in plan.options.formats:
            raise ScriptError(f"show '{show.show_id}' publishes {show.format} enclosures: add {show.format} "
                              f"to --format", source=show.source, field="format")
    return EpisodeDelivery(metadata, cover, show)


def render_key_material(delivery: EpisodeDelivery) -> dict[str, object] | None:
    """What the render key hashes for metadata (None when there is none, so older keys hold)."""
    if delivery.is_empty:
        return None
    material: dict[str, object] = dict(delivery.metadata.to_manifest())
    if delivery.show is not None:
        material["show_id"] = delivery.show.show_id
    return material


def chapter_times_ms(plan: RenderPlan, stitched: StitchResult) -> list[tuple[str, int]]:
    """``(title, start_ms)`` of each chapter: where its first turn's first chunk starts."""
    first_chunk = {}
    for job in plan.jobs:
        first_chunk.setdefault(job.turn, job.index)
    starts = {placement.index: placement.start_sample for placement in stitched.placements}
    return [(chapter.title, samples_to_ms(starts[first_chunk[chapter.first_turn]], stitched.sample_rate))
            for chapter in plan.episode.chapters]


def episode_tags(plan: RenderPlan, stitched: StitchResult, delivery: EpisodeDelivery, duration_samples: int,
                 *, audiobook: bool = False) -> TagSet:
    """The tags every encoded file of this episode carries."""
    meta = delivery.metadata
    total_ms = samples_to_ms(duration_samples, stitched.sample_rate)
    starts = chapter_times_ms(plan, stitched)
    if starts and starts[0][1] > 0:
        starts[0] = (starts[0][0], 0)  # the lead-in belongs to the first chapter
    urls = [chapter.url for chapter in plan.episode.chapters]
    return TagSet(
        title=meta.title or plan.episode.meta.title, artist=meta.author,
        album=delivery.show.title if delivery.show else None, track=meta.number, disc=meta.season,
        date=meta.publish_date, language=meta.language or plan.episode.meta.language, comment=meta.description,
        copyright=meta.copyright, genre="Audiobook" if audiobook else ("Podcast" if delivery.show else None),
        explicit=meta.explicit, cover=delivery.cover,
        chapters=chapters_from_starts(starts, total_ms, urls) if starts else (), audiobook=audiobook)


def chapter_entries(plan: RenderPlan, stitched: StitchResult) -> list[ChapterEntry]:
    """Chapters for ``chapters.json``, with each chapter's ``url`` / ``image`` where the script gives them."""
    first_chunk = {}
    for job in plan.jobs:
        first_chunk.setdefault(job.turn, job.index)
    starts = {placement.index: placement.start_sample for placement in stitched.placements}
    # The first chapter starts the programme (lead-in included), as in the files' own tags.
    return [ChapterEntry(title=chapter.title, start_sample=starts[first_chunk[chapter.first_turn]] if number else 0,
                         url=chapter.url, image=chapter.image)
            for number, chapter in enumerate(plan.episode.chapters)]


def update_feed(store: Store, delivery: EpisodeDelivery, episode_id: str, manifest_key: str) -> ObjectInfo | None:
    """Register the episode with its show and rebuild the show's ``feed.xml`` (atomic swap)."""
    if delivery.show is None:
        return None
    register_episode(store, delivery.show.show_id, episode_id, manifest_key)
    return rebuild_feed(store, delivery.show)


def metadata_json(delivery: EpisodeDelivery) -> dict[str, object]:
    data = dict(delivery.metadata.to_manifest())
    if data.get("cover"):
        data["cover"] = {key: value for key, value in dict(data["cover"]).items() if key != "location"}
        data["cover"]["location"] = Path(delivery.metadata.cover.location).name
    return json.loads(json.dumps(data))


def tag_writer(plan: RenderPlan, stitched: StitchResult, duration_samples: int, fmt: str):
    """``after_encode`` for ``castline.audio.encode.deliver``: writes this episode's tags into a
    ``fmt`` file before it is measured (an ``m4b`` is tagged as an audiobook)."""
    from castline.delivery.tags import write_tags

    tags = episode_tags(plan, stitched, episode_metadata(plan), duration_samples, audiobook=fmt == "m4b")

    def write(path: Path) -> None:
        write_tags(path, fmt, tags)

    return write


def episode_audiobook(plan: RenderPlan, stitched: StitchResult, master_path: str | Path, duration_samples: int,
                      out_dir: str | Path):
    """``--package audiobook``: the mastered programme as one M4B plus ACX chapter MP3s, each
    chapter from its first turn to the next chapter (the whole book when there are none)."""
    from castline.delivery.audiobook import BookChapter, package_audiobook

    tags = episode_tags(plan, stitched, episode_metadata(plan), duration_samples, audiobook=True)
    entries = chapter_entries(plan, stitched)
    starts = [entry.start_sample for entry in entries] or [0]
    titles = [entry.title for entry in entries] or [tags.title or plan.episode.meta.title]
    ends = starts[1:] + [duration_samples]
    chapters = [BookChapter(title, start, end) for title, start, end in zip(titles, starts, ends)]
    return package_audiobook(master_path, chapters, out_dir, tags, stem=plan.episode.meta.episode_id)


def audiobook_manifest(package, stored: dict[str, ObjectInfo]) -> dict[str, object]:
    """The manifest's ``audiobook`` part: each stored file (``stored`` by local path) with its ACX readings."""
    def entry(path: str, kind: str) -> dict[str, object]:
        info = stored[path]
        return {"kind": kind, "key": info.key, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes}

    files = [entry(package.m4b_path, "m4b")]
    files += [{**entry(reading.path, "acx-chapter"), "acx": reading.to_manifest()} for reading in package.chapter_files]
    return {"passed": package.passed, "files": files}
