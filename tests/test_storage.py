import hashlib

import pytest

from castline.core.errors import StorageError
from castline.storage import open_store, validate_key


@pytest.mark.parametrize("key", ["../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ".hidden", "a\\b", "",
                                 "ep/.git/config", "_x/y", "a/b\x00c"])
def test_keys_that_could_escape_or_hide_are_refused(key):
    with pytest.raises(StorageError):
        validate_key(key)


def test_cache_prefix_is_the_only_underscore_root():
    assert validate_key("_cache/chunks/ab/abc.flac")
    with pytest.raises(StorageError):
        validate_key("ep/_cache/x")


def test_put_get_roundtrip_with_checksums(tmp_path):
    store = open_store(tmp_path / "out")
    info = store.put_bytes(b"hello", "ep1/a.txt")
    assert info.sha256 == hashlib.sha256(b"hello").hexdigest() and info.bytes == 5
    assert store.get_bytes("ep1/a.txt") == b"hello"
    assert store.info("ep1/a.txt").sha256 == info.sha256
    source = tmp_path / "src.bin"
    source.write_bytes(b"x" * 3_000_000)
    info = store.put_file(source, "ep1/big.bin")
    assert info.bytes == 3_000_000
    assert list(store.list("ep1")) == ["ep1/a.txt", "ep1/big.bin"]
    assert info.uri.startswith("file://") and info.uri.endswith("/ep1/big.bin")


def test_file_uri_and_path_open_the_same_store(tmp_path):
    by_path = open_store(tmp_path)
    by_uri = open_store(tmp_path.as_uri())
    by_path.put_bytes(b"1", "k")
    assert by_uri.get_bytes("k") == b"1"


def test_failed_write_leaves_no_file_and_no_temp(tmp_path):
    store = open_store(tmp_path)

    class Boom(Exception):
        pass

    class Exploding:
        def __init__(self):
            self.calls = 0

        def read(self, size):
            self.calls += 1
            if self.calls > 1:
                raise Boom()
            return b"partial"

    source = tmp_path / "src"
    source.write_bytes(b"x" * 10)
    import builtins

    real_open = builtins.open

    def fake_open(path, mode="r", *args, **kwargs):
        if str(path) == str(source):
            return _Ctx(Exploding())
        return real_open(path, mode, *args, **kwargs)

    class _Ctx:
        def __init__(self, inner):
            self.inner = inner

        def __enter__(self):
            return self.inner

        def __exit__(self, *exc):
            return False

    builtins.open = fake_open
    try:
        with pytest.raises(Boom):
            store.put_file(source, "ep/final.wav")
    finally:
        builtins.open = real_open
    assert not store.exists("ep/final.wav")
    assert [p.name for p in (tmp_path / "ep").iterdir()] == []


def test_unsupported_scheme_is_one_clear_line():
    with pytest.raises(StorageError, match="unsupported storage location"):
        open_store("gopher://x/y")


def test_missing_object_error_names_the_uri(tmp_path):
    store = open_store(tmp_path)
    with pytest.raises(StorageError, match="object not found: file://"):
        store.get_bytes("nope/x")
