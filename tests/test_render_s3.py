"""A real render through the Prefect flow into an S3 bucket (rclone serve s3), read back and verified."""

from __future__ import annotations

import json

import pytest

from castline.render.options import RenderOptions
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
    from castline_flows.render_episode import run_render

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


def _upload_folder(store, folder, prefix: str) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.put_file(path, f"{prefix}/{path.relative_to(folder).as_posix()}")


def test_render_through_a_faulty_network_from_s3_inputs(prefect_api, s3_env, tmp_path, voices_dir, monkeypatch):
    """Script and voices read from s3://, output to s3://, every request through a proxy failing 20 %."""
    from fault_proxy import FaultProxy

    from castline_flows.render_episode import run_render

    bucket = s3_env.make_bucket()
    inputs = open_store(f"s3://{bucket}/inputs")
    inputs.put_bytes(SCRIPT.encode("utf-8"), "episode.yaml")
    _upload_folder(inputs, voices_dir, "voices")
    port = int(s3_env.endpoint.rsplit(":", 1)[1])
    with FaultProxy(port, fault_rate=0.2, seed=11) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.endpoint)
        uri = run_render(RenderOptions(script=f"s3://{bucket}/inputs/episode.yaml", out=f"s3://{bucket}/shows",
                                       voices_dir=f"s3://{bucket}/inputs/voices", formats=("wav", "mp3"),
                                       workers=2, qa=QASettings(policy="off")))
        assert proxy.faults >= 5, proxy.counts  # the render really met failures, and went on
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env.endpoint)
    store = open_store(f"s3://{bucket}/shows")
    manifest = json.loads(store.get_bytes(uri[len(store.root_uri) + 1:]))
    for item in _listed(manifest):
        store.verify(item["uri"][len(store.root_uri) + 1:], item["sha256"])
    on_disk = sorted(str(path.relative_to(s3_env.root / bucket / "shows")) for path in
                     (s3_env.root / bucket / "shows").rglob("*") if path.is_file())
    assert on_disk == sorted(store.list())  # no temporary or partial objects


def test_cli_names_the_bucket_and_never_the_secret(s3_env, tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "episode.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    bucket = s3_env.make_bucket()
    wrong = "wr0ng-s3cret-value"
    cases = {
        "missing bucket": ({}, "s3://no-such-bucket-here/shows", "no-such-bucket-here"),
        "wrong secret": ({"AWS_SECRET_ACCESS_KEY": wrong}, f"s3://{bucket}/shows", bucket),
    }
    for name, (extra, out, named) in cases.items():
        result = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out", out, "--qa", "off"],
                                capture_output=True, text=True, env={**os.environ, **extra}, timeout=120)
        assert result.returncode == 2, (name, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and named in lines[0], (name, lines)
        assert wrong not in result.stderr + result.stdout and s3_env.secret_key not in result.stderr


def test_killed_upload_to_s3_resumes_without_uploading_again(prefect_api, s3_env, tmp_path):
    import os
    import signal
    import subprocess
    import sys

    bucket = s3_env.make_bucket()
    script = tmp_path / "episode.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    command = [sys.executable, "-m", "castline_cli", "render", str(script), "--out", f"s3://{bucket}/shows",
               "--format", "wav,flac", "--qa", "off", "--quiet"]
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    killed = subprocess.run(command, capture_output=True, text=True, env={**env, "CASTLINE_KILL_AT": "publish:2"},
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    store = open_store(f"s3://{bucket}/shows")
    assert not store.exists("s3-test/manifest.json")  # killed mid-publish: nothing visible to readers
    resumed = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    manifest = json.loads(store.get_bytes("s3-test/manifest.json"))
    assert manifest["render"]["chunks_rendered"] == 0 and manifest["render"]["objects_reused"] == 2
    for item in _listed(manifest):
        store.verify(item["uri"][len(store.root_uri) + 1:], item["sha256"])
    on_disk = sorted(str(path.relative_to(s3_env.root / bucket / "shows")) for path in
                     (s3_env.root / bucket / "shows").rglob("*") if path.is_file())
    assert on_disk == sorted(store.list())  # no temporary or partial objects
