"""kill -9 a render during synthesis, stitching or upload; the same command finishes it.

Each killed run dies by SIGKILL (no clean-up of any kind): at an exact point through the
``CASTLINE_KILL_AT`` failpoint, and once from outside, by PID, while chunks are being stored.
The resumed run must reuse every chunk stored before the kill, skip every release object already
uploaded intact, produce a master identical sample for sample to an uninterrupted render, leave
no temporary files, and mark the killed Prefect run Crashed.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytestmark = pytest.mark.slow

SENTENCES = [
    "The lighthouse keeper climbed the stairs before dawn.",
    "Salt wind rattled the windows all through the night.",
    "Below, the harbour lights blinked one by one.",
    "A fishing boat rounded the point, engine coughing.",
    "She wrote the time and the weather in the log.",
    "Gulls gathered on the railing, waiting for scraps.",
    "By noon the fog had lifted from the bay.",
    "The radio crackled with news from the mainland.",
    "Supplies would arrive on Thursday, if the sea allowed.",
    "She smiled, put the kettle on, and waited.",
]


def _script(folder: Path) -> Path:
    turns = "\n".join(f"  - speaker: narrator\n    text: {sentence}" for sentence in SENTENCES)
    script = folder / "keeper.yaml"
    script.write_text("episode:\n  id: keeper\n  title: The keeper\ncast:\n  narrator: {voice: heart}\n"
                      f"turns:\n{turns}\n", encoding="utf-8")
    return script


def _command(script: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(out), "--format", "wav,flac",
            "--qa", "off", "--workers", "1", "--seed", "7", "--quiet"]


def _env(prefect_api: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "CASTLINE_KILL_AT"}
    return {**env, "PREFECT_API_URL": prefect_api, **extra}


def _stored_chunks(out: Path) -> int:
    # A killed write leaves its temporary file (".castline-tmp-…-<key>.json"): not a stored chunk.
    if not (out / "_cache").exists():
        return 0
    return sum(not path.name.startswith(".castline-tmp-") for path in (out / "_cache" / "chunks").rglob("*.json"))


def _manifest(out: Path) -> dict:
    return json.loads((out / "keeper" / "manifest.json").read_text(encoding="utf-8"))


def _master(out: Path) -> tuple[str, np.ndarray]:
    manifest = _manifest(out)
    wav = next(item for item in manifest["files"] if item["format"] == "wav")
    path = out / wav["key"]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == wav["sha256"]
    audio, _ = soundfile.read(path, dtype="float32")
    return wav["sha256"], audio


def _run_state(prefect_api: str, pid: int) -> str:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    from castline_flows.housekeeping import PID_TAG

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"{PID_TAG}{pid}"])),
                                     sort=FlowRunSort.START_TIME_DESC, limit=10)
    assert len(runs) == 1, runs
    return runs[0].state_type.value


@pytest.fixture(scope="module")
def uninterrupted(prefect_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted")
    script = _script(folder)
    result = subprocess.run(_command(script, folder / "out"), capture_output=True, text=True,
                            env=_env(prefect_api), timeout=300)
    assert result.returncode == 0, result.stderr
    return _master(folder / "out")


@pytest.mark.parametrize("kill_at", ["synthesise:4", "stitch:5", "publish:2"])
def test_render_killed_at_a_point_resumes_to_the_same_master(prefect_api, uninterrupted, tmp_path, kill_at):
    script, out = _script(tmp_path), tmp_path / "out"
    killed = subprocess.Popen(_command(script, out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(prefect_api, CASTLINE_KILL_AT=kill_at))
    _, stderr = killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL, stderr
    assert not (out / "keeper" / "manifest.json").exists()  # nothing published by the killed run
    stored_before = _stored_chunks(out)
    if kill_at.startswith("synthesise"):
        assert 4 <= stored_before < len(SENTENCES)
    else:
        assert stored_before == len(SENTENCES)
    assert _run_state(prefect_api, killed.pid) == "RUNNING"

    resumed = subprocess.run(_command(script, out), capture_output=True, text=True, env=_env(prefect_api),
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    render = _manifest(out)["render"]
    assert render["chunks_reused"] == stored_before
    assert render["chunks_rendered"] == len(SENTENCES) - stored_before
    if kill_at.startswith("publish"):
        assert render["objects_reused"] >= 1  # uploaded before the kill, not uploaded again
    sha, audio = _master(out)
    assert sha == uninterrupted[0]
    np.testing.assert_array_equal(audio, uninterrupted[1])
    assert not [path for path in out.rglob("*") if ".castline-tmp-" in path.name]
    assert _run_state(prefect_api, killed.pid) == "CRASHED"


def test_render_killed_from_outside_resumes(prefect_api, uninterrupted, tmp_path):
    script, out = _script(tmp_path), tmp_path / "out"
    process = subprocess.Popen(_command(script, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env=_env(prefect_api))
    deadline = time.monotonic() + 240
    while _stored_chunks(out) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    stored_before = _stored_chunks(out)
    assert 2 <= stored_before
    resumed = subprocess.run(_command(script, out), capture_output=True, text=True, env=_env(prefect_api),
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    render = _manifest(out)["render"]
    # Chunks can land between the last count and the kill; none stored before it is rendered again.
    assert render["chunks_reused"] >= stored_before
    assert render["chunks_reused"] + render["chunks_rendered"] == len(SENTENCES)
    assert _master(out)[0] == uninterrupted[0]
    assert not [path for path in out.rglob("*") if ".castline-tmp-" in path.name]


# --- the default cast: both shipped voices, piper's 'joe' included -------------------------------

def _two_voice_script(folder: Path) -> Path:
    # No cast and no --cast: speakers take the voice library's voices in order (heart, joe).
    script = folder / "keeper.txt"
    script.write_text("".join(f"Speaker {1 + number % 2}: {sentence}\n" for number, sentence in enumerate(SENTENCES)),
                      encoding="utf-8")
    return script


@pytest.fixture(scope="module")
def uninterrupted_two_voices(prefect_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted-two-voices")
    result = subprocess.run(_command(_two_voice_script(folder), folder / "out"), capture_output=True, text=True,
                            env=_env(prefect_api), timeout=300)
    assert result.returncode == 0, result.stderr
    return _master(folder / "out")


def test_default_cast_killed_and_resumed_publishes_the_same_bytes(prefect_api, uninterrupted_two_voices, tmp_path):
    script, out = _two_voice_script(tmp_path), tmp_path / "out"
    killed = subprocess.run(_command(script, out), capture_output=True, text=True, timeout=300,
                            env=_env(prefect_api, CASTLINE_KILL_AT="synthesise:4"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    stored_before = _stored_chunks(out)
    assert 4 <= stored_before < len(SENTENCES)
    resumed = subprocess.run(_command(script, out), capture_output=True, text=True, env=_env(prefect_api),
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    manifest = _manifest(out)
    assert {voice["id"] for voice in manifest["voices"]} == {"heart", "joe"}
    assert manifest["render"]["chunks_reused"] == stored_before
    # piper's takes are seeded too: chunks made after the kill match the uninterrupted run's
    assert _master(out)[0] == uninterrupted_two_voices[0]
