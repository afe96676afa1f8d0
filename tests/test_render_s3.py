"""A real render through the Prefect flow into an S3 bucket (rclone serve s3), read back and verified."""

from __future__ import annotations

import json

import pytest

from castline.options import RenderOptions
from castline.qa.settings import QASettings
from castline.storage import open_store

pytestmark = pytest.mark.slow

SCRIPT = """\
episode:
  id: s3-test
  title: S3 test
  preset: podcast
cast:
  host: {voice: heart, name: Harriet}
  guest: {voice: joe, name: Joe}
turns:
  - speaker: host
    text: Welcome. This episode goes straight into a bucket.
  - speaker: guest
    text: And every object in it carries its checksum.
"""


def _listed(manifest: dict) -> list[dict]:
    return [item for part in ("files", "transcripts", "chunks") for item in manifest.get(part, [])]


def test_render_to_s3_reads_back_with_checksums_and_resumes_from_the_bucket(prefect_api, s3_env, tmp_path):
    from flows.render_episode import run_render

    bucket = s3_env.make_bucket()
    script = tmp_path / "episode.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    options = RenderOptions(script=str(script), out=f"s3://{bucket}/shows", formats=("wav",), workers=2,
                            qa=QASettings(policy="off"))
    store = open_store(options.out)

    uri = run_render(options)
    assert uri == f"s3://{bucket}/shows/s3-test/manifest.json"
    manifest = json.loads(store.get_bytes("s3-test/manifest.json"))
    listed = _listed(manifest)
    assert {item["format"] for item in manifest["files"]} == {"wav"} and len(manifest["chunks"]) >= 2
    for item in listed:
        assert item["uri"].startswith(store.root_uri + "/")
        key = item["uri"][len(store.root_uri) + 1:]
        store.verify(key, item["sha256"])  # reads the bytes back and hashes them
        assert store.info(key).bytes == item["bytes"]
    # Only whole objects on the server's disk: nothing temporary, nothing partial.
    on_disk = sorted(str(path.relative_to(s3_env.root / bucket / "shows")) for path in
                     (s3_env.root / bucket / "shows").rglob("*") if path.is_file())
    assert on_disk == sorted(store.list())

    # Another machine pointing at the same bucket: the chunks come from the store's cache.
    again = run_render(RenderOptions(**{**options.__dict__, "formats": ("flac",), "force": True}))
    second = json.loads(store.get_bytes(again[len(store.root_uri) + 1:]))
    assert second["render"]["chunks_rendered"] == 0
    assert second["render"]["chunks_reused"] == len(manifest["chunks"])
    for item in _listed(second):
        store.verify(item["uri"][len(store.root_uri) + 1:], item["sha256"])
