"""``castline server start|stop|status``: one local Prefect server, started once and reused.

Without a server to talk to, every Prefect flow starts a temporary one (about 9 s on 2 cores).
castline instead starts ``prefect server start`` in the background on first use (bound to 127.0.0.1
unless ``--host`` or ``CASTLINE_SERVER_HOST`` says otherwise, a free port, its database under
``$CASTLINE_HOME/server``) and points every later run at it, so each run still goes through
Prefect (and shows in its UI) without paying that start-up again. A supervisor stops it after
``CASTLINE_SERVER_IDLE_MINUTES`` (default 120) without a connection, or once its ``$CASTLINE_HOME``
no longer records it (castline.core.local_server.supervise).

Which server a run uses (``CASTLINE_SERVER``):

- ``PREFECT_API_URL`` set: that server, always (yours wins);
- ``auto`` (default): castline's server, started if it is not running; if it cannot start, a
  temporary server for this run (with a warning);
- ``persistent``: castline's server, or an error;
- ``ephemeral``: a temporary server for every run (tests, CI, one-off containers).

The summary of ``castline render`` and ``castline dub`` ends with a ``prefect`` line naming it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

MODE_VARIABLE = "CASTLINE_SERVER"
MODES = ("auto", "persistent", "ephemeral")
HEALTH_PATH = "/health"
START_TIMEOUT_S = 120.0
IDLE_VARIABLE = "CASTLINE_SERVER_IDLE_MINUTES"
DEFAULT_IDLE_MINUTES = 120.0
HOST_VARIABLE = "CASTLINE_SERVER_HOST"
DEFAULT_HOST = "127.0.0.1"  # loopback only: other machines cannot reach it unless you say so
# Commands whose flows should reach the persistent server; `serve` starts it if needed, `submit`
# and `status` only use one that is already running (a new server would have no deployments).
RUN_COMMANDS = ("render", "dub")
SERVICE_COMMANDS = {"serve": True, "submit": False, "status": False}


@dataclasses.dataclass(frozen=True)
class ApiChoice:
    """Which Prefect server this process's flows use, in words for the summary."""

    kind: str  # "persistent", "configured" or "ephemeral"
    url: str | None
    note: str

    def summary_line(self) -> str:
        return f"  prefect   {self.note}"


def add_server_command(commands) -> None:
    """Add ``castline server`` and route the flow-running commands through ``choose_api``."""
    server = commands.add_parser("server", help="the local Prefect server castline starts once and reuses")
    server_commands = server.add_subparsers(title="server commands")
    start = server_commands.add_parser("start", help="start it in the background (no-op if it is running)")
    start.add_argument("--port", type=int, help="port (default: a free one)")
    start.add_argument("--host", help=f"address to bind (default: ${HOST_VARIABLE} or {DEFAULT_HOST}, "
                                      "this machine only; 0.0.0.0 listens on every interface)")
    start.set_defaults(handler=_start)
    stop = server_commands.add_parser("stop", help="stop it (runs already finished stay in its database)")
    stop.set_defaults(handler=_stop)
    status = server_commands.add_parser("status", help="is it running, where, and its UI address")
    status.set_defaults(handler=_status)
    for name, parser in commands.choices.items():
        handler = parser.get_default("handler")
        if handler is None:
            continue
        if name in RUN_COMMANDS:
            parser.set_defaults(handler=_with_server(handler, start=True, announce=True))
        elif name in SERVICE_COMMANDS:
            parser.set_defaults(handler=_with_server(handler, start=SERVICE_COMMANDS[name], announce=False))


def _with_server(handler, *, start: bool, announce: bool):
    def run(args: argparse.Namespace) -> int:
        choice = choose_api(start=start)
        code = handler(args)
        # Only when a flow ran (an up-to-date episode never imports Prefect).
        if announce and code == 0 and "prefect" in sys.modules:
            print(choice.summary_line())
        return code

    run.__wrapped__ = handler
    return run


def mode() -> str:
    value = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if value not in MODES:
        from castline.core.errors import CastlineError

        raise CastlineError(f"{MODE_VARIABLE}={value!r}: expected one of {', '.join(MODES)}")
    return value


