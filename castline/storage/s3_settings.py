"""How castline talks to an S3-compatible store: endpoint, addressing, multipart sizes, retries.

Credentials, region and endpoint come from boto3's standard chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ``~/.aws/config``, ``AWS_ENDPOINT_URL``, instance
roles …). ``S3Settings`` only holds what castline adds on top; ``S3Settings.from_env()`` reads
the ``CASTLINE_S3_*`` variables, and CLI flags can override fields with ``dataclasses.replace``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Mapping

from castline.core.errors import StorageError

ADDRESSING_STYLES = ("auto", "path", "virtual")
RETRY_MODES = ("standard", "adaptive")
_MIB = 1024 * 1024
# S3's own floor for every part but the last.
MIN_PART_MB = 5

# Field name -> environment variable (all optional).
ENV_VARS = {
    "endpoint_url": "CASTLINE_S3_ENDPOINT_URL",
    "addressing": "CASTLINE_S3_ADDRESSING",
    "profile": "CASTLINE_S3_PROFILE",
    "region": "CASTLINE_S3_REGION",
    "multipart_threshold_mb": "CASTLINE_S3_MULTIPART_THRESHOLD_MB",
    "multipart_chunksize_mb": "CASTLINE_S3_MULTIPART_CHUNKSIZE_MB",
    "max_concurrency": "CASTLINE_S3_MAX_CONCURRENCY",
    "retry_mode": "CASTLINE_S3_RETRY_MODE",
    "max_attempts": "CASTLINE_S3_MAX_ATTEMPTS",
    "connect_attempts": "CASTLINE_S3_CONNECT_ATTEMPTS",
    "connect_timeout_s": "CASTLINE_S3_CONNECT_TIMEOUT_S",
    "read_timeout_s": "CASTLINE_S3_READ_TIMEOUT_S",
}


@dataclass(frozen=True)
class S3Settings:
    """castline's S3 options; ``None`` means "whatever boto3's standard configuration says".

    ``endpoint_url``: overrides ``AWS_ENDPOINT_URL`` and the profile's endpoint (MinIO, R2, Ceph,
    Garage, a local test server). ``addressing``: ``path`` (``host/bucket/key``, what most
    self-hosted servers need), ``virtual`` (``bucket.host/key``) or ``auto`` (path-style when a
    custom endpoint is configured, boto3's default otherwise). Objects larger than
    ``multipart_threshold_mb`` go up in ``multipart_chunksize_mb`` parts, ``max_concurrency`` at a
    time. Transient faults (5xx, throttling, resets, timeouts) are retried by botocore up to
    ``max_attempts`` in total; an endpoint that cannot be reached at all is given up after
    ``connect_attempts`` (at most ``max_attempts``) so a typo in the URL fails in seconds.
    """

    endpoint_url: str | None = None
    addressing: str = "auto"
    profile: str | None = None
    region: str | None = None
    multipart_threshold_mb: int = 64
    multipart_chunksize_mb: int = 16
    max_concurrency: int = 4
    retry_mode: str = "standard"
    max_attempts: int = 8
    connect_attempts: int = 3
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.endpoint_url is not None and not self.endpoint_url.startswith(("http://", "https://")):
            raise ValueError(f"endpoint URL must start with http:// or https:// (got '{self.endpoint_url}')")
        if self.addressing not in ADDRESSING_STYLES:
            raise ValueError(f"addressing must be one of {', '.join(ADDRESSING_STYLES)} (got '{self.addressing}')")
        if self.retry_mode not in RETRY_MODES:
            raise ValueError(f"retry mode must be one of {', '.join(RETRY_MODES)} (got '{self.retry_mode}')")
        if self.multipart_chunksize_mb < MIN_PART_MB:
            raise ValueError(f"multipart chunk size must be at least {MIN_PART_MB} MB (S3's minimum part size)")
        if self.multipart_threshold_mb < MIN_PART_MB:
            raise ValueError(f"multipart threshold must be at least {MIN_PART_MB} MB")
        for name in ("max_concurrency", "max_attempts", "connect_attempts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0:
            raise ValueError("timeouts must be positive")

    @property
    def multipart_threshold_bytes(self) -> int:
        return self.multipart_threshold_mb * _MIB

    @property
    def multipart_chunksize_bytes(self) -> int:
        return self.multipart_chunksize_mb * _MIB

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> S3Settings:
        """Defaults overridden by any ``CASTLINE_S3_*`` variable that is set and non-empty."""
        environ = os.environ if environ is None else environ
        types = {field.name: field.type for field in fields(cls)}
        values: dict[str, object] = {}
        for name, variable in ENV_VARS.items():
            raw = environ.get(variable, "").strip()
            if not raw:
                continue
            kind = types[name]
            try:
                if kind == "int":
                    values[name] = int(raw)
                elif kind == "float":
                    values[name] = float(raw)
                else:
                    values[name] = raw.lower() if name in ("addressing", "retry_mode") else raw
            except ValueError as error:
                raise StorageError(f"{variable}: expected a number, got '{raw}'") from error
        for name, value in values.items():
            try:
                cls(**{name: value})
            except ValueError as error:
                raise StorageError(f"{ENV_VARS[name]}: {error}") from error
        try:
            return cls(**values)
        except ValueError as error:
            raise StorageError(f"CASTLINE_S3_* settings: {error}") from error
