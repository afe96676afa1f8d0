"""An S3-compatible bucket (AWS, MinIO, R2, Ceph, Garage, ``rclone serve s3``) as a castline store.

Layout: ``s3://bucket/prefix`` is the root; a castline key ``ep1/manifest.json`` is the object
``prefix/ep1/manifest.json``. Every object carries its SHA-256 as user metadata
(``x-amz-meta-castline-sha256``), which ``info`` returns and every read checks.

Atomicity comes from S3 itself: a PutObject or CompleteMultipartUpload makes the whole object
visible at once, so readers never see a partial object and no temporary object is ever written
under the prefix. A failed multipart upload is aborted by boto3; one orphaned by ``kill -9`` is
invisible to readers and is removed by ``cleanup_incomplete_uploads``.

boto3 is imported lazily: a store that is never used costs nothing, and castline without the
``s3`` extra works for local folders.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import mimetypes
import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any, Iterator

from castline.core.errors import StorageError
from castline.storage.base import ObjectInfo, Store, validate_key
from castline.storage.s3_errors import describe, error_code, safe_endpoint
from castline.storage.s3_settings import S3Settings

SHA256_META = "castline-sha256"
_BLOCK = 1 << 20
_STREAM_ATTEMPTS = 3
_COPY_OBJECT_MAX = 5 * 1024**3
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
# Variables of boto3's standard chain that change which client we need.
_AWS_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
            "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_CONFIG_FILE",
            "AWS_SHARED_CREDENTIALS_FILE", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
            "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")
_EXTRA_TYPES = {".flac": "audio/flac", ".srt": "application/x-subrip", ".vtt": "text/vtt", ".opus": "audio/ogg",
                ".m4a": "audio/mp4", ".json": "application/json"}


def parse_s3_uri(location: str) -> tuple[str, str]:
    """``s3://bucket/a/b/`` -> ``("bucket", "a/b")``; refuses what could not be a bucket or prefix."""
    if not location.startswith("s3://"):
        raise StorageError(f"not an s3:// location: '{location}'")
    rest = location[len("s3://"):]
    if any(mark in rest for mark in ("?", "#", "\\")) or any(ord(char) < 32 for char in rest):
        raise StorageError(f"invalid S3 location '{location}' (no query, fragment, backslash or control characters)")
    bucket, _, prefix = rest.partition("/")
    if not (3 <= len(bucket) <= 255) or not all(char.isalnum() or char in "._-" for char in bucket) \
            or not bucket[0].isalnum():
        raise StorageError(f"invalid S3 bucket name '{bucket}' in '{location}'")
    segments = prefix.rstrip("/").split("/") if prefix.strip("/") else []
    for segment in segments:
        if segment in ("", ".", ".."):
            raise StorageError(f"invalid S3 prefix '{prefix}' in '{location}' (empty, '.' or '..' segment)")
    return bucket, "/".join(segments)


class _GiveUpWhenUnreachable:
    """A ``needs-retry`` hook: stop retrying after ``attempts`` when the endpoint cannot be reached
    at all (refused, unknown host, connect timeout). Resets and 5xx keep botocore's full budget;
    a wrong URL would otherwise spend it all before saying so."""

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    def __call__(self, attempts: int, caught_exception: BaseException | None = None, **_: Any) -> bool | None:
        from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError

        if isinstance(caught_exception, (EndpointConnectionError, ConnectTimeoutError)) and attempts >= self.attempts:
            return False
        return None


_CLIENTS: dict[str, Any] = {}
_CLIENTS_LOCK = threading.Lock()


def s3_client(settings: S3Settings, bucket: str = "?") -> Any:
    """One boto3 client per (settings, standard-chain environment); clients are thread-safe.
    ``bucket`` only names the bucket in a configuration error."""
    fingerprint = hashlib.sha256(repr((settings, [os.environ.get(name) for name in _AWS_ENV])).encode()).hexdigest()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(fingerprint)
        if client is None:
            client = _CLIENTS[fingerprint] = _make_client(settings, bucket)
        return client


