"""Is the published episode already what this plan would produce? Then nothing needs to run."""

from __future__ import annotations

import json
from dataclasses import asdict

from castline import __version__
from castline.core.errors import StorageError
from castline.core.hashing import content_hash
from castline.delivery.releases import manifest_key
from castline.render.plan import RenderPlan
from castline.render.stitch import StitchSettings
from castline.storage import Store


def render_key(plan: RenderPlan, settings: StitchSettings) -> str:
    """Content hash of everything that shapes the published files: chunk keys and joins, episode
    metadata, chapters, speaker names, preset, formats, stitch settings and castline's version."""
    episode = plan.episode
    return content_hash({
        "castline": __version__,
        "jobs": [[job.key, job.turn, job.position, job.speaker, job.boundary.value, job.pause_before_ms, job.text]
                 for job in plan.jobs],
        "meta": asdict(episode.meta),
        "chapters": [asdict(chapter) for chapter in episode.chapters],
        "cast": [asdict(entry) for entry in episode.cast],
        "voices": [voice.profile_hash for voice in plan.voices],
        "preset": plan.preset.to_manifest(),
        "formats": sorted(plan.options.formats),
        "stitch": asdict(settings),
        "qa": [plan.options.qa.policy, plan.options.qa.fingerprint()],
    })


def current_manifest_uri(store: Store, plan: RenderPlan, key: str) -> str | None:
    """The live manifest's URI if it carries ``key`` and every file it lists is intact
    (present, same SHA-256 and size); otherwise None."""
    location = manifest_key(plan.episode.meta.episode_id)
    if not store.exists(location):
        return None
    try:
        manifest = json.loads(store.get_bytes(location))
        if manifest.get("render", {}).get("render_key") != key:
            return None
        listed = manifest["files"] + manifest["transcripts"] + manifest.get("qa", {}).get("files", [])
        for item in listed:
            stored = store.info(item["key"])
            if stored.sha256 != item["sha256"] or stored.bytes != item["bytes"]:
                return None
    except (ValueError, KeyError, TypeError, AttributeError, StorageError):
        return None
    return store.uri_for(location)
