"""A long-running local server that castline starts once and reuses: its state file, a lock, start, stop.

Generic process management, no orchestration import: the caller gives the command line (with a
``{port}`` placeholder) and the health path. State lives under ``$CASTLINE_HOME``:

- ``server.json``: ``{"pid", "port", "url", "home", "started_at", "command"}`` of the running server;
- ``server.lock``: an exclusive ``flock`` held while starting or stopping, so two processes never
  start two servers (the second waits, then finds the first one's server);
- ``server/``: the server's own folder (its database and ``server.log``).

The server runs in its own session (``start_new_session``): it outlives the command that started
it, and ``stop`` ends its whole process group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from castline.core.atomic import write_bytes_atomic
from castline.core.errors import CastlineError
from castline.core.runtime import castline_home

STATE_FILE = "server.json"
LOCK_FILE = "server.lock"
SERVER_DIR = "server"
LOG_FILE = "server.log"
HOST = "127.0.0.1"


class ServerError(CastlineError):
    """The local server could not be started or stopped (the message says why, in one line)."""


@dataclasses.dataclass(frozen=True)
class ServerState:
    pid: int
    port: int
    url: str
    home: str
    started_at: float
    command: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps({**dataclasses.asdict(self), "command": list(self.command)}, indent=2)

    @classmethod
    def from_json(cls, text: str) -> "ServerState":
        raw = json.loads(text)
        return cls(pid=int(raw["pid"]), port=int(raw["port"]), url=str(raw["url"]), home=str(raw["home"]),
                   started_at=float(raw["started_at"]), command=tuple(raw.get("command", ())))


@dataclasses.dataclass(frozen=True)
class ServerStatus:
    """What ``status`` found: ``state`` is None when no server is recorded."""

    state: ServerState | None
    running: bool  # the recorded process is alive
    healthy: bool  # and answers its health check

    @property
    def usable(self) -> bool:
        return self.state is not None and self.running and self.healthy


def home_dir(home: Path | None = None) -> Path:
    return Path(home) if home is not None else castline_home()


def state_path(home: Path | None = None) -> Path:
    return home_dir(home) / STATE_FILE


def server_dir(home: Path | None = None) -> Path:
    return home_dir(home) / SERVER_DIR


def log_path(home: Path | None = None) -> Path:
    return server_dir(home) / LOG_FILE


@contextlib.contextmanager
def server_lock(home: Path | None = None, *, timeout_s: float = 120.0) -> Iterator[None]:
    """Exclusive lock for starting/stopping (released when the holder exits, even if killed)."""
    root = home_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServerError(f"{root / LOCK_FILE}: another castline process has held the server lock "
                                      f"for over {timeout_s:.0f} s") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def read_state(home: Path | None = None) -> ServerState | None:
    path = state_path(home)
    try:
        return ServerState.from_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # a damaged state file is treated as no server (the next start rewrites it)


def _write_state(state: ServerState, home: Path | None) -> None:
    write_bytes_atomic(state_path(home), state.to_json().encode("utf-8"))


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child (ours, not yet reaped) counts as gone.
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return True


def healthy(url: str, health_path: str = "/health", *, timeout_s: float = 2.0) -> bool:
    """True when ``url + health_path`` answers 200 (no proxy: the server is on loopback)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + health_path, timeout=timeout_s) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def status(home: Path | None = None, health_path: str = "/health") -> ServerStatus:
    state = read_state(home)
    if state is None:
        return ServerStatus(None, False, False)
    running = pid_alive(state.pid) and _same_process(state)
    return ServerStatus(state, running, running and healthy(state.url, health_path))


def _same_process(state: ServerState) -> bool:
    """False when the recorded pid now belongs to another program (pids are reused after a reboot
    or a crash): its command line must still be the one recorded. Where ``/proc`` is missing the
    pid is trusted."""
    try:
        raw = Path(f"/proc/{state.pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self/cmdline").exists()
    except OSError:
        return True
    return not state.command or raw.split(b"\0")[: len(state.command)] == [part.encode() for part in state.command]


def connect_host(host: str) -> str:
    """The address a client on this machine uses for a server bound to ``host``."""
    if host in ("0.0.0.0", ""):
        return HOST
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def free_port(host: str = HOST) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def start(command: Sequence[str], *, url_template: str, health_path: str = "/health",
          env: Mapping[str, str | None] | None = None, home: Path | None = None, port: int | None = None,
          timeout_s: float = 120.0, host: str = HOST) -> tuple[ServerState, bool]:
    """Start the server unless a healthy one is recorded; returns ``(state, started_now)``.

    ``command`` and ``url_template`` may contain ``{port}`` and ``{host}``; ``env`` is laid over this
    process's environment for the child (a None value removes that variable). ``host`` is the address
    the server binds to (default 127.0.0.1, loopback only); the recorded URL names a loopback address
    when it is a wildcard (0.0.0.0 or ::). Under the lock: a second caller waits for the first and
    then reuses its server, so there are never two. A recorded server that is alive but unhealthy
    (still starting, or stuck) is waited for until ``timeout_s``, then stopped and replaced.
    """
    root = home_dir(home)
    with server_lock(root, timeout_s=timeout_s):
        current = status(root, health_path)
        if current.usable:
            return current.state, False
        if current.state is not None and current.running:
            if _wait_healthy(current.state, health_path, timeout_s):
                return current.state, False
            _terminate(current.state.pid)
        state_path(root).unlink(missing_ok=True)
        chosen = port or free_port(host)
        argv = [part.format(port=chosen, host=host) for part in command]
        url = url_template.format(port=chosen, host=connect_host(host))
        server_dir(root).mkdir(parents=True, exist_ok=True)
        child_env = dict(os.environ)
        for name, value in (env or {}).items():
            if value is None:
                child_env.pop(name, None)
            else:
                child_env[name] = value
        with open(log_path(root), "ab") as log:
            try:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           env=child_env, cwd=server_dir(root), start_new_session=True,
                                           close_fds=True)
            except OSError as error:
                raise ServerError(f"could not run {argv[0]}: {error}") from error
        state = ServerState(pid=process.pid, port=chosen, url=url, home=str(root), started_at=time.time(),
                            command=tuple(argv))
        _write_state(state, root)
        if not _wait_healthy(state, health_path, timeout_s, process=process):
            code = process.poll()
            _terminate(process.pid)
            with contextlib.suppress(Exception):
                process.wait(timeout=5)
            state_path(root).unlink(missing_ok=True)
            why = f"exited with status {code}" if code is not None else f"not healthy after {timeout_s:.0f} s"
            raise ServerError(f"the server {why}; see {log_path(root)}")
        return state, True


