"""The command line: one-line errors, non-zero exits, nothing written for bad input; listings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def castline(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "CASTLINE_VOICES_DIR": str(REPO / "voices")}
    return subprocess.run([sys.executable, "-m", "castline_cli", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=120)


@pytest.mark.parametrize("content, expected", [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    (b"Speaker 1: fine\nSpeaker 2: caf\xe9\n", ":2"),
    (b"", "no turns"),
    (b"cast: {a: heart}\nturns:\n  - speaker: nobody\n    text: hi\n", "nobody"),
])
def test_bad_scripts_fail_with_one_line_and_write_nothing(tmp_path, content, expected):
    suffix = ".yaml" if content.startswith(b"cast") else ".txt"
    script = tmp_path / f"bad{suffix}"
    script.write_bytes(content)
    out = tmp_path / "out"
    result = castline("render", str(script), "--out", str(out))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert str(script) in lines[0] and expected in lines[0]
    assert not out.exists()


@pytest.mark.parametrize("args, expected", [
    (["--preset", "loud"], "--preset"),
    (["--format", "wav,aiff"], "--format"),
    (["--cast", "1=zed"], "zed"),
    (["--cast", "nonsense"], "--cast"),
    (["--workers", "0"], "--workers"),
    (["--window-batch", "0"], "--window-batch"),
])
def test_bad_options_fail_with_one_line(tmp_path, args, expected):
    script = tmp_path / "ok.txt"
    script.write_text("Speaker 1: Hello.\n", encoding="utf-8")
    result = castline("render", str(script), "--out", str(tmp_path / "out"), *args)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and expected in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_script_is_one_line():
    result = castline("render", "/nonexistent/script.txt")
    assert result.returncode == 2 and "/nonexistent/script.txt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_voices_and_engines_lists():
    voices = castline("voices", "list")
    assert voices.returncode == 0 and "heart" in voices.stdout and "joe" in voices.stdout
    assert voices.stdout.count("yes") >= 2
    engines = castline("engines", "list")
    assert engines.returncode == 0
    for name in ("hibari", "piper", "vibevoice", "pocket-tts"):
        assert name in engines.stdout


def test_flows_and_tasks_import_from_any_directory(tmp_path):
    code = "import castline_flows.render_episode, castline_tasks.render, castline; print('ok')"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_library_imports_no_prefect_and_no_heavy_engines():
    code = ("import sys, castline.render.plan, castline.render.stitch, castline.delivery.master, castline.audio.encode, castline_cli.main; "
            "bad = [m for m in ('prefect', 'onnxruntime', 'hibari', 'piper', 'torch') if m in sys.modules]; "
            "print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