def _make_client(settings: S3Settings, bucket: str) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as error:
        raise StorageError("s3:// locations need boto3: pip install 'castline[s3]'") from error

    custom = settings.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    try:
        session = boto3.session.Session(profile_name=settings.profile)
        region = settings.region or session.region_name or ("us-east-1" if custom else None)

        def build(addressing: str) -> Any:
            options: dict[str, Any] = dict(
                signature_version="s3v4",
                retries={"mode": settings.retry_mode, "total_max_attempts": settings.max_attempts},
                connect_timeout=settings.connect_timeout_s, read_timeout=settings.read_timeout_s,
                max_pool_connections=max(10, 2 * settings.max_concurrency + 2), tcp_keepalive=True)
            if addressing != "auto":
                options["s3"] = {"addressing_style": addressing}
            # botocore >= 1.36 adds CRC checksums to every upload and demands them on downloads by
            # default; MinIO/R2/Ceph/rclone versions disagree on them. castline checks its own
            # SHA-256 instead. AWS_*_CHECKSUM_* still win when set.
            if not os.environ.get("AWS_REQUEST_CHECKSUM_CALCULATION"):
                options["request_checksum_calculation"] = "when_required"
            if not os.environ.get("AWS_RESPONSE_CHECKSUM_VALIDATION"):
                options["response_checksum_validation"] = "when_required"
            made = session.client("s3", endpoint_url=settings.endpoint_url, region_name=region,
                                  config=Config(**options))
            made.meta.events.register_first("needs-retry.s3",
                                            _GiveUpWhenUnreachable(min(settings.connect_attempts,
                                                                       settings.max_attempts)))
            return made

        addressing = settings.addressing
        if addressing == "auto" and custom:
            addressing = "path"
        client = build(addressing)
        # An endpoint set in the profile (not in the environment) is only known now.
        host = (client.meta.endpoint_url or "").split("://", 1)[-1].split("/", 1)[0]
        if settings.addressing == "auto" and addressing == "auto" and not host.split(":")[0].endswith(
                ("amazonaws.com", "amazonaws.com.cn")):
            client = build("path")
        return client
    except Exception as error:  # ProfileNotFound, bad config files, invalid endpoint …
        raise StorageError(f"cannot configure S3 client: {describe(error, bucket=bucket)}") from error


def _boto_errors() -> tuple[type[BaseException], ...]:
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError
    from s3transfer.exceptions import RetriesExceededError, S3UploadFailedError

    return (BotoCoreError, ClientError, Boto3Error, RetriesExceededError, S3UploadFailedError)


def _streaming_errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import (ConnectionClosedError, IncompleteReadError, ReadTimeoutError,
                                     ResponseStreamingError)
    from urllib3.exceptions import HTTPError as URLLib3Error

    return (ResponseStreamingError, IncompleteReadError, ReadTimeoutError, ConnectionClosedError, URLLib3Error,
            ConnectionError)


