"""The same Store contract on a local folder and on an S3 server (rclone serve s3)."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from castline.core.errors import StorageError
from castline.storage import open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return open_store(tmp_path / "store")
    server = request.getfixturevalue("s3_env")
    return open_store(f"s3://{server.make_bucket()}/shows/main")


def test_write_read_list_delete(store, tmp_path):
    info = store.put_bytes(b"hello", "ep1/a.txt")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest() and info.bytes == 5
    assert info.uri == store.uri_for("ep1/a.txt") and info.uri.endswith("/ep1/a.txt")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(3_000_000))
    big = store.put_file(source, "ep1/big.bin")
    assert big.sha256 == hashlib.sha256(source.read_bytes()).hexdigest() and big.bytes == 3_000_000
    store.put_bytes(b"other", "ep10/c.txt")
    store.put_bytes(b"chunk", "_cache/chunks/ab/abc.flac")

    assert store.get_bytes("ep1/a.txt") == b"hello"
    assert store.info("ep1/big.bin") == big
    assert store.exists("ep1/a.txt") and not store.exists("ep1/nope.txt") and not store.exists("ep2/a.txt")
    assert list(store.list("ep1")) == ["ep1/a.txt", "ep1/big.bin"]
    assert list(store.list("ep1/")) == ["ep1/a.txt", "ep1/big.bin"]
    assert list(store.list()) == ["_cache/chunks/ab/abc.flac", "ep1/a.txt", "ep1/big.bin", "ep10/c.txt"]
    assert list(store.list("nothing")) == []
    with store.local_copy("ep1/big.bin") as path:
        assert path.read_bytes() == source.read_bytes()

    store.delete("ep1/a.txt")
    store.delete("ep1/a.txt")  # deleting twice is fine
    assert not store.exists("ep1/a.txt")
    assert list(store.list("ep1")) == ["ep1/big.bin"]


def test_copy_verify_and_read_back(store):
    original = store.put_bytes(b"episode audio", "ep/episode.flac")
    copied = store.copy("ep/episode.flac", "ep/releases/r1/episode.flac")
    assert copied.sha256 == original.sha256 and copied.bytes == original.bytes
    assert store.get_bytes("ep/releases/r1/episode.flac") == b"episode audio"
    assert store.info("ep/releases/r1/episode.flac").sha256 == original.sha256
    assert store.read_back_sha256("ep/episode.flac") == original.sha256
    store.verify("ep/episode.flac", original.sha256)
    with pytest.raises(StorageError, match="checksum mismatch for .*ep/episode.flac"):
        store.verify("ep/episode.flac", "0" * 64)


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", ".hidden", "a\\b", ""])
def test_keys_that_could_escape_are_refused(store, key):
    with pytest.raises(StorageError):
        store.put_bytes(b"x", key)
    with pytest.raises(StorageError):
        store.exists(key)


def test_missing_object_is_one_line_naming_it(store):
    for read in (store.get_bytes, store.info, store.read_back_sha256):
        with pytest.raises(StorageError, match=r"object not found: .*/nope/x\.txt$"):
            read("nope/x.txt")
    with pytest.raises(StorageError, match="object not found"):
        with store.local_copy("nope/x.txt"):
            pass


def test_cleanup_of_killed_writes_is_safe_on_a_clean_store(store):
    store.put_bytes(b"1", "ep/a.txt")
    assert store.cleanup_incomplete_uploads("ep", older_than_s=0) == 0
    assert list(store.list()) == ["ep/a.txt"]


def test_local_cleanup_removes_only_stale_temp_files(tmp_path):
    store = open_store(tmp_path)
    store.put_bytes(b"1", "ep/a.txt")
    stale = tmp_path / "ep" / ".castline-tmp-dead-a.txt"
    fresh = tmp_path / "ep" / ".castline-tmp-live-b.txt"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    assert store.cleanup_incomplete_uploads("ep") == 1
    assert not stale.exists() and fresh.exists()
    assert list(store.list()) == ["ep/a.txt"]
