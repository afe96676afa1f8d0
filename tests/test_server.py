"""castline's persistent local server: state file, lock (never two), start/stop, fallback, the CLI.

Most tests drive the process management with a small real HTTP server (a Python subprocess that
answers the health check) so they run in a second; one slow test starts the real Prefect server,
renders through it and checks that Prefect recorded the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from castline.core import local_server
from castline.core.errors import CastlineError

REPO = Path(__file__).resolve().parents[1]
FAKE_SERVER = r"""
import http.server, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""
FAKE_COMMAND = [sys.executable, "-c", FAKE_SERVER, "{port}"]
URL = "http://{host}:{port}/api"


def _start(home: Path, command=FAKE_COMMAND, **kwargs):
    return local_server.start(command, url_template=URL, home=home, timeout_s=30, **kwargs)


@pytest.fixture
def home(tmp_path):
    root = tmp_path / "castline-home"
    yield root
    local_server.stop(root)  # never leave a server behind, whatever the test did


def test_start_records_state_and_reuses_the_running_server(home):
    state, started = _start(home)
    assert started and local_server.healthy(state.url)
    recorded = json.loads((home / "server.json").read_text(encoding="utf-8"))
    assert recorded["pid"] == state.pid and recorded["url"] == state.url == f"http://127.0.0.1:{state.port}/api"
    again, started_again = _start(home)
    assert not started_again and again == state
    assert local_server.status(home).usable


def test_concurrent_starts_make_one_server(home):
    results, errors = [], []

    def start_one():
        try:
            results.append(_start(home))
        except Exception as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len({state.pid for state, _ in results}) == 1
    assert sum(started for _, started in results) == 1


def test_stop_ends_the_process_and_forgets_it(home):
    state, _ = _start(home)
    stopped = local_server.stop(home)
    assert stopped == state
    assert not local_server.pid_alive(state.pid)
    assert not (home / "server.json").exists()
    assert local_server.stop(home) is None
    assert local_server.status(home).state is None


def test_a_dead_server_is_replaced(home):
    state, _ = _start(home)
    os.kill(state.pid, 9)
    os.waitpid(state.pid, 0)
    assert not local_server.status(home).running
    fresh, started = _start(home)
    assert started and fresh.pid != state.pid and local_server.healthy(fresh.url)


def test_a_reused_pid_is_not_taken_for_the_server(home):
    # The state names this test's own process (alive, but not the recorded command): not ours.
    home.mkdir(parents=True)
    (home / "server.json").write_text(local_server.ServerState(
        pid=os.getpid(), port=1, url="http://127.0.0.1:1/api", home=str(home), started_at=0.0,
        command=("/nonexistent/prefect", "server", "start")).to_json(), encoding="utf-8")
    assert not local_server.status(home).running
    assert local_server.stop(home) is not None  # forgotten, and this process was not signalled


def test_a_server_that_cannot_start_raises_one_line_with_its_log(home):
    failing = [sys.executable, "-c", "import sys; print('no database'); sys.exit(3)"]
    with pytest.raises(local_server.ServerError, match=r"exited with status 3; see .*server\.log") as caught:
        _start(home, command=failing)
    assert isinstance(caught.value, CastlineError)
    assert "no database" in (home / "server" / "server.log").read_text(encoding="utf-8")
    assert not (home / "server.json").exists()


def test_a_damaged_state_file_counts_as_no_server(home):
    home.mkdir(parents=True)
    (home / "server.json").write_text("{not json", encoding="utf-8")
    assert local_server.status(home).state is None


# --- the CLI's choice of server ---------------------------------------------------------------