def _content_type(key: str) -> str:
    suffix = PurePosixPath(key).suffix.lower()
    return _EXTRA_TYPES.get(suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"


def _hash_local(path: str | Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(_BLOCK), b""):
                digest.update(block)
                size += len(block)
    except OSError as error:
        raise StorageError(f"cannot read {path}: {error.strerror}") from error
    return digest.hexdigest(), size


def _stored_sha256(metadata: dict[str, str] | None) -> str | None:
    # rclone Title-Cases user metadata (Castline-Sha256); S3 lower-cases it.
    for name, value in (metadata or {}).items():
        if name.lower() == SHA256_META:
            return value.strip().lower()
    return None


class S3Store(Store):
    """Objects under ``s3://bucket/prefix``; see the module docstring for the guarantees."""

    def __init__(self, location: str, settings: S3Settings | None = None) -> None:
        self.bucket, self.prefix = parse_s3_uri(location)
        self.settings = settings if settings is not None else S3Settings.from_env()
        self.root_uri = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self._bucket_seen = False

    def __repr__(self) -> str:
        return f"S3Store({self.root_uri!r})"

    @property
    def client(self) -> Any:
        return s3_client(self.settings, self.bucket)

    @property
    def endpoint(self) -> str:
        return safe_endpoint(self.client.meta.endpoint_url)

    def _object_key(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _error(self, error: BaseException, key: str | None) -> StorageError:
        return self._fail(error, self._object_key(key) if key else self.prefix or None)

    def _fail(self, error: BaseException, name: str | None) -> StorageError:
        """The one-line error for a failed call on object ``name`` (full object key) or the bucket."""
        return StorageError(describe(error, bucket=self.bucket, key=name, endpoint=self.client.meta.endpoint_url))

    def _transfer_config(self) -> Any:
        from boto3.s3.transfer import TransferConfig

        return TransferConfig(multipart_threshold=self.settings.multipart_threshold_bytes,
                              multipart_chunksize=self.settings.multipart_chunksize_bytes,
                              max_concurrency=self.settings.max_concurrency, use_threads=True)

    # --- writing ---------------------------------------------------------------------------

    def put_file(self, local_path: str | Path, key: str) -> ObjectInfo:
        name = self._object_key(key)
        sha256, size = _hash_local(local_path)
        extra = {"Metadata": {SHA256_META: sha256}, "ContentType": _content_type(key)}
        try:
            self.client.upload_file(str(local_path), self.bucket, name, ExtraArgs=extra,
                                    Config=self._transfer_config())
        except _boto_errors() as error:
            # CompleteMultipartUpload succeeded but its answer was lost; the retry then finds no
            # upload. The object is there if it carries our checksum and size.
            if error_code(error) != "NoSuchUpload" or self._stored(name) != (sha256, size):
                raise self._error(error, key) from error
        return ObjectInfo(key=key, uri=self.uri_for(key), sha256=sha256, bytes=size)

    def put_bytes(self, data: bytes, key: str) -> ObjectInfo:
        name = self._object_key(key)
        sha256 = hashlib.sha256(data).hexdigest()
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=data, Metadata={SHA256_META: sha256},
                                   ContentType=_content_type(key))
        except _boto_errors() as error:
            raise self._error(error, key) from error
        return ObjectInfo(key=key, uri=self.uri_for(key), sha256=sha256, bytes=len(data))

    def copy(self, src_key: str, dst_key: str) -> ObjectInfo:
        """Server-side copy; the copy carries the source's SHA-256 (no bytes pass through here)."""
        source = self.info(src_key)
        metadata = {SHA256_META: source.sha256}
        copy_source = {"Bucket": self.bucket, "Key": self._object_key(src_key)}
        try:
            if source.bytes < _COPY_OBJECT_MAX:
                self.client.copy_object(Bucket=self.bucket, Key=self._object_key(dst_key), CopySource=copy_source,
                                        Metadata=metadata, MetadataDirective="REPLACE",
                                        ContentType=_content_type(dst_key))
            else:
                self.client.copy(copy_source, self.bucket, self._object_key(dst_key),
                                 ExtraArgs={"Metadata": metadata, "ContentType": _content_type(dst_key)},
                                 Config=self._transfer_config())
        except _boto_errors() as error:
            raise self._error(error, dst_key) from error
        return ObjectInfo(key=dst_key, uri=self.uri_for(dst_key), sha256=source.sha256, bytes=source.bytes)

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object_key(key))
        except _boto_errors() as error:
            raise self._error(error, key) from error

    def cleanup_incomplete_uploads(self, prefix: str = "", older_than_s: float = 3600.0) -> int:
        """Abort multipart uploads under ``prefix`` started more than ``older_than_s`` ago (left by a
        killed run; another machine's upload in progress is younger). Returns how many."""
        base = self._list_prefix(prefix)
        cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=older_than_s)
        aborted = 0
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=base)
            for page in pages:
                for upload in page.get("Uploads", []):
                    started = upload.get("Initiated")
                    if started is not None and started.tzinfo is None:
                        started = started.replace(tzinfo=dt.timezone.utc)
                    if started is None or started <= cutoff:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"],
                                                           UploadId=upload["UploadId"])
                        aborted += 1
        except _boto_errors() as error:
            # rclone answers NoSuchUpload when there are none; some servers do not list uploads.
            if error_code(error) in ("NoSuchUpload", "NotImplemented", "501"):
                return aborted
            raise self._error(error, None) from error
        return aborted

    # --- reading ---------------------------------------------------------------------------

    def _read_into(self, key: str, sink_factory: Any) -> tuple[str, str | None, int]:
        return self._read_object(self._object_key(key), sink_factory)

    def _read_object(self, name: str, sink_factory: Any) -> tuple[str, str | None, int]:
        """GET object ``name``, hashing as it streams into ``sink_factory()`` (a fresh sink per try);
        returns (sha256 of the bytes read, sha256 from metadata, size). Metadata and body come from
        the same response, so they always describe the same object version."""
        for attempt in range(_STREAM_ATTEMPTS):
            digest = hashlib.sha256()
            size = 0
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=name)
                stored = _stored_sha256(response.get("Metadata"))
                sink = sink_factory()
                body = response["Body"]
                try:
                    for block in iter(lambda: body.read(_BLOCK), b""):
                        digest.update(block)
                        size += len(block)
                        if sink is not None:
                            sink.write(block)
                finally:
                    body.close()
                return digest.hexdigest(), stored, size
            except _streaming_errors() as error:
                # The body broke off mid-stream (botocore retries only up to the headers).
                if attempt + 1 == _STREAM_ATTEMPTS:
                    raise self._fail(error, name) from error
            except _boto_errors() as error:
                raise self._missing_or(error, name) from error
        raise AssertionError("unreachable")

    def _checked(self, name: str, actual: str, stored: str | None) -> None:
        if stored is not None and stored != actual:
            raise StorageError(f"checksum mismatch reading s3://{self.bucket}/{name}: stored sha256 "
                               f"{stored[:16]}…, read {actual[:16]}…")

    def get_bytes(self, key: str) -> bytes:
        buffers: list[io.BytesIO] = []

        def fresh() -> io.BytesIO:
            buffers.append(io.BytesIO())
            return buffers[-1]

        actual, stored, _ = self._read_into(key, fresh)
        self._checked(self._object_key(key), actual, stored)
        return buffers[-1].getvalue()

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        name = self._object_key(key)
        folder = Path(tempfile.mkdtemp(prefix="castline-s3-"))
        try:
            path = self.download_object(name, folder / PurePosixPath(key).name)
            yield path
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def download_object(self, name: str, path: Path) -> Path:
        """Download object ``name`` (a full object key, not checked as a castline key: inputs may be
        named freely) to ``path``, checking the recorded SHA-256 when there is one."""
        handles: list[IO[bytes]] = []

        def fresh() -> IO[bytes]:
            for handle in handles:
                handle.close()
            handles.append(open(path, "wb"))
            return handles[-1]

        try:
            actual, stored, _ = self._read_object(name, fresh)
        finally:
            for handle in handles:
                handle.close()
        self._checked(name, actual, stored)
        return path

    def read_back_sha256(self, key: str) -> str:
        actual, _, _ = self._read_into(key, lambda: None)
        return actual

    def exists(self, key: str) -> bool:
        return self._head(self._object_key(key), missing_ok=True) is not None

    def exists_object(self, name: str) -> bool:
        """Like ``exists`` for a full object key that need not be a castline key (inputs)."""
        return self._head(name, missing_ok=True) is not None

    def info(self, key: str) -> ObjectInfo:
        head = self._head(self._object_key(key), missing_ok=False)
        stored = _stored_sha256(head.get("Metadata"))
        # Written by another tool, or by an rclone server that restarted (it keeps metadata in memory).
        sha256 = stored if stored is not None else self.read_back_sha256(key)
        return ObjectInfo(key=key, uri=self.uri_for(key), sha256=sha256, bytes=int(head.get("ContentLength", 0)))

    def _stored(self, name: str) -> tuple[str | None, int] | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=name)
        except _boto_errors():
            return None
        return _stored_sha256(head.get("Metadata")), int(head.get("ContentLength", 0))

    def _head(self, name: str, *, missing_ok: bool) -> dict[str, Any] | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)
        except _boto_errors() as error:
            code = error_code(error)
            if code in _NOT_FOUND and missing_ok:
                self._require_bucket()
                return None
            raise self._missing_or(error, name) from error

    def _missing_or(self, error: BaseException, name: str) -> StorageError:
        """A HEAD answer carries only a status: 404 may mean a missing bucket, 403 may mean a wrong
        secret. Ask once more with a request whose answer has an error code, for a precise line."""
        code = error_code(error)
        if code in _NOT_FOUND:
            self._require_bucket()
            return StorageError(f"object not found: s3://{self.bucket}/{name}")
        if code == "403":
            try:
                self.client.list_objects_v2(Bucket=self.bucket, Prefix=name, MaxKeys=1)
            except _boto_errors() as detail:
                return self._fail(detail, name)
        return self._fail(error, name)

    def _require_bucket(self) -> None:
        if self._bucket_seen:
            return
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except _boto_errors() as error:
            if error_code(error) in ("404", "NoSuchBucket", "NotFound"):
                raise StorageError(f"bucket '{self.bucket}' does not exist at {self.endpoint}") from error
            if error_code(error) not in ("403", "AccessDenied"):
                raise self._error(error, None) from error
        self._bucket_seen = True

    def _list_prefix(self, prefix: str) -> str:
        prefix = prefix.strip("/")
        if prefix:
            return self._object_key(prefix) + "/"
        return f"{self.prefix}/" if self.prefix else ""

    def list(self, prefix: str = "") -> Iterator[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        names = self.list_objects(self._list_prefix(prefix))
        return iter(sorted(name[len(root):] for name in names if name.startswith(root)))

    def list_objects(self, base: str) -> list[str]:
        """Full object keys starting with ``base`` (folder markers ending in '/' left out)."""
        names = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                names.extend(item["Key"] for item in page.get("Contents", []) if not item["Key"].endswith("/"))
        except _boto_errors() as error:
            raise self._fail(error, base.rstrip("/") or None) from error
        return sorted(names)
