"""castline as a service: `serve` on the session's Prefect server, `submit` a render, `status` it, trigger the inbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

pytestmark = pytest.mark.slow

SCRIPT = "episode:\n  id: {id}\n  title: Served\ncast:\n  host: {{voice: heart}}\nturns:\n" \
         "  - speaker: host\n    text: {text}\n"


def _castline(*args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "castline_cli", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="module")
def served(prefect_api, tmp_path_factory, voices_dir):
    """``castline serve`` running against the session's server; stopped by PID afterwards."""
    from prefect.client.orchestration import get_client

    folder = tmp_path_factory.mktemp("served")
    (folder / "inbox").mkdir()
    (folder / "inbox" / "scheduled.yaml").write_text(SCRIPT.format(id="scheduled", text="From the inbox."),
                                                     encoding="utf-8")
    # The runner asks the API for scheduled runs every PREFECT_RUNNER_POLL_FREQUENCY seconds (10 by
    # default): each run submitted here would wait up to that long, idle, before it starts.
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = open(folder / "serve.log", "w")
    process = subprocess.Popen([sys.executable, "-m", "castline_cli", "serve", "--inbox", str(folder / "inbox"),
                                "--cron", "0 3 * * *", "--out", str(folder / "out"), "--qa", "off",
                                "--voices-dir", str(voices_dir)], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        with get_client(sync_client=True) as client:
            while True:
                try:
                    client.read_deployment_by_name("process-inbox/castline-inbox")
                    client.read_deployment_by_name("render-episode/castline-render")
                    break
                except Exception:
                    assert process.poll() is None, (folder / "serve.log").read_text()
                    assert time.monotonic() < deadline, "castline serve did not register its deployments"
                    time.sleep(0.5)
        yield folder, env
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_submit_then_status_gives_the_manifest(served):
    folder, env = served
    script = folder / "submitted.yaml"
    script.write_text(SCRIPT.format(id="submitted", text="Submitted through the API."), encoding="utf-8")
    args = ("submit", str(script), "--out", str(folder / "out"), "--qa", "off", "--voices-dir",
            str(Path(__file__).resolve().parents[1] / "voices"))
    first = _castline(*args, env=env)
    assert first.returncode == 0, first.stderr
    run_id = first.stdout.strip()
    again = _castline(*args, env=env)
    assert again.stdout.strip() == run_id  # same content, same options: the same run (idempotency key)
    status = _castline("status", run_id, "--wait", "--timeout", "240", env=env, timeout=300)
    assert status.returncode == 0, status.stdout + status.stderr + (folder / "serve.log").read_text()[-3000:]
    assert "state: completed" in status.stdout
    assert "manifest: " in status.stdout, status.stdout
    manifest_uri = next(line.split(" ", 1)[1] for line in status.stdout.splitlines() if line.startswith("manifest:"))
    manifest = json.loads(Path(url2pathname(urlparse(manifest_uri).path)).read_text(encoding="utf-8"))
    assert manifest["episode"] == "submitted"


def test_served_inbox_deployment_runs(served):
    from prefect.deployments import run_deployment

    folder, _ = served
    run = run_deployment("process-inbox/castline-inbox", timeout=240, poll_interval=1, as_subflow=False)
    assert run.state.is_completed(), (folder / "serve.log").read_text()[-3000:]
    assert (folder / "out" / "scheduled" / "manifest.json").is_file()
    records = list((folder / "out" / "_cache" / "inbox").glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["status"] == "done"


def test_service_commands_need_a_server(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    for args in (("serve", "--inbox", str(tmp_path)), ("status", "0" * 32)):
        result = _castline(*args, env=env, timeout=60)
        assert result.returncode == 2 and "PREFECT_API_URL" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_prefect_yaml_names_importable_flows(repo_root):
    """The worker route's prefect.yaml points at flows that exist, under the names castline submits to."""
    import importlib

    import yaml

    config = yaml.safe_load((repo_root / "prefect.yaml").read_text(encoding="utf-8"))
    names = {}
    for deployment in config["deployments"]:
        path, function = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        names[deployment["name"]] = getattr(module, function).name
    from castline_flows.deployments import INBOX_DEPLOYMENT_PATH, RENDER_DEPLOYMENT_PATH

    assert f"{names['castline-render']}/castline-render" == RENDER_DEPLOYMENT_PATH
    assert f"{names['castline-inbox']}/castline-inbox" == INBOX_DEPLOYMENT_PATH
