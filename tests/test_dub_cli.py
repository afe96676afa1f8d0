"""``castline dub``: bad input exits 2 with one line and writes nothing; a good run prints a summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from castline.engines.espeak import espeak_binary

REPO = Path(__file__).resolve().parents[1]
GOOD = "1\n00:00:00,500 --> 00:00:02,000\nANA: Hola.\n"


def castline(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "CASTLINE_VOICES_DIR": str(REPO / "voices"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "castline_cli", "dub", *args], capture_output=True, text=True,
                          env=environment, timeout=300)


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "es.srt").write_text(GOOD, encoding="utf-8")
    soundfile.write(str(tmp_path / "bg.wav"), np.zeros((48_000 * 3, 2), np.float32), 48_000)
    return tmp_path


@pytest.mark.parametrize("case, expected", [
    ("malformed", "bad.es.srt:2: bad cue timing"),
    ("missing-background", "nope.wav: --background: audio file not found"),
    ("not-audio", "es.srt: --background: not an audio file"),
    ("no-language", "subtitles.srt: cannot tell this file's language"),
    ("bad-option", "--max-stretch: must be 1.0..2.0"),
    ("lang-count", "--lang: give one language per --cues file"),
    ("bad-cast", "voice 'zed'"),
    ("bad-preset", "--preset: unknown preset"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(files, case, expected, capsys, monkeypatch):
    out = files / "out"
    args = ["--cues", str(files / "es.srt"), "--background", str(files / "bg.wav"), "--out", str(out)]
    if case == "malformed":
        (files / "bad.es.srt").write_text("1\n00:00:01,000 --> 00:00:0x,000\nHola\n", encoding="utf-8")
        args[1] = str(files / "bad.es.srt")
    elif case == "missing-background":
        args[3] = str(files / "nope.wav")
    elif case == "not-audio":
        args[3] = str(files / "es.srt")
    elif case == "no-language":
        (files / "subtitles.srt").write_text(GOOD, encoding="utf-8")
        args[1] = str(files / "subtitles.srt")
    elif case == "bad-option":
        args += ["--max-stretch", "3"]
    elif case == "lang-count":
        args += ["--lang", "es", "--lang", "de"]
    elif case == "bad-cast":
        (files / "cast.yaml").write_text("es:\n  voices:\n    ANA: zed\n", encoding="utf-8")
        args += ["--cast", str(files / "cast.yaml")]
    elif case == "bad-preset":
        args += ["--preset", "loud"]
    if case == "malformed":  # one of them in a real process, the rest in this one (no interpreter start-up)
        result = castline(*args)
        code, stderr = result.returncode, result.stderr
    else:
        from castline_cli.main import main

        monkeypatch.setenv("CASTLINE_VOICES_DIR", str(REPO / "voices"))
        code = main(["dub", *args])
        stderr = capsys.readouterr().err
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert expected in lines[0] and lines[0].startswith("castline: error: ")
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_a_good_run_publishes_and_prints_a_summary(files, prefect_api):
    result = castline("--cues", str(files / "es.srt"), "--background", str(files / "bg.wav"), "--out",
                      str(files / "out"), "--format", "wav,flac", "--quiet", env={"PREFECT_API_URL": prefect_api})
    assert result.returncode == 0, result.stderr
    assert "dubbed 1 language(s)" in result.stdout and "es: 1 cues" in result.stdout
    assert "no voice profile speaks 'es' here" in result.stderr  # the espeak-ng fallback is announced
    published = files / "out" / "bg" / "es"
    assert sorted(p.name for p in published.iterdir()) == ["dialogue.wav", "manifest.json", "mix.flac", "mix.wav",
                                                           "qa.json", "report.html", "subtitles.srt",
                                                           "subtitles.vtt"]  # --qa warn by default
    assert soundfile.info(str(published / "mix.wav")).frames == 48_000 * 3


def test_dub_library_imports_no_prefect_and_no_heavy_engines():
    code = ("import sys, castline.dub.pipeline, castline.dub.manifest, castline_cli.dub, castline_cli.main; "
            "bad = [m for m in ('prefect', 'onnxruntime', 'hibari', 'piper', 'torch') if m in sys.modules]; "
            "print(bad)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_overrun_fail_policy_exits_1_with_one_line_naming_the_cue(files, prefect_api):
    (files / "tight.es.srt").write_text("1\n00:00:00,500 --> 00:00:00,700\nANA: Una frase demasiado larga "
                                        "para un hueco de doscientos milisegundos.\n", encoding="utf-8")
    result = castline("--cues", str(files / "tight.es.srt"), "--background", str(files / "bg.wav"), "--out",
                      str(files / "out"), "--overrun", "fail", "--quiet", env={"PREFECT_API_URL": prefect_api})
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if not line.startswith("warning:")]
    assert len(errors) == 1 and "cue 1 (line 2) by" in errors[0] and "Traceback" not in result.stderr
    assert not (files / "out" / "bg").exists()  # nothing published (only the take cache was written)
