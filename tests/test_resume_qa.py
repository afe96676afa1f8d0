"""kill -9 a render with QA on after takes are made but before Whisper has heard them; the same
command finishes it without synthesising any take twice, and publishes the same master.

Every take is stored as soon as it is made (``CASTLINE_KILL_AT=take:N`` dies right after the
Nth); a resumed render hears the stored takes in the rounds an uninterrupted render would have
heard them in, retries the failing ones with the next seeds and keeps the same best take.

The renders run the real command line under a wrapper that logs every row the engine is asked
to speak (text, seed), appended to a file as each call returns, so the killed run's
takes are counted too.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

LINES = [
    "The lighthouse keeper climbed the stairs before dawn.",
    # an English voice cannot say it: every take fails QA, so all three are made and the best kept
    "Buenos días, ¿dónde está la biblioteca municipal?",
    "She smiled, put the kettle on, and waited.",
]
TAKES = len(LINES) + 2
"""First takes of the three lines, then two retakes of the Spanish one (``--qa-attempts 3``)."""

_LOGGED_CLI = """
import json, os, sys
from castline.engines.registry import engine_class

log = os.environ["CASTLINE_TEST_TAKE_LOG"]
cls = engine_class("hibari")
original = cls.synthesize

def logged(self, texts, voice, seeds):
    out = original(self, texts, voice, seeds)
    with open(log, "a", encoding="utf-8") as handle:
        handle.writelines(json.dumps([text, seed]) + "\\n" for text, seed in zip(texts, seeds))
    return out

