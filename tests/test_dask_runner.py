"""--runner dask: chunk synthesis on a Dask LocalCluster of 2 worker processes, same master as threads."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest

from castline.render.options import RenderOptions
from castline.qa.settings import QASettings

pytestmark = pytest.mark.slow

SCRIPT = "episode:\n  id: scaled\n  title: Scaled out\ncast:\n  host: {voice: heart}\nturns:\n" + "".join(
    f"  - speaker: host\n    text: Sentence number {word} goes to whichever worker is free.\n"
    for word in ("one", "two", "three", "four", "five", "six"))


def _manifest(uri: str) -> dict:
    return json.loads(Path(url2pathname(urlparse(uri).path)).read_text(encoding="utf-8"))


def test_dask_local_cluster_renders_the_same_master_as_threads(prefect_api, tmp_path, voices_dir):
    from castline_flows.render_episode import run_render

    script = tmp_path / "scaled.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    common = dict(script=str(script), voices_dir=str(voices_dir), workers=2, seed=3, qa=QASettings(policy="off"))
    on_dask = _manifest(run_render(RenderOptions(out=str(tmp_path / "dask"), runner="dask", **common)))
    on_threads = _manifest(run_render(RenderOptions(out=str(tmp_path / "threads"), **common)))
    assert on_dask["render"]["chunks_rendered"] == len(on_dask["chunks"]) == 6
    wav = lambda manifest: next(f["sha256"] for f in manifest["files"] if f["format"] == "wav")  # noqa: E731
    assert wav(on_dask) == wav(on_threads)


def test_dask_address_of_a_running_cluster(prefect_api, tmp_path, voices_dir):
    from distributed import LocalCluster

    from castline_flows.render_episode import run_render

    script = tmp_path / "scaled.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    # Workers of a cluster started elsewhere report to the Prefect API named in their environment.
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                      env={"PREFECT_API_URL": prefect_api}) as cluster:
        manifest = _manifest(run_render(RenderOptions(
            script=str(script), out=str(tmp_path / "out"), voices_dir=str(voices_dir), workers=2, seed=3,
            qa=QASettings(policy="off"), runner="dask", dask_address=cluster.scheduler_address)))
        assert len(cluster.workers) == 2
    assert manifest["render"]["chunks_rendered"] == 6


def test_dask_options_are_validated():
    with pytest.raises(ValueError, match="--dask-address needs --runner dask"):
        RenderOptions(script="x", dask_address="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="not like tcp://HOST:PORT"):
        RenderOptions(script="x", runner="dask", dask_address="127.0.0.1")
    with pytest.raises(ValueError, match="unknown runner"):
        RenderOptions(script="x", runner="ray")