def _wait_healthy(state: ServerState, health_path: str, timeout_s: float,
                  process: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        if process is None and not (pid_alive(state.pid) and _same_process(state)):
            return False
        if healthy(state.url, health_path, timeout_s=2.0):
            return True
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    return False


def stop(home: Path | None = None, *, timeout_s: float = 20.0) -> ServerState | None:
    """Stop the recorded server (SIGTERM to its process group, SIGKILL after ``timeout_s``) and
    forget it; returns what was stopped, or None when nothing was recorded."""
    root = home_dir(home)
    with server_lock(root):
        state = read_state(root)
        if state is None:
            return None
        if pid_alive(state.pid) and _same_process(state):
            _terminate(state.pid, timeout_s=timeout_s)
        state_path(root).unlink(missing_ok=True)
        return state


def _terminate(pid: int, *, timeout_s: float = 20.0) -> None:
    """End ``pid``'s process group (the server and anything it started), politely first."""
    try:
        group = os.getpgid(pid)
    except ProcessLookupError:
        return
    # Only signal the group if the server leads it (it was started in its own session).
    target = (lambda sig: os.killpg(group, sig)) if group == pid else (lambda sig: os.kill(pid, sig))
    with contextlib.suppress(ProcessLookupError):
        target(signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        target(signal.SIGKILL)
    for _ in range(50):
        if not pid_alive(pid):
            return
        time.sleep(0.1)


# --- the supervisor: the process ``server.json`` names, with the server as its child ---------------

def supervise(home: Path, command: Sequence[str], port: int, *, idle_s: float, poll_s: float = 5.0) -> int:
    """Run ``command`` (the server) as a child and end it when it is no longer wanted.

    It ends the server when ``home``'s state no longer names this process (``stop``, or the home
    folder was deleted, as with a temporary ``$CASTLINE_HOME``), when the server has had no
    connection on ``port`` for ``idle_s`` seconds (0: never), or on SIGTERM; it exits when the
    server does. This keeps a server from outliving every use of it.
    """
    child = subprocess.Popen(list(command), stdin=subprocess.DEVNULL)
    stopping = False

    def terminate(*_args) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, terminate)
    last_busy = time.monotonic()
    while True:
        try:
            code = child.wait(timeout=poll_s)
        except subprocess.TimeoutExpired:
            code = None
        if code is not None:  # the server ended by itself: forget it if it is still recorded as ours
            _forget_if_mine(home)
            return code
        if stopping or not _recorded_as_me(home):
            _end_child(child)
            return 0
        if _has_connections(port):
            last_busy = time.monotonic()
        elif idle_s > 0 and time.monotonic() - last_busy > idle_s:
            try:
                with server_lock(home, timeout_s=poll_s):
                    if _recorded_as_me(home):
                        state_path(home).unlink(missing_ok=True)
            except (ServerError, OSError):
                continue  # someone is starting or stopping it right now: look again later
            print(f"castline: no use for {idle_s / 60:.0f} min: stopping the server", flush=True)
            _end_child(child)
            return 0


def _recorded_as_me(home: Path) -> bool:
    state = read_state(home)
    return state is not None and state.pid == os.getpid()


def _forget_if_mine(home: Path) -> None:
    # A server that fails while being started is forgotten by its starter, which holds the lock.
    with contextlib.suppress(ServerError, OSError):
        with server_lock(home, timeout_s=0.0):
            if _recorded_as_me(home):
                state_path(home).unlink(missing_ok=True)


def _end_child(child: subprocess.Popen, timeout_s: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        child.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _has_connections(port: int) -> bool:
    """Whether any TCP connection to ``port`` on this machine is established (Linux ``/proc``);
    True where that cannot be read, so a server is never stopped for idleness by mistake."""
    found_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text(encoding="ascii").splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == "01" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                return True
    return not found_table


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m castline.core.local_server",
                                     description="supervise a local server (started by castline)")
    parser.add_argument("--home", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--idle-minutes", type=float, default=0.0)
    parser.add_argument("--poll-seconds", type=float, default=5.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    return supervise(args.home, command, args.port, idle_s=args.idle_minutes * 60, poll_s=args.poll_seconds)


if __name__ == "__main__":
    raise SystemExit(_main())
