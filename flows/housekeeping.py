"""Clean up after runs that were killed: Prefect runs left "Running", orphaned temporary servers.

A ``kill -9`` gives a run no chance to report its end, so the Prefect API keeps showing it
Running; in embedded mode the kill also orphans Prefect's temporary API server process. Every
flow castline starts carries two tags, ``castline-host:<hostname>`` and ``castline-pid:<pid>``;
on the next start, any Running/Pending run tagged with this host whose process is gone is set
to Crashed (with its Running task runs). Runs from other hosts are left alone: this machine
cannot tell whether they are alive (Prefect's worker heartbeats cover those).
"""

from __future__ import annotations

import os
import signal
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from castline.core.local_server import pid_alive

HOST_TAG = "castline-host:"
PID_TAG = "castline-pid:"


def run_tags() -> tuple[str, str]:
    """The tags that let a later start recognise this process's runs."""
    return f"{HOST_TAG}{socket.gethostname()}", f"{PID_TAG}{os.getpid()}"


@contextmanager
def tagged_run() -> Iterator[None]:
    """Tag every flow run started inside the block with this host and process."""
    from prefect import tags

    with tags(*run_tags()):
        yield


HEARTBEAT_SETTING = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"


@contextmanager
def without_heartbeats() -> Iterator[None]:
    """Flow runs started inside the block send no Prefect heartbeats, unless the environment
    sets ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` itself.

    A run in this process needs none: if the process dies, the next start marks its runs
    Crashed (``mark_orphaned_runs_crashed``). And Prefect's heartbeat thread sleeps in 1 s steps
    that the run waits out when it ends: measured 0.47 s of a 3.5 s cached render.
    """
    if os.environ.get(HEARTBEAT_SETTING):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def tidy_up_after_killed_runs() -> None:
    """Stop orphaned temporary servers, then mark this host's dead runs Crashed. Never fails a
    render: a problem here is logged and the render goes on."""
    import logging

    log = logging.getLogger("castline.housekeeping")
    try:
        if os.environ.get("PREFECT_HOME") and not os.environ.get("PREFECT_API_URL"):
            stopped = stop_orphaned_temporary_servers(os.environ["PREFECT_HOME"])
            if stopped:
                log.info("stopped %d orphaned Prefect temporary server(s): %s", len(stopped), stopped)
        marked = mark_orphaned_runs_crashed()
        if marked:
            log.warning("marked %d run(s) of killed castline processes as Crashed: %s", len(marked),
                        ", ".join(marked))
    except Exception as error:  # housekeeping must never stop a render
        log.warning("could not tidy up after killed runs: %s", error)


def mark_orphaned_runs_crashed() -> list[str]:
    """Set Running/Pending flow runs of dead castline processes on this host to Crashed.

    Returns the ids of the runs marked. Safe to call at every start; costs one API query.
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterId, FlowRunFilterState,
                                                FlowRunFilterStateType, FlowRunFilterTags, TaskRunFilter,
                                                TaskRunFilterState, TaskRunFilterStateType)
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort
    from prefect.states import Crashed

    host_tag = run_tags()[0]
    active = [StateType.RUNNING, StateType.PENDING]
    marked = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active)),
            tags=FlowRunFilterTags(all_=[host_tag])), sort=FlowRunSort.START_TIME_DESC, limit=200)
        for run in runs:
            pid = _pid_from_tags(run.tags)
            if pid is None or _alive(pid):
                continue
            message = f"castline process {pid} on this host died while this run was {run.state_name}"
            client.set_flow_run_state(run.id, Crashed(message=message), force=True)
            task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                                              task_run_filter=TaskRunFilter(state=TaskRunFilterState(
                                                  type=TaskRunFilterStateType(any_=active))),
                                              sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
            for task_run in task_runs:
                if task_run.flow_run_id == run.id:
                    client.set_task_run_state(task_run.id, Crashed(message=message), force=True)
            marked.append(str(run.id))
    return marked


def stop_orphaned_temporary_servers(prefect_home: str | Path) -> list[int]:
    """Stop Prefect temporary API servers whose parent died (re-parented to init) and that
    serve ``prefect_home``'s database. Linux only (reads /proc); elsewhere does nothing."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    home = str(Path(prefect_home).expanduser().resolve())
    stopped = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            if b"prefect.server.api.server:create_app" not in cmdline:
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = dict(item.split(b"=", 1) for item in (entry / "environ").read_bytes().split(b"\0") if b"=" in item)
        except (OSError, ValueError, IndexError):
            continue
        if environ.get(b"PREFECT__SERVER_EPHEMERAL") != b"1" or parent != 1:
            continue
        if str(Path(environ.get(b"PREFECT_HOME", b"").decode()).expanduser().resolve()) != home:
            continue
        try:
            os.kill(int(entry.name), signal.SIGTERM)
            stopped.append(int(entry.name))
        except OSError:
            pass
    return stopped


def _pid_from_tags(tags: list[str]) -> int | None:
    for tag in tags:
        if tag.startswith(PID_TAG) and tag[len(PID_TAG):].isdigit():
            return int(tag[len(PID_TAG):])
    return None


def _alive(pid: int) -> bool:
    return pid == os.getpid() or pid_alive(pid)