cls.synthesize = logged
from castline_cli.main import main
raise SystemExit(main(sys.argv[1:]))
"""


def _script(folder: Path) -> Path:
    script = folder / "keeper.txt"
    script.write_text("".join(f"Speaker 1: {line}\n" for line in LINES), encoding="utf-8")
    return script


def _render(script: Path, out: Path, log: Path, prefect_api: str, kill_at: str | None = None):
    env = {key: value for key, value in os.environ.items() if key != "CASTLINE_KILL_AT"}
    env.update(PREFECT_API_URL=prefect_api, CASTLINE_TEST_TAKE_LOG=str(log))
    if kill_at:
        env["CASTLINE_KILL_AT"] = kill_at
    command = [sys.executable, "-c", _LOGGED_CLI, "render", str(script), "--out", str(out), "--cast", "1=heart",
               "--format", "wav", "--qa", "warn", "--qa-attempts", "3", "--workers", "1", "--seed", "7", "--quiet"]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def _takes(log: Path) -> Counter:
    if not log.exists():
        return Counter()
    return Counter(tuple(json.loads(line)) for line in log.read_text(encoding="utf-8").splitlines())


def _master_sha(out: Path) -> str:
    manifest = json.loads((out / "keeper" / "manifest.json").read_text(encoding="utf-8"))
    [wav] = [item for item in manifest["files"] if item["format"] == "wav"]
    data = (out / wav["key"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == wav["sha256"]
    return wav["sha256"]


def _stored_checks(out: Path) -> dict[str, tuple]:
    """Per stored chunk (by key): its chosen seed, attempt log and flags."""
    checks = {}
    for path in (out / "_cache" / "chunks").rglob("*.json"):
        check = json.loads(path.read_text(encoding="utf-8"))["check"]
        checks[path.stem] = (check["seed"], json.dumps(check["attempt_log"]), tuple(check["flags"]))
    return checks


@pytest.fixture(scope="module")
def uninterrupted(prefect_api, tmp_path_factory):
    folder = tmp_path_factory.mktemp("uninterrupted-qa")
    result = _render(_script(folder), folder / "out", folder / "takes.log", prefect_api)
    assert result.returncode == 0, result.stderr
    takes = _takes(folder / "takes.log")
    assert sum(takes.values()) == TAKES and max(takes.values()) == 1, takes
    return _master_sha(folder / "out"), takes, _stored_checks(folder / "out")


def test_render_with_qa_killed_between_making_and_hearing_resumes_without_a_second_take(
        prefect_api, uninterrupted, tmp_path):
    # Killed after the 4th take: the three first takes were heard (the English ones settled, the
    # Spanish one failed) and the Spanish line's second take made, not yet heard.
    kill_at = "take:4"
    master_sha, all_takes, checks = uninterrupted
    script, out, log = _script(tmp_path), tmp_path / "out", tmp_path / "takes.log"
    killed = _render(script, out, log, prefect_api, kill_at=kill_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "keeper" / "manifest.json").exists()
    assert sum(_takes(log).values()) == 4
    # stored: the two English chunks (settled) and the Spanish line's two takes
    assert len(list((out / "_cache" / "chunks").rglob("*.json"))) == 4

    resumed = _render(script, out, log, prefect_api)
    assert resumed.returncode == 0, resumed.stderr
    takes = _takes(log)
    assert [take for take, count in takes.items() if count > 1] == []  # no take synthesised twice
    assert takes == all_takes  # and exactly the takes an uninterrupted render makes
    assert _master_sha(out) == master_sha
    # the same take chosen for every chunk, from the same attempts; no retake left in the cache
    assert _stored_checks(out) == checks
    spanish = [entry for entry in checks.values() if len(json.loads(entry[1])) == 3]
    assert len(spanish) == 1 and "wer-high" in spanish[0][2]


# --- in one process: a stored take not yet heard joins the QA rounds ---------------------------

class _Killed(Exception):
    pass


def _flaky_plan(tmp_path, out, monkeypatch, policy="warn"):
    from castline.engines import registry
    from castline.qa.settings import QASettings
    from castline.render.options import RenderOptions
    from castline.render.plan import prepare_render
    from fake_engines import FlakyHibari
    import castline.render.plan as render_plan

    monkeypatch.setitem(registry.ENGINE_CLASSES, "flaky-hibari", "fake_engines:FlakyHibari")
    monkeypatch.setattr(render_plan, "voice_usability", lambda voice, engine=None: registry.Availability(True))
    monkeypatch.setattr(FlakyHibari, "takes", {})
    monkeypatch.setattr(FlakyHibari, "flaky_marker", "garden")  # only this line's first take is wrong
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Volunteers look after the garden behind the building.\n", encoding="utf-8")
    return prepare_render(RenderOptions(script=str(script), out=str(out), cast=(("1", "heart"),),
                                        engine="flaky-hibari", qa=QASettings(policy=policy)))


def test_a_stored_first_take_that_fails_its_check_goes_to_the_retry_round(tmp_path, monkeypatch):
    from castline.core.hashing import derive_seed
    from castline.core.progress import listening
    from castline.render.synthesis import synthesise_batch
    from castline.storage import open_store
    from fake_engines import FlakyHibari

    def kill_after_first_take(event):
        if event.stage == "take":
            raise _Killed

    plan = _flaky_plan(tmp_path, tmp_path / "uninterrupted", monkeypatch)
    [job] = plan.jobs
    [uninterrupted] = synthesise_batch(plan.jobs, plan, open_store(tmp_path / "uninterrupted"))
    assert uninterrupted.check.attempts == 2

    for first_take in ("killed before hearing", "stored without QA"):
        FlakyHibari.takes.clear()
        out = tmp_path / first_take.replace(" ", "-")
        store = open_store(out)
        if first_take == "stored without QA":
            off = _flaky_plan(tmp_path, out, monkeypatch, policy="off")
            assert off.jobs[0].key == job.key
            [stored] = synthesise_batch(off.jobs, off, store)
            assert stored.check is None
        else:
            with listening(kill_after_first_take), pytest.raises(_Killed):
                synthesise_batch(plan.jobs, plan, store)
        assert FlakyHibari.takes == {job.spoken_text: 1}, first_take

        [record] = synthesise_batch(plan.jobs, plan, store)
        # the stored (wrong) first take was heard, failed, and only the retake was made
        assert FlakyHibari.takes == {job.spoken_text: 2}, first_take
        first, second = record.check.attempt_log
        assert first[1] == job.seed and "wer-high" in first[3] and not first[4]
        assert second[1] == derive_seed(job.seed, "qa-retry-1") and second[4]
        # as uninterrupted: the same take kept, with the same check and loudness
        assert record.check == uninterrupted.check and record.sha256 == uninterrupted.sha256
        assert record.integrated_lufs == uninterrupted.integrated_lufs
        # only the settled chunk is left in the cache
        assert len(list((out / "_cache" / "chunks").rglob("*.json"))) == 1
