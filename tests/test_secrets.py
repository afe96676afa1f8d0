"""A planted secret (the S3 secret key a render uses) appears in no log, artifact, flow parameter or
published object."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def _flow_run(prefect_api: str, pid: int):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    from castline_flows.housekeeping import PID_TAG

    with get_client(sync_client=True) as client:
        [run] = client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[f"{PID_TAG}{pid}"])),
                                      sort=FlowRunSort.START_TIME_DESC, limit=10)
        return run


def _everything_prefect_kept(prefect_api: str, run) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.client.schemas.sorting import LogSort, TaskRunSort

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run.id])), limit=200, offset=0,
                                sort=LogSort.TIMESTAMP_ASC)
        # The sync read_artifacts sends null task_runs, which the server rejects: ask the endpoint.
        artifacts = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"flow_run_id": {"any_": [str(run.id)]}}, "sort": "CREATED_DESC", "limit": 200,
            "offset": 0}).json()
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])),
                                      sort=TaskRunSort.EXPECTED_START_TIME_DESC, limit=200)
    texts = [log.message for log in logs]
    texts += [repr(artifact) for artifact in artifacts]
    texts += [repr(run.parameters), repr(run.tags), repr(run.name)]
    texts += [repr(task.task_inputs) + repr(task.name) for task in tasks]
    assert logs and artifacts  # the search covered something
    return texts


def test_a_planted_secret_is_in_no_log_artifact_parameter_or_object(prefect_api, s3_env, tmp_path):
    secret = s3_env.secret_key
    assert len(secret) >= 16
    bucket = s3_env.make_bucket()
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Nothing to hide in this line.\n", encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": prefect_api, "PREFECT_LOGGING_LEVEL": "DEBUG"}
    result = subprocess.Popen([sys.executable, "-m", "castline_cli", "render", str(script), "--out",
                               f"s3://{bucket}/shows", "--qa", "off", "--workers", "1", "--verbose"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    stdout, stderr = result.communicate(timeout=300)
    assert result.returncode == 0, stderr
    texts = [stdout, stderr, *_everything_prefect_kept(prefect_api, _flow_run(prefect_api, result.pid))]
    assert not [text for text in texts if secret in text]
    client = s3_env.client()
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(key.endswith("manifest.json") for key in keys)
    for key in keys:
        assert secret.encode() not in client.get_object(Bucket=bucket, Key=key)["Body"].read(), key
