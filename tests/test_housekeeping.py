"""Clean-up after killed runs: orphaned temporary Prefect servers of this PREFECT_HOME are stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from castline_flows.housekeeping import _pid_from_tags, run_tags, stop_orphaned_temporary_servers

# Stands in for Prefect's temporary server: same module argument on its command line, same env flag.
FAKE_SERVER = ("import sys, time; time.sleep(60)  # prefect.server.api.server:create_app",)


def _orphan(home: Path, *, ephemeral: str = "1") -> int:
    """Start a fake server whose parent exits at once (re-parented, like after a kill -9)."""
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT__SERVER_EPHEMERAL": ephemeral}
    command = f"{sys.executable} -c '{FAKE_SERVER[0]}' prefect.server.api.server:create_app >/dev/null 2>&1 & echo $!"
    output = subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, check=True).stdout
    return int(output.strip())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc (Linux)")
def test_only_orphaned_servers_of_this_home_are_stopped(tmp_path):
    mine, other_home, not_ephemeral = _orphan(tmp_path / "home"), _orphan(tmp_path / "other"), \
        _orphan(tmp_path / "home", ephemeral="0")
    try:
        time.sleep(0.3)
        stopped = stop_orphaned_temporary_servers(tmp_path / "home")
        assert stopped == [mine]
        deadline = time.monotonic() + 5
        while _alive(mine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(mine) and _alive(other_home) and _alive(not_ephemeral)
    finally:
        for pid in (mine, other_home, not_ephemeral):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass


def test_run_tags_name_this_process():
    host, pid = run_tags()
    assert host.startswith("castline-host:") and _pid_from_tags([host, pid]) == os.getpid()
    assert _pid_from_tags(["castline-pid:abc"]) is None


def test_runs_started_by_castline_send_no_heartbeats_unless_the_environment_asks(monkeypatch):
    from prefect import flow
    from prefect.settings import get_current_settings

    from castline_flows.housekeeping import HEARTBEAT_SETTING, without_heartbeats

    @flow(persist_result=False)
    def heartbeat_seconds() -> int | None:
        return get_current_settings().flows.heartbeat_frequency

    monkeypatch.delenv(HEARTBEAT_SETTING, raising=False)
    assert get_current_settings().flows.heartbeat_frequency == 180  # Prefect's default
    with without_heartbeats():
        assert heartbeat_seconds() is None
    assert get_current_settings().flows.heartbeat_frequency == 180
    monkeypatch.setenv(HEARTBEAT_SETTING, "180")  # set by the user: castline leaves it be
    with without_heartbeats():
        assert heartbeat_seconds() == 180
