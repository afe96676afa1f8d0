"""Where a published episode lives in the store, and how a new release replaces the old one.

Layout under the store root::

    <episode>/manifest.json                      the live manifest: written last (the swap)
    <episode>/releases/<release>/episode.<ext>   the files one manifest lists, never changed after
    <episode>/releases/<release>/transcript.srt  (and .vtt, qa.json, report.html, plots)
    <episode>/releases/<release>/manifest.json   the same manifest, kept with its files

A reader fetches ``<episode>/manifest.json`` and then the objects it lists. Publishing uploads a
whole release first and verifies every object, and only then overwrites the live manifest (one
atomic PUT or rename), so a reader sees the old release or the new one, never a mix. The previous
release is kept (readers who fetched the old manifest a moment ago can still download); older
ones are deleted after the swap.

The release id is derived from the render key, so a render killed half-way through publishing
finds its own partial release on the next run and skips every object already stored intact.
"""

from __future__ import annotations

from castline.core.errors import StorageError
from castline.delivery.manifest import ReleasePointer
from castline.storage import Store

RELEASES_FOLDER = "releases"
RELEASE_ID_CHARS = 16


def release_id(render_key: str) -> str:
    """The release folder name for a render key (its first 16 hex digits)."""
    return render_key[:RELEASE_ID_CHARS]


def manifest_key(episode_id: str) -> str:
    """The live manifest's key."""
    return f"{episode_id}/manifest.json"


def release_prefix(episode_id: str, release: str) -> str:
    return f"{episode_id}/{RELEASES_FOLDER}/{release}"


def live_release(store: Store, episode_id: str) -> str | None:
    """The release the live manifest points at; None when there is none (or it is unreadable)."""
    try:
        return ReleasePointer.from_json(store.get_bytes(manifest_key(episode_id))).release
    except (StorageError, ValueError, TypeError, KeyError):
        return None


def stored_releases(store: Store, episode_id: str) -> list[str]:
    """Release ids that have at least one object stored, sorted."""
    prefix = f"{episode_id}/{RELEASES_FOLDER}/"
    return sorted({key[len(prefix):].split("/", 1)[0] for key in store.list(prefix) if key.startswith(prefix)})


def prune_releases(store: Store, episode_id: str, keep: set[str]) -> list[str]:
    """Delete every release of ``episode_id`` not in ``keep``; returns the deleted release ids."""
    deleted = []
    for release in stored_releases(store, episode_id):
        if release in keep:
            continue
        for key in list(store.list(release_prefix(episode_id, release) + "/")):
            store.delete(key)
        deleted.append(release)
    return deleted
