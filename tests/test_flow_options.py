"""Render options cross into the flow as one typed value; a run plans and checks once."""

from __future__ import annotations

import dataclasses

import pytest

from castline.delivery.uptodate import prepare_episode
from castline.engines.base import EngineOptions
from castline.qa.settings import QASettings
from castline.render.inputs import local_inputs
from castline.render.options import RenderOptions

SCRIPT = """\
episode:
  id: handover
  title: Handover
cast:
  host: {voice: heart, name: Harriet}
turns:
  - speaker: host
    text: Planned once, rendered once.
"""


def test_options_round_trip_through_prefect_parameters():
    from pydantic_core import to_jsonable_python

    from castline_flows.render_episode import render_episode

    options = RenderOptions(script="s3://bucket/ep.yaml", out="s3://bucket/shows", formats=("wav", "mp3"),
                            cast=(("guest", "joe"), ("host", "heart")), pauses_ms=(("sentence", 300),), seed=7,
                            engine_options=EngineOptions(model="some/model", device="cpu"), workers=3,
                            qa=QASettings(policy="strict", wer_threshold=0.4))
    stored = to_jsonable_python({"options": options})  # what the API keeps for the run
    assert set(stored["options"]) == {spec.name for spec in dataclasses.fields(RenderOptions)}
    assert render_episode.validate_parameters(stored)["options"] == options
    with pytest.raises(Exception, match="--workers"):
        render_episode.validate_parameters({"options": {**stored["options"], "workers": 0}})


@pytest.mark.slow
def test_the_flow_takes_over_the_plan_and_check_made_before_it(prefect_api, tmp_path, voices_dir):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.client.schemas.sorting import FlowRunSort, TaskRunSort

    from castline_flows.render_episode import run_render

    script = tmp_path / "handover.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    options = RenderOptions(script=str(script), out=str(tmp_path / "out"), voices_dir=str(voices_dir), workers=1,
                            qa=QASettings(policy="off"))
    with local_inputs(options) as local_options:
        prepared = prepare_episode(options, local_options)
        assert prepared.current is None
        uri = run_render(options, prepared)
    with local_inputs(options) as local_options:
        assert prepare_episode(options, local_options).current == uri  # the command line would start nothing
    forced = run_render(dataclasses.replace(options, force=True))  # no handover: the flow plans itself
    assert forced == uri

    def task_names(flow_run_id) -> list[str]:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     sort=TaskRunSort.EXPECTED_START_TIME_ASC, limit=200)
        return [run.name.rsplit("-", 1)[0] for run in runs]

    with get_client(sync_client=True) as client:
        runs = [run for run in client.read_flow_runs(sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=200)
                if run.parameters.get("options", {}).get("script") == str(script)]
        handed, planned = sorted(runs, key=lambda run: run.expected_start_time)
        assert handed.parameters["prepared"] and planned.parameters["prepared"] is None
        assert "plan-render" not in task_names(handed.id) and "synthesise-chunks" in task_names(handed.id)
        assert "plan-render" in task_names(planned.id)
