"""Shared fixtures. Prefect's state goes to a throwaway folder for the whole session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
_SESSION_HOME = Path(tempfile.mkdtemp(prefix="castline-tests-"))
# Before anything imports Prefect: its database, no telemetry, quiet console.
os.environ.setdefault("CASTLINE_HOME", str(_SESSION_HOME))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ["DO_NOT_TRACK"] = "1"
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
os.environ.setdefault("XDG_CACHE_HOME", str(_SESSION_HOME / "cache"))


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
