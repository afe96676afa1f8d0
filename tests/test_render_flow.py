"""End to end through the Prefect flow: both offline voices, every format, manifest, SRT, re-render."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
import soundfile

from castline.audio.encode import measure_file
from castline.render.options import RenderOptions
from castline.core.timebase import samples_to_ms

pytestmark = pytest.mark.slow

SCRIPT = """\
episode:
  id: flow-test
  title: Flow test
  preset: podcast
cast:
  host: {voice: heart, name: Harriet}
  guest: {voice: joe, name: Joe}
turns:
  - chapter: Start
  - speaker: host
    text: Welcome to the test. This line is spoken by the first voice.
  - speaker: guest
    text: And this one by the second voice, which comes from a different engine.
  - pause_ms: 1000
  - speaker: host
    text: >
      Here is a longer turn, so the planner has to split it. It keeps going with a second
      sentence about the weather, which was fine. Then a third sentence arrives, talking about
      the sea and the harbour. A fourth sentence closes the thought about boats and ropes.
      A fifth sentence makes sure we go past the budget of one chunk for this engine, with room.
  - scene: End
  - speaker: guest
    text: Goodbye.
"""


def _path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


def _release(folder: Path, manifest: dict) -> Path:
    return folder / "out" / "flow-test" / "releases" / manifest["release"]


@pytest.fixture(scope="module")
def rendered(prefect_api, tmp_path_factory):
    from castline_flows.render_episode import run_render

    folder = tmp_path_factory.mktemp("flow")
    script = folder / "episode.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    options = RenderOptions(script=str(script), out=str(folder / "out"), formats=("wav", "flac", "mp3", "opus"),
                            workers=2, seed=5)
    uri = run_render(options)
    manifest = json.loads(_path(uri).read_text(encoding="utf-8"))
    return options, manifest, folder


def test_manifest_contract(rendered):
    _, manifest, folder = rendered
    for key in ("episode", "sample_rate", "channels", "duration_samples", "preset", "files", "turns", "chunks",
                "engines"):
        assert key in manifest
    assert manifest["episode"] == "flow-test" and manifest["sample_rate"] == 24000 and manifest["channels"] == 1
    assert manifest["preset"]["name"] == "podcast" and manifest["preset"]["mono_convention"] == "dual-mono"
    assert {f["format"] for f in manifest["files"]} == {"wav", "flac", "mp3", "opus"}
    assert {e["name"] for e in manifest["engines"]} == {"hibari", "piper"}
    for chunk in manifest["chunks"]:
        assert {"hash", "uri", "turn", "text"} <= set(chunk)
        assert _path(chunk["uri"]).is_file()
    assert len(manifest["turns"]) == 4
    assert len(manifest["turns"][2]["chunks"]) >= 2  # the long turn was split
    assert [c["title"] for c in manifest["chapters"]] == ["Start"]
    out = folder / "out" / "flow-test"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "releases"]
    assert [p.name for p in (out / "releases").iterdir()] == [manifest["release"]]
    assert sorted(p.name for p in _release(folder, manifest).iterdir()) == sorted(
        ["episode.wav", "episode.flac", "episode.mp3", "episode.opus", "manifest.json", "transcript.srt",
         "transcript.vtt", "transcript.json", "chapters.json", "qa.json", "report.html", "loudness.png",
         "waveform.png"])
    assert (_release(folder, manifest) / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()


def test_every_file_is_inside_the_preset_when_decoded(rendered):
    import hashlib

    _, manifest, _ = rendered
    for item in manifest["files"]:
        path = _path(item["uri"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == item["sha256"]
        assert path.stat().st_size == item["bytes"]
        rate = {"mp3": 44100, "opus": 48000}.get(item["format"], 24000)
        reading = measure_file(path, rate, 1)
        assert abs(reading.integrated_lufs - (-16.0)) <= 1.0, item["format"]
        assert reading.true_peak_dbtp <= -1.0, item["format"]
        assert abs(reading.integrated_lufs - item["integrated_lufs"]) < 0.05


def test_wav_loudness_agrees_with_pyloudnorm(rendered):
    import pyloudnorm

    _, manifest, _ = rendered
    wav = next(f for f in manifest["files"] if f["format"] == "wav")
    audio, rate = soundfile.read(_path(wav["uri"]), dtype="float64")
    single_channel = pyloudnorm.Meter(rate, filter_class="DeMan").integrated_loudness(audio)
    # castline measures mono as dual-mono: +3.01 dB over the single-channel reading
    assert abs(single_channel + 10 * np.log10(2) - wav["integrated_lufs"]) < 0.1
    assert audio.size == manifest["duration_samples"]


def test_turn_timings_are_real(rendered):
    _, manifest, _ = rendered
    wav = next(f for f in manifest["files"] if f["format"] == "wav")
    audio, _ = soundfile.read(_path(wav["uri"]), dtype="float32")
    turns = manifest["turns"]
    previous_end = 0
    for turn in turns:
        assert previous_end <= turn["start_sample"] < turn["end_sample"] <= audio.size
        speech = audio[turn["start_sample"]:turn["end_sample"]]
        assert 20 * np.log10(np.sqrt(np.mean(speech ** 2))) > -35
        if previous_end:
            gap = audio[previous_end:turn["start_sample"]]
            assert gap.size > 0 and np.max(np.abs(gap)) < 1e-4  # pauses are silent
        previous_end = turn["end_sample"]
    # the explicit 1000 ms pause before turn 2
    assert turns[2]["start_sample"] - turns[1]["end_sample"] == 24000


def test_srt_follows_chunk_timings(rendered):
    _, manifest, folder = rendered
    srt = (_release(folder, manifest) / "transcript.srt").read_text(encoding="utf-8")
    blocks = [b for b in srt.strip().split("\n\n") if b]
    # Long chunks are split into cues of at most 2 lines of 32 characters; each chunk starts one.
    assert len(blocks) >= len(manifest["chunks"])
    starts = {block.split("\n")[1].split(" --> ")[0] for block in blocks}
    for chunk in manifest["chunks"]:
        ms = samples_to_ms(chunk["start_sample"], 24000)
        assert f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}" in starts
    first = manifest["chunks"][0]
    start_ms = round(first["start_sample"] * 1000 / 24000)
    assert f"00:00:00,{start_ms:03d} -->" in blocks[0]
    assert "Harriet: Welcome to the test." in blocks[0]
    assert all(len(line) <= 32 for block in blocks for line in block.split("\n")[2:])
    vtt = (_release(folder, manifest) / "transcript.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "<v Joe>" in vtt


def test_rerender_synthesises_nothing_and_edit_rerenders_one_turn(rendered, monkeypatch):
    import castline_flows.render_episode as flow_module
    from castline_flows.render_episode import run_render

    options, first, folder = rendered
    arenas = []
    monkeypatch.setattr(flow_module, "share_allocator_arenas", arenas.append)
    chunk_files = {c["uri"]: _path(c["uri"]).stat().st_mtime_ns for c in first["chunks"]}
    episode_dir = folder / "out" / "flow-test"
    published = {p: p.stat().st_mtime_ns for p in episode_dir.rglob("*")}
    # Unchanged: recognised as up to date, nothing rewritten at all.
    assert _path(run_render(options)) == episode_dir / "manifest.json"
    assert {p: p.stat().st_mtime_ns for p in episode_dir.rglob("*")} == published
    assert arenas == [max(2, options.workers)] * 2  # before the flow, and at its start
    # Forced: the whole chain runs again, but from cached chunks only.
    from dataclasses import replace

    again = json.loads(_path(run_render(replace(options, force=True))).read_text(encoding="utf-8"))
    assert again["render"]["chunks_rendered"] == 0
    assert again["render"]["chunks_reused"] == len(first["chunks"])
    assert {c["uri"]: _path(c["uri"]).stat().st_mtime_ns for c in first["chunks"]} == chunk_files
    wav = lambda m: next(f["sha256"] for f in m["files"] if f["format"] == "wav")  # noqa: E731
    assert wav(again) == wav(first)  # same chunks in, same master out

    script = Path(options.script)
    script.write_text(SCRIPT.replace("And this one by the second voice", "And this one, edited, by the second voice"),
                      encoding="utf-8")
    edited = json.loads(_path(run_render(options)).read_text(encoding="utf-8"))
    assert edited["render"]["chunks_rendered"] == 1
    assert edited["render"]["chunks_reused"] == len(first["chunks"]) - 1
    # The edit is a new release; the previous one stays for readers still holding the old manifest.
    assert edited["release"] != first["release"]
    assert sorted(p.name for p in (episode_dir / "releases").iterdir()) == sorted([first["release"], edited["release"]])


def test_qa_heard_every_chunk_of_the_real_voices(rendered):
    _, manifest, folder = rendered
    qa = json.loads((_release(folder, manifest) / "qa.json").read_text(encoding="utf-8"))
    assert manifest["qa"]["verdict"] == qa["verdict"] and qa["verdict"] in ("pass", "warn")
    assert [c["index"] for c in qa["chunks"]] == [c["index"] for c in manifest["chunks"]]
    for chunk in qa["chunks"]:
        assert chunk["transcript"] and isinstance(chunk["flags"], list) and isinstance(chunk["passed"], bool)
        assert chunk["attempts"] >= 1
    # both offline voices are intelligible: Whisper base hears them nearly word for word
    assert sum(c["wer"] for c in qa["chunks"]) / len(qa["chunks"]) < 0.15
    html = (_release(folder, manifest) / "report.html").read_text(encoding="utf-8")
    assert "<table" in html and "loudness.png" in html and "waveform.png" in html
    assert {f["name"] for f in manifest["qa"]["files"]} == {"qa.json", "report.html", "loudness.png", "waveform.png"}