def choose_api(*, start: bool = True) -> ApiChoice:
    """Set ``PREFECT_API_URL`` for this process when castline's server is (or can be made) available.

    Call before Prefect is imported. Never raises for a server that cannot start in ``auto``
    mode: the run falls back to a temporary server and says so on stderr.
    """
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        return ApiChoice("configured", configured, f"the server in PREFECT_API_URL ({configured})")
    chosen = mode()
    if chosen == "ephemeral":
        return ApiChoice("ephemeral", None, f"a temporary server for this run ({MODE_VARIABLE}=ephemeral)")
    from castline.core import local_server

    try:
        if start:
            state, started = ensure_running()
        else:
            current = local_server.status(health_path=HEALTH_PATH)
            if not current.usable:
                return ApiChoice("ephemeral", None, "no castline server running")
            state, started = current.state, False
    except local_server.ServerError as error:
        if chosen == "persistent":
            raise
        print(f"castline: warning: castline's Prefect server could not start ({error}); "
              "using a temporary server for this run", file=sys.stderr)
        return ApiChoice("ephemeral", None, "a temporary server for this run (castline's server could not start)")
    os.environ["PREFECT_API_URL"] = state.url
    how = "started for this run" if started else "already running"
    return ApiChoice("persistent", state.url, f"castline's server at {ui_url(state.url)} ({how}; "
                                              "`castline server stop` to stop it)")


def bind_host(host: str | None = None) -> str:
    """The address castline's server binds to: ``host``, else ``$CASTLINE_SERVER_HOST``, else 127.0.0.1."""
    return (host or os.environ.get(HOST_VARIABLE, "")).strip() or DEFAULT_HOST


def ensure_running(port: int | None = None, host: str | None = None):
    """``(state, started_now)`` of castline's server, starting it if needed (bound to ``bind_host(host)``)."""
    from castline.core import local_server
    from castline.core.runtime import castline_home

    home = castline_home()
    current = local_server.status(home, HEALTH_PATH)
    if current.usable:  # the common case: no lock, one health request
        return current.state, False
    return local_server.start(supervised(home, server_command()), url_template="http://{host}:{port}/api",
                              health_path=HEALTH_PATH, env=server_environment(home), home=home, port=port,
                              timeout_s=START_TIMEOUT_S, host=bind_host(host))


def server_command() -> list[str]:
    return [sys.executable, "-m", "prefect", "server", "start", "--host", "{host}", "--port", "{port}"]


def supervised(home, command: list[str]) -> list[str]:
    """``command`` under castline's supervisor, which ends the server after ``idle_minutes()``
    without a connection, or as soon as ``$CASTLINE_HOME`` no longer records it (e.g. deleted)."""
    return [sys.executable, "-m", "castline.core.local_server", "--home", str(home), "--port", "{port}",
            "--idle-minutes", f"{idle_minutes():g}", "--", *command]


def idle_minutes() -> float:
    raw = os.environ.get(IDLE_VARIABLE, "").strip()
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_IDLE_MINUTES
    except ValueError:
        from castline.core.errors import CastlineError

        raise CastlineError(f"{IDLE_VARIABLE}={raw!r}: expected a number of minutes (0: never)") from None


def server_environment(home) -> dict[str, str | None]:
    from castline.core import local_server

    return {
        "PREFECT_HOME": str(local_server.server_dir(home) / "prefect"),
        "PREFECT_API_URL": None,  # the server must not try to reach another one
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_LOGGING_LEVEL": os.environ.get("PREFECT_SERVER_LOGGING_LEVEL", "WARNING"),
        "PREFECT_LOGGING_LEVEL": os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"),
        "PYTHONUNBUFFERED": "1",
    }


def ui_url(api_url: str) -> str:
    return api_url[: -len("/api")] if api_url.endswith("/api") else api_url


def _start(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    state, started = ensure_running(port=args.port, host=args.host)
    if started:
        print(f"started castline's Prefect server in {time.perf_counter() - began:.1f} s: {state.url} "
              f"(pid {state.pid}); UI at {ui_url(state.url)}")
    else:
        print(f"already running: {state.url} (pid {state.pid}); UI at {ui_url(state.url)}")
    return 0


def _stop(args: argparse.Namespace) -> int:
    from castline.core import local_server

    state = local_server.stop()
    print("no castline server was running" if state is None else f"stopped castline's Prefect server (pid {state.pid})")
    return 0


def _status(args: argparse.Namespace) -> int:
    from castline.core import local_server

    current = local_server.status(health_path=HEALTH_PATH)
    if current.state is None:
        print(f"not running (starts on the next render; {MODE_VARIABLE}={mode()})")
        return 1
    state = current.state
    if not current.running:
        print(f"not running (the server recorded in {local_server.state_path()} has exited; "
              "it restarts on the next render)")
        return 1
    health = "healthy" if current.healthy else "not answering yet"
    uptime_s = max(0.0, time.time() - state.started_at)
    print(f"running: {state.url} (pid {state.pid}, {health}, up {uptime_s / 60:.0f} min)")
    print(f"  ui        {ui_url(state.url)}")
    print(f"  database  {local_server.server_dir()}")
    print(f"  log       {local_server.log_path()}")
    return 0 if current.healthy else 1