@pytest.fixture
def cli_env(home, monkeypatch):
    from castline_cli import server

    monkeypatch.setenv("CASTLINE_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(server, "server_command", lambda: list(FAKE_COMMAND))
    return server


def test_auto_starts_castline_server_and_points_prefect_at_it(cli_env, monkeypatch):
    monkeypatch.setenv("CASTLINE_SERVER", "auto")
    choice = cli_env.choose_api()
    assert choice.kind == "persistent"
    assert os.environ["PREFECT_API_URL"] == choice.url == local_server.read_state().url
    assert "started for this run" in choice.summary_line()
    monkeypatch.delenv("PREFECT_API_URL")
    assert "already running" in cli_env.choose_api().note


def test_ephemeral_and_configured_servers_are_left_alone(cli_env, monkeypatch):
    monkeypatch.setenv("CASTLINE_SERVER", "ephemeral")
    choice = cli_env.choose_api()
    assert choice.kind == "ephemeral" and "PREFECT_API_URL" not in os.environ
    assert "temporary server" in choice.summary_line()
    assert local_server.read_state() is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setenv("CASTLINE_SERVER", "auto")
    assert cli_env.choose_api().kind == "configured"
    assert local_server.read_state() is None


def test_auto_falls_back_to_a_temporary_server_and_persistent_fails(cli_env, monkeypatch, capsys):
    monkeypatch.setattr(cli_env, "server_command", lambda: [sys.executable, "-c", "raise SystemExit(1)"])
    monkeypatch.setenv("CASTLINE_SERVER", "auto")
    choice = cli_env.choose_api()
    assert choice.kind == "ephemeral" and "PREFECT_API_URL" not in os.environ
    assert "using a temporary server" in capsys.readouterr().err
    monkeypatch.setenv("CASTLINE_SERVER", "persistent")
    with pytest.raises(CastlineError):
        cli_env.choose_api()
    monkeypatch.setenv("CASTLINE_SERVER", "sometimes")
    with pytest.raises(CastlineError, match="CASTLINE_SERVER"):
        cli_env.choose_api()


def test_server_commands(cli_env, capsys):
    from castline_cli.main import main

    assert main(["server", "status"]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["server", "start"]) == 0
    assert "started castline's Prefect server" in capsys.readouterr().out
    assert main(["server", "start"]) == 0
    assert "already running" in capsys.readouterr().out
    assert main(["server", "status"]) == 0
    assert "running: http://127.0.0.1:" in capsys.readouterr().out
    pid = local_server.read_state().pid
    assert main(["server", "stop"]) == 0
    assert "stopped" in capsys.readouterr().out and not local_server.pid_alive(pid)


# --- the real thing ----------------------------------------------------------------------------

TWO_LINES = """\
episode: {id: two-lines, title: Two lines, language: en}
cast:
  host: {voice: heart, name: Harriet}
  guest: {voice: joe, name: Joe}
turns:
  - {speaker: host, text: Hello and welcome.}
  - {speaker: guest, text: Thanks for having me.}
"""


@pytest.mark.slow
def test_render_through_castline_prefect_server(tmp_path, voices_dir):
    """First render starts the server; the second reuses it; Prefect has both runs; stop ends it."""
    home = tmp_path / "home"
    env = {key: value for key, value in os.environ.items() if key not in ("PREFECT_API_URL", "PREFECT_HOME")}
    env.update(CASTLINE_HOME=str(home), CASTLINE_SERVER="auto")
    script = tmp_path / "two.yaml"
    script.write_text(TWO_LINES, encoding="utf-8")
    render = [sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(tmp_path / "out"),
              "--voices-dir", str(voices_dir), "--qa", "off", "--quiet", "--force"]
    try:
        first = subprocess.run(render, env=env, capture_output=True, text=True, timeout=600)
        assert first.returncode == 0, first.stderr
        assert "prefect   castline's server at http://127.0.0.1:" in first.stdout
        assert "started for this run" in first.stdout
        state = local_server.read_state(home)
        second = subprocess.run(render, env=env, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout and local_server.read_state(home) == state
        request = urllib.request.Request(state.url + "/flow_runs/filter", data=b"{}", method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=30) as response:
            runs = json.load(response)
        finished = [run for run in runs if run["state_type"] == "COMPLETED"]
        assert len(finished) == 2
    finally:
        stop = subprocess.run([sys.executable, "-m", "castline_cli", "server", "stop"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0 and "stopped" in stop.stdout
    assert not local_server.pid_alive(state.pid)
    assert not (home / "server.json").exists()


def _supervised(home: Path, idle_minutes: float) -> list[str]:
    return [sys.executable, "-m", "castline.core.local_server", "--home", str(home), "--port", "{port}",
            "--idle-minutes", str(idle_minutes), "--poll-seconds", "0.2", "--", *FAKE_COMMAND]


def _gone(pid: int, timeout_s: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not local_server.pid_alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_supervised_server_ends_when_its_home_forgets_it(home):
    """A server whose $CASTLINE_HOME was deleted (a temporary home) does not run on forever."""
    state, _ = _start(home, command=_supervised(home, 0))
    assert local_server.healthy(state.url)
    (home / "server.json").unlink()
    assert _gone(state.pid)
    assert not local_server.healthy(state.url, timeout_s=0.5)


def test_supervised_server_stops_when_idle_and_stop_ends_both(home):
    state, _ = _start(home, command=_supervised(home, 0.01))  # 0.6 s without a connection
    assert _gone(state.pid)
    assert not (home / "server.json").exists()
    state, _ = _start(home, command=_supervised(home, 0))
    assert local_server.stop(home) == state and _gone(state.pid, 5)
    assert not local_server.healthy(state.url, timeout_s=0.5)
