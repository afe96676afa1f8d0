"""S3Store against real S3 protocol servers on 127.0.0.1: rclone serve s3 (enforces SigV4) and
moto's server (AWS-like multipart), plus a fault-injecting proxy between client and server."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from castline.core.errors import StorageError
from castline.storage import S3Settings, fetch_input, open_store
from castline.storage.s3 import SHA256_META, parse_s3_uri, s3_client
from conftest import point_boto3_at
from fault_proxy import FaultProxy
from s3_servers import free_port

pytest.importorskip("boto3")

SMALL_PARTS = S3Settings(multipart_threshold_mb=5, multipart_chunksize_mb=5)


def _random_file(path: Path, size: int, seed: int = 0) -> Path:
    import random

    path.write_bytes(random.Random(seed).randbytes(size))
    return path


def _pending_uploads(client, bucket: str) -> list[str]:
    from botocore.exceptions import ClientError

    try:
        return [item["Key"] for item in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    except ClientError as error:  # rclone's way of saying "none", until its first upload
        if error.response["Error"]["Code"] == "NoSuchUpload":
            return []
        raise


def _files_under(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


# --- checksums ------------------------------------------------------------------------------

def test_sha256_is_stored_as_metadata_and_read_case_insensitively(s3_env):
    bucket = s3_env.make_bucket()
    store = open_store(f"s3://{bucket}/p")
    info = store.put_bytes(b"payload", "ep/a.json")
    head = s3_env.client().head_object(Bucket=bucket, Key="p/ep/a.json")
    # rclone Title-Cases user metadata; castline must still find it.
    assert head["Metadata"] == {"Castline-Sha256": info.sha256}
    assert head["ContentType"] == "application/json"
    assert store.info("ep/a.json").sha256 == info.sha256


def test_corrupted_object_is_caught_on_read_back(s3_env):
    bucket = s3_env.make_bucket()
    store = open_store(f"s3://{bucket}")
    # Another writer replaced the bytes but left a stale checksum.
    s3_env.client().put_object(Bucket=bucket, Key="ep/a.wav", Body=b"tampered",
                               Metadata={SHA256_META: hashlib.sha256(b"original").hexdigest()})
    with pytest.raises(StorageError, match=r"checksum mismatch reading s3://.*/ep/a\.wav"):
        store.get_bytes("ep/a.wav")
    with pytest.raises(StorageError, match="checksum mismatch"):
        with store.local_copy("ep/a.wav"):
            pass
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.verify("ep/a.wav", hashlib.sha256(b"original").hexdigest())


def test_object_without_metadata_is_hashed(s3_env):
    bucket = s3_env.make_bucket()
    s3_env.client().put_object(Bucket=bucket, Key="ep/foreign.txt", Body=b"from another tool")
    info = open_store(f"s3://{bucket}").info("ep/foreign.txt")
    assert info.sha256 == hashlib.sha256(b"from another tool").hexdigest() and info.bytes == 17


def test_multipart_upload_on_moto_verifies_on_read_back(moto_s3, monkeypatch, tmp_path):
    point_boto3_at(moto_s3, monkeypatch)
    bucket = moto_s3.make_bucket()
    store = open_store(f"s3://{bucket}/shows", SMALL_PARTS)
    source = _random_file(tmp_path / "episode.wav", 12 * 1024 * 1024 + 123)
    info = store.put_file(source, "ep/episode.wav")
    head = moto_s3.client().head_object(Bucket=bucket, Key="shows/ep/episode.wav")
    assert head["ETag"].strip('"').endswith("-3")  # three parts: 5 + 5 + 2 MB
    assert head["Metadata"][SHA256_META] == info.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert store.read_back_sha256("ep/episode.wav") == info.sha256
    with store.local_copy("ep/episode.wav") as path:
        assert path.stat().st_size == info.bytes
    store.verify("ep/episode.wav", info.sha256)


# --- failures: one line, no secret, fast -----------------------------------------------------

def _one_line(error: StorageError) -> str:
    text = str(error)
    assert "\n" not in text and "Traceback" not in text
    return text


def test_wrong_secret_is_one_clear_line_without_the_secret(s3_server, monkeypatch):
    bucket = s3_server.make_bucket()
    wrong = "WRONG-secret-4f1c9e0b7a"
    point_boto3_at(s3_server, monkeypatch, AWS_SECRET_ACCESS_KEY=wrong)
    store = open_store(f"s3://{bucket}/shows")
    calls = [lambda: store.exists("ep/manifest.json"), lambda: store.put_bytes(b"x", "ep/a.txt"),
             lambda: store.get_bytes("ep/a.txt"), lambda: list(store.list("ep")), lambda: store.info("ep/a.txt")]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        text = _one_line(caught.value)
        assert text.startswith("invalid credentials: signature does not match") and bucket in text
        chain = [caught.value, caught.value.__cause__, caught.value.__context__]
        for item in chain:
            assert wrong not in str(item) and wrong not in repr(item)
            assert s3_server.access_key not in str(item)


def test_unknown_access_key_is_named_as_such(s3_server, monkeypatch):
    bucket = s3_server.make_bucket()
    point_boto3_at(s3_server, monkeypatch, AWS_ACCESS_KEY_ID="nobody-knows-me")
    with pytest.raises(StorageError) as caught:
        open_store(f"s3://{bucket}").put_bytes(b"x", "a.txt")
    assert _one_line(caught.value).startswith("invalid credentials")
    assert "nobody-knows-me" not in str(caught.value)


def test_missing_credentials_say_how_to_set_them(s3_server, monkeypatch):
    point_boto3_at(s3_server, monkeypatch)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(StorageError, match="no usable S3 credentials for s3://any-bucket/k.txt"):
        open_store("s3://any-bucket").put_bytes(b"x", "k.txt")


def test_missing_bucket_names_the_bucket(s3_env):
    store = open_store("s3://no-such-bucket-here/shows")
    calls = [lambda: store.exists("ep/manifest.json"), lambda: store.put_bytes(b"x", "ep/a.txt"),
             lambda: store.get_bytes("ep/a.txt"), lambda: list(store.list("ep")), lambda: store.info("ep/a.txt")]
    for call in calls:
        with pytest.raises(StorageError) as caught:
            call()
        assert _one_line(caught.value) == f"bucket 'no-such-bucket-here' does not exist at {s3_env.endpoint}"


def test_unreachable_endpoint_fails_fast(s3_env, monkeypatch):
    dead = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("CASTLINE_S3_ENDPOINT_URL", dead)
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        open_store("s3://bucket/shows").exists("ep/manifest.json")
    assert _one_line(caught.value) == f"cannot reach endpoint {dead} (for s3://bucket/shows/ep/manifest.json)"
    assert time.monotonic() - started < 5


def test_settings_errors_name_the_variable(monkeypatch):
    monkeypatch.setenv("CASTLINE_S3_ADDRESSING", "sideways")
    with pytest.raises(StorageError, match="^CASTLINE_S3_ADDRESSING: addressing must be one of"):
        open_store("s3://bucket/x")
    monkeypatch.setenv("CASTLINE_S3_ADDRESSING", "path")
    monkeypatch.setenv("CASTLINE_S3_MULTIPART_THRESHOLD_MB", "lots")
    with pytest.raises(StorageError, match="^CASTLINE_S3_MULTIPART_THRESHOLD_MB: expected a number"):
        open_store("s3://bucket/x")
    monkeypatch.setenv("CASTLINE_S3_MULTIPART_THRESHOLD_MB", "8")
    assert open_store("s3://bucket/x").settings == S3Settings(addressing="path", multipart_threshold_mb=8)
    with pytest.raises(ValueError, match="at least 5 MB"):
        S3Settings(multipart_chunksize_mb=1)


def test_unknown_profile_is_named(s3_env, monkeypatch):
    monkeypatch.setenv("CASTLINE_S3_PROFILE", "no-such-profile")
    with pytest.raises(StorageError) as caught:
        open_store("s3://bucket/x").exists("a.txt")
    assert _one_line(caught.value) == ("cannot configure S3 client: AWS profile 'no-such-profile' not found "
                                       "(needed for s3://bucket)")


def test_addressing_is_path_style_for_a_custom_endpoint(s3_env):
    assert s3_client(S3Settings()).meta.config.s3 == {"addressing_style": "path"}
    assert s3_client(S3Settings(addressing="virtual")).meta.config.s3 == {"addressing_style": "virtual"}


@pytest.mark.parametrize("location", ["s3://ab", "s3://bucket/a/../b", "s3://bucket/a//b", "s3://bucket/a?x=1",
                                      "s3://-bucket/x", "s3://bu cket/x"])
def test_bad_s3_locations_are_refused(location):
    with pytest.raises(StorageError, match="invalid S3"):
        open_store(location)


def test_location_parsing():
    assert parse_s3_uri("s3://bucket") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/") == ("bucket", "")
    assert parse_s3_uri("s3://bucket/shows/main/") == ("bucket", "shows/main")
    assert open_store("s3://bucket/shows/").uri_for("ep/a.txt") == "s3://bucket/shows/ep/a.txt"


# --- faults, atomicity, leftovers ------------------------------------------------------------

def test_twenty_percent_faults_still_complete_and_verify(s3_server, monkeypatch, tmp_path):
    bucket = s3_server.make_bucket()
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    with FaultProxy(port, fault_rate=0.2, seed=7) as proxy:
        point_boto3_at(s3_server, monkeypatch, AWS_ENDPOINT_URL=proxy.endpoint)
        store = open_store(f"s3://{bucket}/shows", SMALL_PARTS)
        written = {}
        for index in range(12):
            data = os.urandom(20_000 + index)
            written[f"_cache/chunks/{index:02d}.flac"] = store.put_bytes(data, f"_cache/chunks/{index:02d}.flac")
        for index, size in enumerate([1_500_000, 2_000_000, 11 * 1024 * 1024]):
            source = _random_file(tmp_path / f"f{index}.bin", size, seed=index)
            written[f"ep/f{index}.bin"] = store.put_file(source, f"ep/f{index}.bin")
        written["ep/manifest.json"] = store.put_bytes(b'{"files": []}', "ep/manifest.json")
        operations = len(written)
        for key, info in written.items():
            assert store.exists(key)
            assert store.info(key) == info
            if info.bytes < 1_000_000:
                assert hashlib.sha256(store.get_bytes(key)).hexdigest() == info.sha256
            else:
                with store.local_copy(key) as path:
                    assert path.stat().st_size == info.bytes
            store.verify(key, info.sha256)
            operations += 4
        assert sorted(store.list()) == sorted(written)
    assert operations >= 30
    assert proxy.counts["slowdown"] + proxy.counts["internal"] > 0
    assert proxy.counts["reset_before"] + proxy.counts["reset_after"] > 0
    assert proxy.faults >= 10, proxy.counts
    # Nothing but the objects written: no temporary or partial files on the server's disk.
    assert _files_under(s3_server.root / bucket) == sorted(f"shows/{key}" for key in written)


def test_failed_multipart_upload_leaves_no_object_and_no_upload(s3_server, monkeypatch, tmp_path):
    bucket = s3_server.make_bucket()
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    store_settings = S3Settings(multipart_threshold_mb=5, multipart_chunksize_mb=5, max_attempts=2,
                                max_concurrency=1)

    def part_two_always_fails(method: str, target: str) -> str | None:
        return "internal" if method == "PUT" and "partNumber=2" in target else None

    with FaultProxy(port, fault_rate=0.0, rule=part_two_always_fails) as proxy:
        point_boto3_at(s3_server, monkeypatch, AWS_ENDPOINT_URL=proxy.endpoint)
        store = open_store(f"s3://{bucket}/shows", store_settings)
        store.put_bytes(b"{}", "ep/manifest.json")
        source = _random_file(tmp_path / "episode.wav", 12 * 1024 * 1024)
        with pytest.raises(StorageError) as caught:
            store.put_file(source, "ep/episode.wav")
        assert _one_line(caught.value).startswith("S3 server error HTTP 500 InternalError on ")
        assert f"s3://{bucket}/shows/ep/episode.wav" in str(caught.value)
        assert proxy.counts["internal"] == 2  # max_attempts counts the first try
        assert not store.exists("ep/episode.wav")
        assert list(store.list()) == ["ep/manifest.json"]
    # boto3 aborted the upload: nothing pending, nothing partial on disk.
    assert _pending_uploads(s3_server.client(), bucket) == []
    assert _files_under(s3_server.root / bucket) == ["shows/ep/manifest.json"]


def test_lost_answer_to_complete_multipart_upload_is_recognised(s3_server, monkeypatch, tmp_path):
    """The server completed the upload but the answer was lost; botocore's retry then gets
    NoSuchUpload (rclone, like AWS after a while). The object is there with our checksum: success."""
    bucket = s3_server.make_bucket()
    port = int(s3_server.endpoint.rsplit(":", 1)[1])
    lost = []

    def lose_first_complete(method: str, target: str) -> str | None:
        if method == "POST" and "uploadId=" in target and not lost:
            lost.append(target)
            return "reset_after"
        return None

    with FaultProxy(port, fault_rate=0.0, rule=lose_first_complete) as proxy:
        point_boto3_at(s3_server, monkeypatch, AWS_ENDPOINT_URL=proxy.endpoint)
        store = open_store(f"s3://{bucket}", SMALL_PARTS)
        source = _random_file(tmp_path / "episode.wav", 11 * 1024 * 1024, seed=3)
        info = store.put_file(source, "ep/episode.wav")
        store.verify("ep/episode.wav", info.sha256)
    assert lost and proxy.counts["reset_after"] == 1


def test_upload_orphaned_by_a_kill_is_invisible_and_cleaned_up(s3_env):
    bucket = s3_env.make_bucket()
    client = s3_env.client()
    # What kill -9 in the middle of a multipart upload leaves: an upload with parts, never completed.
    upload = client.create_multipart_upload(Bucket=bucket, Key="shows/ep/episode.wav")
    client.upload_part(Bucket=bucket, Key="shows/ep/episode.wav", UploadId=upload["UploadId"], PartNumber=1,
                       Body=b"x" * (5 * 1024 * 1024))
    client.create_multipart_upload(Bucket=bucket, Key="other/x.bin")
    store = open_store(f"s3://{bucket}/shows")
    assert list(store.list()) == [] and not store.exists("ep/episode.wav")
    # rclone keeps the parts in a hidden file on its disk; it is never listed as an object.
    assert [Path(name).name[:23] for name in _files_under(s3_env.root / bucket)] == [".rclone_temp_multipart_"]
    assert store.cleanup_incomplete_uploads("ep") == 0  # young: may be another machine's upload
    assert store.cleanup_incomplete_uploads("ep", older_than_s=0) == 1
    assert _pending_uploads(client, bucket) == ["other/x.bin"]  # outside the prefix: untouched
    assert _files_under(s3_env.root / bucket) == []


# --- inputs from s3:// -----------------------------------------------------------------------

def test_fetch_input_reads_a_script_and_a_voice_folder(s3_env, tmp_path):
    bucket = s3_env.make_bucket()
    client = s3_env.client()
    client.put_object(Bucket=bucket, Key="scripts/My Episode.yaml", Body=b"episode: {id: x}\n")
    client.put_object(Bucket=bucket, Key="voices/alice/voice.yaml", Body=b"name: alice\n")
    client.put_object(Bucket=bucket, Key="voices/alice/ref/reference.wav", Body=b"RIFF0000")
    client.put_object(Bucket=bucket, Key="voices/alice2/voice.yaml", Body=b"name: alice2\n")

    with fetch_input(f"s3://{bucket}/scripts/My Episode.yaml") as script:
        assert script.name == "My Episode.yaml" and script.read_bytes() == b"episode: {id: x}\n"
    assert not script.exists()
    with fetch_input(f"s3://{bucket}/voices/alice") as voice:
        assert voice.name == "alice"
        assert _files_under(voice) == ["ref/reference.wav", "voice.yaml"]
    assert not voice.exists()
    with fetch_input(f"s3://{bucket}/voices/") as library:
        assert _files_under(library) == ["alice/ref/reference.wav", "alice/voice.yaml", "alice2/voice.yaml"]
    with pytest.raises(StorageError, match=f"nothing found at s3://{bucket}/voices/bob"):
        with fetch_input(f"s3://{bucket}/voices/bob"):
            pass
    local = tmp_path / "episode.yaml"
    with fetch_input(local) as same, fetch_input(local.as_uri()) as same_uri:
        assert same == local and same_uri == local
