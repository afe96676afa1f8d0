"""The typed manifests read what the previous release published and write it back unchanged."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest

from castline.delivery.json_record import JsonObject
from castline.delivery.manifest import EpisodeManifest, FileEntry, LoudnessEntry, ManifestIndex, QAFileEntry, TranscriptEntry
from castline.delivery.recheck import episode_facts
from castline.delivery.releases import live_release, manifest_key
from castline.delivery.uptodate import current_manifest_uri, render_key
from castline.dsp.loudness import LoudnessReading
from castline.dsp.presets import PRESETS
from castline.dub.manifest import DubManifest, DuckEntry, FitCounts, FitEntry
from castline.dub.options import DuckSettings, FitSettings
from castline.qa.episode import ChunkFacts
from castline.qa.settings import QASettings
from castline.render.options import RenderOptions
from castline.render.plan import prepare_render
from castline.render.stitch import StitchSettings
from castline.storage import open_store

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
EPISODE = FIXTURES / "episode-v0.1.0.json"
DUB = FIXTURES / "dub-v0.1.0.json"


@pytest.mark.parametrize(("record", "path"), [(EpisodeManifest, EPISODE), (DubManifest, DUB)])
def test_manifests_of_the_previous_release_round_trip(record, path):
    document = json.loads(path.read_text(encoding="utf-8"))
    manifest = record.from_json(document)
    assert manifest.to_json() == document
    assert json.loads(manifest.to_bytes()) == document
    assert record.from_json(manifest.to_bytes()) == manifest
    assert pickle.loads(pickle.dumps(manifest)) == manifest  # crosses process boundaries intact


def test_the_record_is_typed_and_frozen():
    manifest = EpisodeManifest.from_json(EPISODE.read_bytes())
    assert manifest.episode == "castline-demo" and manifest.release == "02f7cff3e364a5c9"
    assert isinstance(manifest.files[0], FileEntry) and manifest.file("mp3").measured_sample_rate == 44100
    assert isinstance(manifest.transcripts[0], TranscriptEntry) and manifest.transcripts[1].format == "vtt"
    assert manifest.turns[0].chunks == (0,) and manifest.chapters[1].start_sample == 1136880
    assert manifest.voices[0].words_per_minute == (105.0, 415.0) and manifest.voices[0].consent is None
    assert manifest.mastering.noise_floor_dbfs == "digital-silence"
    assert manifest.mastering.master_chain[1]["step"] == "true_peak_limiter"
    assert manifest.mastering.stitch_chain[3]["gains_db"] == {"guest": 0.063, "host": -0.072}
    assert isinstance(manifest.mastering.master, LoudnessEntry) and manifest.mastering.stitched.true_peak_dbtp is None
    assert dict(manifest.render.timings_s)["synthesise"] == 12.14 and manifest.render.objects_uploaded == 8
    assert manifest.qa.verdict == "pass" and isinstance(manifest.qa.files[0], QAFileEntry)
    assert manifest.preset_name == "podcast"
    with pytest.raises(dataclasses.FrozenInstanceError):
        manifest.release = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        manifest.mastering.stitch_chain[3]["gains_db"]["host"] = 0.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        manifest.render.timings_s.update({"plan": 0.0})  # type: ignore[attr-defined]


def test_qa_is_left_out_when_absent_and_other_documents_are_refused():
    document = json.loads(EPISODE.read_text(encoding="utf-8"))
    del document["qa"]
    manifest = EpisodeManifest.from_json(document)
    assert manifest.qa is None and "qa" not in manifest.to_json()
    assert manifest.to_json() == document
    with pytest.raises(ValueError, match="unknown key"):
        EpisodeManifest.from_json({**document, "surprise": 1})
    with pytest.raises(KeyError):
        EpisodeManifest.from_json({key: value for key, value in document.items() if key != "chunks"})
    with pytest.raises(TypeError):
        EpisodeManifest.from_json({**document, "sample_rate": "24000"})


def test_dub_record_reads_its_parts():
    manifest = DubManifest.from_json(DUB.read_bytes())
    assert manifest.fit.cues == 2 and manifest.fit.stretcher == "rubberband"
    assert manifest.dialogue.speaker_gains_db == JsonObject({"ANA": -0.773, "BEN": 1.852})
    assert manifest.background.channels == 2 and manifest.stems[0].reading.channels == 1
    assert manifest.cues[0].steps == () and manifest.voices[0].engine_options == {"speed": 1.0}
    assert manifest.file("wav").integrated_lufs == -23.0


def test_records_name_every_setting_they_report():
    # A setting added to the options without a field here would silently go missing from manifests.
    fit_fields = {spec.name for spec in dataclasses.fields(FitEntry)}
    assert {spec.name for spec in dataclasses.fields(FitSettings)} | {
        spec.name for spec in dataclasses.fields(FitCounts)} == fit_fields
    assert [spec.name for spec in dataclasses.fields(DuckSettings)] == [
        spec.name for spec in dataclasses.fields(DuckEntry)]
    assert {spec.name for spec in dataclasses.fields(LoudnessEntry)} <= {
        spec.name for spec in dataclasses.fields(LoudnessReading)} | {"true_peak_dbtp"}
    assert set(PRESETS["acx"].to_manifest()) == set(EpisodeManifest.from_json(EPISODE.read_bytes()).preset)


def test_recheck_builds_qa_facts_from_the_record():
    manifest = EpisodeManifest.from_json(EPISODE.read_bytes())
    facts = episode_facts(manifest, QASettings(policy="strict"))
    assert facts.episode_id == "castline-demo" and facts.language == "en"
    assert facts.preset == PRESETS["podcast"] and facts.settings.policy == "strict"
    assert all(isinstance(job, ChunkFacts) for job in facts.jobs)
    assert [(job.index, job.turn, job.speaker, job.voice_id, job.engine, job.text) for job in facts.jobs] == [
        (chunk.index, chunk.turn, chunk.speaker, chunk.voice, chunk.engine, chunk.text) for chunk in manifest.chunks]


def test_up_to_date_check_and_releases_read_a_published_record(tmp_path):
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Hello there.\nSpeaker 2: Hi.\n", encoding="utf-8")
    plan = prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out")))
    store = open_store(tmp_path / "out")
    key = render_key(plan, StitchSettings())
    episode = plan.episode.meta.episode_id
    published = EpisodeManifest.from_json(EPISODE.read_bytes())
    # The fixture's manifest, re-pointed at objects stored here (same layout, this plan's key).
    release = key[:16]
    files = tuple(dataclasses.replace(item, **_put(store, f"{episode}/releases/{release}/episode.{item.format}"))
                  for item in published.files)
    transcripts = tuple(dataclasses.replace(item, **_put(store, f"{episode}/releases/{release}/transcript.{item.format}"))
                        for item in published.transcripts)
    qa_files = tuple(dataclasses.replace(item, **_put(store, f"{episode}/releases/{release}/{item.name}"))
                     for item in published.qa.files)
    manifest = dataclasses.replace(published, episode=episode, release=release, files=files, transcripts=transcripts,
                                   render=dataclasses.replace(published.render, render_key=key),
                                   qa=dataclasses.replace(published.qa, files=qa_files))
    store.put_bytes(manifest.to_bytes(), manifest_key(episode))
    assert ManifestIndex.from_json(manifest.to_json()).objects() == ManifestIndex.from_json(manifest.to_bytes()).objects()
    assert len(ManifestIndex.from_json(manifest.to_bytes()).objects()) == 8
    assert current_manifest_uri(store, plan, key) == store.uri_for(manifest_key(episode))
    assert live_release(store, episode) == release
    store.put_bytes(b"changed", f"{episode}/releases/{release}/report.html")  # a listed QA file
    assert current_manifest_uri(store, plan, key) is None


def _put(store, key: str) -> dict[str, object]:
    info = store.put_bytes(f"object {key}".encode(), key)
    return {"key": info.key, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes}
