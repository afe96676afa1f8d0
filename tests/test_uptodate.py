"""The up-to-date check: a render key match AND intact published files, nothing less."""

import json

from castline.render.options import RenderOptions
from castline.render.plan import prepare_render
from castline.render.stitch import StitchSettings
from castline.storage import open_store
from castline.delivery.uptodate import current_manifest_uri, render_key


def _plan(tmp_path, text="Speaker 1: Hello there.\nSpeaker 2: Hi.\n", **options):
    script = tmp_path / "ep.txt"
    script.write_text(text, encoding="utf-8")
    return prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), **options))


def _publish_fake(store, plan, key):
    info = store.put_bytes(b"audio", f"{plan.episode.meta.episode_id}/releases/r1/episode.wav")
    manifest = {"render": {"render_key": key}, "transcripts": [], "release": "r1",
                "files": [{"key": info.key, "uri": info.uri, "sha256": info.sha256, "bytes": info.bytes}]}
    store.put_bytes(json.dumps(manifest).encode(), f"{plan.episode.meta.episode_id}/manifest.json")


def test_key_changes_with_what_shapes_the_output(tmp_path, voices_dir):
    base = _plan(tmp_path)
    key = render_key(base, StitchSettings())
    assert key == render_key(_plan(tmp_path), StitchSettings())
    assert key != render_key(_plan(tmp_path, text="Speaker 1: Hello there!\nSpeaker 2: Hi.\n"), StitchSettings())
    assert key != render_key(_plan(tmp_path, seed=1), StitchSettings())
    assert key != render_key(_plan(tmp_path, formats=("wav", "mp3")), StitchSettings())
    assert key != render_key(_plan(tmp_path, preset="ebu-r128"), StitchSettings())
    assert key != render_key(base, StitchSettings.with_pauses((("sentence", 300),)))


def test_current_only_when_files_are_intact(tmp_path):
    plan = _plan(tmp_path)
    store = open_store(tmp_path / "out")
    key = render_key(plan, StitchSettings())
    assert current_manifest_uri(store, plan, key) is None
    _publish_fake(store, plan, key)
    assert current_manifest_uri(store, plan, key).endswith("/manifest.json")
    assert current_manifest_uri(store, plan, "other-key") is None
    store.put_bytes(b"tampere", f"{plan.episode.meta.episode_id}/releases/r1/episode.wav")
    assert current_manifest_uri(store, plan, key) is None  # same size, other content
    store.put_bytes(b"audio", f"{plan.episode.meta.episode_id}/releases/r1/episode.wav")
    assert current_manifest_uri(store, plan, key) is not None
    store.delete(f"{plan.episode.meta.episode_id}/releases/r1/episode.wav")
    assert current_manifest_uri(store, plan, key) is None
