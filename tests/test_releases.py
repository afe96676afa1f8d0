"""Release layout and the verified writer: what publishing relies on to never show a half-published episode."""

from __future__ import annotations

import json

import pytest

from castline.core.errors import StorageError
from castline.delivery.publish import _VerifiedWriter
from castline.delivery.releases import live_release, manifest_key, prune_releases, release_id, release_prefix, stored_releases
from castline.storage.local import LocalStore


class _CorruptingStore(LocalStore):
    """Stores one byte less than it was given: an upload that 'succeeded' but is not intact."""

    def put_bytes(self, data: bytes, key: str):
        return super().put_bytes(data[:-1], key)


class _CountingStore(LocalStore):
    def __init__(self, root) -> None:
        super().__init__(root)
        self.puts: list[str] = []

    def put_bytes(self, data: bytes, key: str):
        self.puts.append(key)
        return super().put_bytes(data, key)

    def put_file(self, local_path, key: str):
        self.puts.append(key)
        return super().put_file(local_path, key)


def test_release_id_is_derived_from_the_render_key():
    key = "ab" * 32
    assert release_id(key) == key[:16]
    assert release_prefix("ep", release_id(key)) == f"ep/releases/{key[:16]}"
    assert manifest_key("ep") == "ep/manifest.json"


def test_writer_skips_objects_already_stored_intact(tmp_path):
    store = _CountingStore(tmp_path)
    local = tmp_path / "episode.wav"
    local.write_bytes(b"RIFF" + bytes(range(200)))
    first = _VerifiedWriter(store)
    first.put_file(local, "ep/releases/r1/episode.wav")
    first.put_bytes(b"1\n00:00:00,000 --> 00:00:01,000\nhi\n", "ep/releases/r1/transcript.srt")
    assert (first.uploaded, first.reused) == (2, 0)
    # A second run after a kill: identical objects are not uploaded again ...
    again = _VerifiedWriter(store)
    again.put_file(local, "ep/releases/r1/episode.wav")
    again.put_bytes(b"1\n00:00:00,000 --> 00:00:01,000\nhi\n", "ep/releases/r1/transcript.srt")
    assert (again.uploaded, again.reused) == (0, 2)
    assert len(store.puts) == 2
    # ... but a different one is.
    info = again.put_bytes(b"changed", "ep/releases/r1/transcript.srt")
    assert again.uploaded == 1 and info.bytes == len(b"changed")


def test_writer_refuses_an_object_that_did_not_store_intact(tmp_path):
    writer = _VerifiedWriter(_CorruptingStore(tmp_path))
    with pytest.raises(StorageError, match="did not store intact"):
        writer.put_bytes(b"manifest body", "ep/releases/r1/transcript.srt")


def test_prune_keeps_the_live_and_previous_release(tmp_path):
    store = LocalStore(tmp_path)
    for release in ("r1", "r2", "r3"):
        store.put_bytes(b"audio " + release.encode(), f"ep/releases/{release}/episode.wav")
        store.put_bytes(b"{}", f"ep/releases/{release}/manifest.json")
    store.put_bytes(json.dumps({"release": "r3"}).encode(), "ep/manifest.json")
    assert live_release(store, "ep") == "r3"
    assert stored_releases(store, "ep") == ["r1", "r2", "r3"]
    assert prune_releases(store, "ep", keep={"r3", "r2"}) == ["r1"]
    assert stored_releases(store, "ep") == ["r2", "r3"]
    assert store.exists("ep/manifest.json")


def test_no_live_release_without_a_readable_manifest(tmp_path):
    store = LocalStore(tmp_path)
    assert live_release(store, "ep") is None
    store.put_bytes(b"not json", "ep/manifest.json")
    assert live_release(store, "ep") is None
