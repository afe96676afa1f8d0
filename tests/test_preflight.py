"""A store a render cannot write to is reported before Prefect starts, in one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from castline.core.errors import StorageError
from castline.storage import open_store
from castline.storage.probe import check_writable


def test_a_writable_folder_passes_and_keeps_no_object(tmp_path):
    check_writable(tmp_path / "out")
    assert list(open_store(tmp_path / "out").list()) == []


@pytest.mark.parametrize("under", ["file", "file/deeper"])
def test_a_folder_that_is_or_lies_under_a_file_is_refused(tmp_path, under):
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    location = tmp_path / under
    with pytest.raises(StorageError) as caught:
        check_writable(location)
    message = str(caught.value)
    assert message.startswith(f"--out: {location} is not a writable store: ")
    assert "\n" not in message


def test_render_to_an_out_under_a_file_fails_before_prefect_starts(tmp_path, repo_root):
    (tmp_path / "file").write_text("not a folder", encoding="utf-8")
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Hello there.\n", encoding="utf-8")
    # Any Prefect call would go to this closed port and fail with another error.
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api", "CASTLINE_SERVER": "ephemeral"}
    result = subprocess.run([sys.executable, "-m", "castline_cli", "render", str(script), "--out",
                             str(tmp_path / "file" / "out"), "--qa", "off"],
                            capture_output=True, text=True, env=env, cwd=repo_root, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"castline: error: --out: {tmp_path / 'file' / 'out'} is not a writable store: "
                     f"cannot create folder {tmp_path / 'file' / 'out' / '_cache'}: Not a directory"]


def test_s3_writable_bucket_passes_and_a_missing_bucket_or_bad_secret_is_refused(s3_env, monkeypatch):
    bucket = s3_env.make_bucket()
    check_writable(f"s3://{bucket}/shows")
    assert list(open_store(f"s3://{bucket}/shows").list()) == []
    with pytest.raises(StorageError, match=r"^--out: s3://no-such-bucket-x/shows is not a writable store: "):
        check_writable("s3://no-such-bucket-x/shows")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError, match=rf"^--out: s3://{bucket}/shows is not a writable store: "):
        check_writable(f"s3://{bucket}/shows")


def test_an_unreachable_s3_endpoint_is_refused(s3_env, monkeypatch):
    monkeypatch.setenv("CASTLINE_S3_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(StorageError, match=r"^--out: s3://shows/ep is not a writable store: ") as caught:
        check_writable("s3://shows/ep")
    assert "127.0.0.1:9" in str(caught.value)
