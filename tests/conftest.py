"""Shared fixtures. Prefect's state goes to a throwaway folder for the whole session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# pytest-xdist: the workers share the machine's cores, so each worker's OpenMP and BLAS pools
# (torch, OpenBLAS) get its share of them, set before numpy or torch is loaded (subprocesses inherit
# it). With a pool per worker as wide as the machine, the threads of one worker spun waiting for
# cores the other held: the torch tests ran ~35 % longer beside another busy process. A user's
# OMP_NUM_THREADS stays; runs without workers (-n0) keep the libraries' defaults.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    os.environ.setdefault("OMP_NUM_THREADS",
                          str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

import numpy as np  # noqa: E402
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="castline-tests-"))
# pytest-xdist: each worker process has its own _SESSION_HOME (its own Prefect database, test
# harness, caches and servers on free ports). Workers inherit the controller's environment, so a
# folder the controller's conftest chose is replaced by the worker's own; a user's setting stays.
if os.environ.get("PYTEST_XDIST_WORKER"):
    for _name in ("CASTLINE_HOME", "XDG_CACHE_HOME"):
        if os.environ.get(_name, "").startswith(os.environ.get("CASTLINE_TESTS_CONTROLLER_HOME") or "\0"):
            del os.environ[_name]
else:
    os.environ["CASTLINE_TESTS_CONTROLLER_HOME"] = str(_SESSION_HOME)
# Before anything imports Prefect: its database, no telemetry, quiet console.
os.environ.setdefault("CASTLINE_HOME", str(_SESSION_HOME))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("XDG_CACHE_HOME", str(_SESSION_HOME / "cache"))
# CLI runs in tests never start castline's persistent server (tests/test_server.py does, explicitly).
os.environ.setdefault("CASTLINE_SERVER", "ephemeral")


def pytest_configure(config):
    # pytest-xdist hands files out in the order of pytest_collection_modifyitems only when told not
    # to reorder them itself: its own order (most tests first) left the kill-and-resume and cloning
    # files, a few tests of 20-70 s each, to the end of the run, one worker busy and the other idle.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    """Files with end-to-end (``slow``) tests run first, each file's tests in their own order.

    Under pytest-xdist (``make test``: ``--dist loadfile``) the long files then start at once and the
    many short ones fill in around them, instead of a long file starting last and running alone.
    Within each group, files with more tests go first (pytest-xdist's own rule), so the last files
    handed out are single short ones."""
    first, count = {}, {}
    for index, item in enumerate(items):
        first.setdefault(item.path, index)
        count[item.path] = count.get(item.path, 0) + 1
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: (item.path not in slow, -count[item.path], first[item.path]))


def _shared_dir() -> Path:
    configured = os.environ.get("CASTLINE_SHARED_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared data (EBU test files, corpus); beside the checkout in CI."""
    path = _shared_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path} (set CASTLINE_SHARED_DIR)")
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def voices_dir() -> Path:
    return REPO_ROOT / "voices"


def speech_like(seconds: float, sample_rate: int = 24_000, seed: int = 0, level_db: float = -20.0) -> np.ndarray:
    """A voiced-speech stand-in (float32): a gliding 110–190 Hz glottal-like harmonic series
    (−12 dB/octave), syllable-rate amplitude modulation, a little breath noise; RMS at ``level_db`` dBFS."""
    rng = np.random.default_rng(seed)
    count = int(seconds * sample_rate)
    time = np.arange(count) / sample_rate
    f0 = 150 + 40 * np.sin(2 * np.pi * rng.uniform(0.2, 0.6) * time + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    harmonics = sum(np.sin(k * phase) / k**2 for k in range(1, 24) if k * 190 < sample_rate / 2)
    envelope = 0.15 + 0.85 * np.abs(np.sin(2 * np.pi * 2.0 * time + rng.uniform(0, np.pi)))
    signal = harmonics * envelope + 0.01 * rng.standard_normal(count)
    signal /= np.sqrt(np.mean(signal ** 2)) + 1e-12
    return (signal * 10 ** (level_db / 20)).astype(np.float32)


@pytest.fixture(scope="session")
def prefect_api():
    """One Prefect test server for the whole session; yields its API URL so CLI subprocesses
    (``PREFECT_API_URL``) use it instead of starting their own."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield PREFECT_API_URL.value()


# --- S3-compatible test servers (127.0.0.1 only, stopped by PID) -----------------------------

_S3_ENV_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_ENDPOINT_URL_S3",
                   "AWS_REQUEST_CHECKSUM_CALCULATION", "AWS_RESPONSE_CHECKSUM_VALIDATION")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """``rclone serve s3`` over a temporary folder (enforces SigV4: wrong secrets really fail)."""
    pytest.importorskip("boto3")
    from s3_servers import start_rclone, stop

    try:
        server = start_rclone(tmp_path_factory.mktemp("rclone-s3") / "root")
    except RuntimeError as error:
        pytest.skip(f"rclone serve s3 unavailable: {error}")
    yield server
    stop(server.pid)


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server in a subprocess (in memory; closest to AWS for multipart uploads)."""
    pytest.importorskip("moto")
    from s3_servers import start_moto, stop

    server = start_moto()
    yield server
    stop(server.pid)


def point_boto3_at(server, monkeypatch, **extra: str) -> None:
    """boto3's standard variables for ``server``, isolated from the user's ~/.aws and from IMDS."""
    for name in _S3_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name in [name for name in os.environ if name.startswith("CASTLINE_S3_")]:
        monkeypatch.delenv(name)
    missing = str(_SESSION_HOME / "no-aws-config")
    monkeypatch.setenv("AWS_CONFIG_FILE", missing)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", missing)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in {**server.env(), **extra}.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    """The rclone server, with boto3's environment pointing at it for this test."""
    point_boto3_at(s3_server, monkeypatch)
    return s3_server


@pytest.fixture(scope="session")
def transcriber():
    """One Whisper base model for every test that hears audio (loading it takes seconds)."""
    from castline.qa.asr import Transcriber

    transcriber = Transcriber()
    yield transcriber
    transcriber.close()


@pytest.fixture
def render_until_prefect(monkeypatch, tmp_path):
    """Run ``castline render`` in this process with Prefect's start replaced by a marker."""
    import castline.core.runtime as runtime
    from castline_cli.main import main

    monkeypatch.setenv("CASTLINE_SERVER", "ephemeral")
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)

    def prefect_starts(**_kwargs):
        raise RuntimeError("prefect would start here")

    monkeypatch.setattr(runtime, "configure_prefect_environment", prefect_starts)
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Hello there.\n", encoding="utf-8")
    return lambda *extra: main(["render", str(script), "--out", str(tmp_path / "out"), *extra])
