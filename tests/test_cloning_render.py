"""`castline render --engine pocket-tts|vibevoice --model <tiny dir>` end to end through mastering,
with cloned voice profiles (consent, provenance) and tiny random models built here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from castline.voices.ingest import add_voice
from conftest import speech_like

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
SCRIPT = "Speaker 1: Hello and welcome to the cloned show.\nSpeaker 2: Thanks, it is good to be here.\n" \
         "Speaker 1: Let us begin.\n"


def _voices(folder: Path, engine: str) -> Path:
    voices = folder / "voices"
    for index, name in enumerate(("ana", "ben")):
        if (voices / name / "voice.yaml").exists():
            continue
        reference = folder / f"{name}.wav"
        soundfile.write(reference, speech_like(4.0, 24_000, seed=index), 24_000)
        add_voice(voices, name, reference, engine=engine, consent_statement=f"I, {name}, agree.",
                  consent_scope="tests")
    return voices


def _render(prefect_api: str, folder: Path, engine: str, model: Path, *extra: str) -> subprocess.CompletedProcess:
    script = folder / "cloned.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    return subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(folder / "out"),
                           "--engine", engine, "--model", str(model), "--voices-dir", str(_voices(folder, engine)),
                           "--cast", "1=ana", "2=ben", "--format", "wav,mp3", "--quiet",
                           # tiny random models make noise, not speech: QA has its own tests
                           "--qa", "off", *extra],
                          capture_output=True, text=True, env=env, timeout=600)


def _check_manifest(folder: Path, engine: str) -> dict:
    manifest = json.loads((folder / "out" / "cloned" / "manifest.json").read_text(encoding="utf-8"))
    assert {e["name"] for e in manifest["engines"]} == {engine}
    for voice in manifest["voices"]:
        assert voice["cloned"] is True and voice["profile_version"] == 1
        assert voice["consent"]["scope"] == "tests" and voice["consent"]["evidence"] == "statement"
    for item in manifest["files"]:
        assert abs(item["integrated_lufs"] - (-16.0)) <= 1.0 and item["true_peak_dbtp"] <= -1.0
    assert len(manifest["turns"]) == 3
    return manifest


@pytest.fixture(scope="module")
def pocket_model(tmp_path_factory) -> Path:
    """One tiny Pocket TTS checkpoint for the file: the engine only reads it."""
    from pocket_tts_tiny import build_tiny_pocket_tts

    return build_tiny_pocket_tts(tmp_path_factory.mktemp("pocket-model") / "pocket")


def test_pocket_tts_render_end_to_end(prefect_api, tmp_path, pocket_model):
    result = _render(prefect_api, tmp_path, "pocket-tts", pocket_model)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = _check_manifest(tmp_path, "pocket-tts")
    assert manifest["render"]["chunks_rendered"] == 3


def test_render_without_consent_is_refused_before_anything_runs(prefect_api, tmp_path, pocket_model):
    voices = _voices(tmp_path, "pocket-tts")
    profile = voices / "ben" / "voice.yaml"
    text = profile.read_text(encoding="utf-8")
    profile.write_text(text[: text.index("consent:")] + text[text.index("ingest:"):], encoding="utf-8")
    script = tmp_path / "cloned.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", str(tmp_path / "out"),
                             "--engine", "pocket-tts", "--model", str(pocket_model), "--voices-dir", str(voices),
                             "--cast", "1=ana", "2=ben"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "ben" in result.stderr and "consent" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_vibevoice_render_end_to_end(prefect_api, tmp_path):
    from vibevoice_tiny import build_tiny_vibevoice

    # speak_frames: the tiny random model's saved generation config makes it emit 45 frames
    # (6 s) and stop, so the unmodified CLI path runs (no test hook in the process).
    model = build_tiny_vibevoice(tmp_path / "vibevoice", speak_frames=45)
    result = _render(prefect_api, tmp_path, "vibevoice", model, "--diffusion-steps", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = _check_manifest(tmp_path, "vibevoice")
    # one window holds all three lines (2 speakers): one waveform of exactly 45 × 3200 samples, split in 3
    assert [chunk["duration_samples"] for chunk in manifest["chunks"]] and \
        sum(chunk["duration_samples"] for chunk in manifest["chunks"]) == 45 * 3200
    turns = manifest["turns"]
    assert turns[1]["start_sample"] == turns[0]["end_sample"] and turns[2]["start_sample"] == turns[1]["end_sample"]
    # --window-batch sets windows per generate call, not the audio: every chunk is reused.
    again = _render(prefect_api, tmp_path, "vibevoice", model, "--diffusion-steps", "4", "--force",
                    "--window-batch", "1")
    assert again.returncode == 0, again.stderr[-2000:]
    forced = json.loads((tmp_path / "out" / "cloned" / "manifest.json").read_text(encoding="utf-8"))
    assert forced["render"]["chunks_rendered"] == 0 and forced["render"]["chunks_reused"] == 3
