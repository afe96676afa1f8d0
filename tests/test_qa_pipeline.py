"""QA inside the render: bad takes are heard, flagged and retried; strict refuses delivery."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from castline.engines import registry
from castline.options import RenderOptions
from castline.qa.settings import QASettings
from castline.render_plan import prepare_render
from castline.storage import open_store
from castline.synthesis import synthesise_batch
from fake_engines import FlakyHibari

pytestmark = pytest.mark.slow


def _plan(tmp_path, text, engine=None, **qa):
    script = tmp_path / "ep.txt"
    script.write_text(text, encoding="utf-8")
    return prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), cast=(("1", "heart"),),
                                        engine=engine, qa=QASettings(**qa)))


def test_wrong_or_silent_first_takes_are_flagged_and_retried(tmp_path, monkeypatch):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "flaky-hibari", "fake_engines:FlakyHibari")
    import castline.render_plan as render_plan

    monkeypatch.setattr(render_plan, "voice_usability", lambda voice, engine=None: registry.Availability(True))
    FlakyHibari.takes = {}
    plan = _plan(tmp_path, "Speaker 1: The library opens at nine every morning.\n\n"
                           "Speaker 1: Please keep quiet in the reading room.\n", engine="flaky-hibari")
    records = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    for record in records:
        check = record.check
        assert check.attempts == 2 and check.passed, check
        first, second = check.attempt_log
        assert not first[4] and second[4]  # the second take was chosen
        assert first[3] and ("wer-high" in first[3] or "silent" in first[3])
        assert check.wer <= 0.15
    # the accepted take and its QA are stored: a re-run hears nothing new and renders nothing
    again = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    assert [r.rendered for r in again] == [False, False] and again[0].check.attempts == 2


def test_a_line_the_voice_cannot_speak_is_flagged_while_english_passes(tmp_path):
    plan = _plan(tmp_path, "Speaker 1: Good morning, and welcome to the show.\n"
                           "Speaker 1: Buenos días, ¿dónde está la biblioteca municipal?\n"
                           "Speaker 1: Thank you for listening to us today.\n", max_attempts=2)
    records = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "out"))
    english, spanish, closing = (record.check for record in records)
    assert english.passed and closing.passed
    assert not spanish.passed and "wer-high" in spanish.flags and spanish.attempts == 2


def test_strict_qa_refuses_to_publish(prefect_api, tmp_path):
    script = tmp_path / "strict.txt"
    script.write_text("Speaker 1: Good morning.\nSpeaker 1: Guten Morgen, wie geht es Ihnen heute?\n",
                      encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    result = subprocess.run([sys.executable, "-m", "castline", "render", str(script), "--out", str(tmp_path / "out"),
                             "--cast", "1=heart", "--qa", "strict", "--qa-attempts", "1", "--quiet"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0
    assert "QA (strict)" in result.stderr and "nothing published" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "strict").exists()


def test_castline_qa_rechecks_a_published_episode(prefect_api, tmp_path):
    script = tmp_path / "ok.txt"
    script.write_text("Speaker 1: Hello and welcome.\nSpeaker 2: Thanks for having me on the show.\n",
                      encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    rendered = subprocess.run([sys.executable, "-m", "castline", "render", str(script), "--out", str(tmp_path / "out"),
                               "--cast", "1=heart", "2=joe", "--qa", "off", "--quiet"],
                              capture_output=True, text=True, env=env, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    folder = tmp_path / "out" / "ok"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    release = folder / "releases" / manifest["release"]
    assert not (release / "qa.json").exists()  # QA was off
    checked = subprocess.run([sys.executable, "-m", "castline", "qa", str(folder)], capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stderr
    assert "QA pass: 2 of 2 chunks passed" in checked.stdout or "QA warn" in checked.stdout
    qa = json.loads((release / "qa.json").read_text(encoding="utf-8"))
    assert len(qa["chunks"]) == 2 and all(c["transcript"] for c in qa["chunks"])
    assert [f["format"] for f in qa["files"]] == ["wav"]
    missing = subprocess.run([sys.executable, "-m", "castline", "qa", str(tmp_path / "nowhere")],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "manifest.json" in missing.stderr
