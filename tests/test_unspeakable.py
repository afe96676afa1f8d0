"""No render thrown away: a line its voice cannot speak is known at planning (strict refuses, naming
it; warn renders the rest with it silent and flagged), and a chunk the engine fails on costs the
other chunks nothing."""

from __future__ import annotations

import numpy as np
import pytest

from castline.core.errors import EngineError, ScriptError
from castline.engines import registry
from castline.engines.base import Availability, Engine, EngineCapabilities
from castline.qa.settings import QASettings
from castline.render.options import RenderOptions
from castline.render.plan import SKIPPED_CHUNK_MS, UNSPEAKABLE_FLAG, prepare_render
from castline.render.synthesis import cached_records, store_skipped, synthesise_batch
from castline.storage import open_store

LINES = ["The harbour lights blinked one by one.",
         "A fishing boat rounded the point.",
         "灯塔看守人在黎明前爬上了楼梯。",
         "She smiled, and put the kettle on."]


def _plan(tmp_path, policy, lines=LINES, cast="heart", engine=None):
    script = tmp_path / "ep.txt"
    script.write_text("".join(f"Speaker 1: {line}\n" for line in lines), encoding="utf-8")
    return prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), cast=(("1", cast),),
                                        engine=engine, qa=QASettings(policy=policy), workers=1))


def test_strict_refuses_before_any_synthesis_naming_the_line(tmp_path):
    with pytest.raises(ScriptError) as caught:
        _plan(tmp_path, "strict")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'ep.txt'}: line 3: CJK text that voice heart cannot speak")
    assert "--qa warn" in message and "\n" not in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("policy", ["warn", "off"])
def test_other_policies_plan_the_line_as_skipped_and_keep_the_warning(tmp_path, policy):
    plan = _plan(tmp_path, policy)
    skipped = [job for job in plan.jobs if job.skipped]
    assert [job.source_line for job in skipped] == [3]
    assert skipped[0].skipped.startswith(f"{UNSPEAKABLE_FLAG}: ")
    [warning] = plan.episode.warnings  # printed by the command line, kept in the manifest
    assert warning == (f"{tmp_path / 'ep.txt'}: line 3: CJK text that voice heart cannot speak; "
                       f"rendered as a pause and flagged")


def test_a_line_that_mixes_in_some_cjk_is_still_spoken(tmp_path):
    with pytest.warns(UserWarning, match="expect that part to be skipped or garbled"):
        plan = _plan(tmp_path, "strict", lines=["The word 你好 means hello."])
    assert not any(job.skipped for job in plan.jobs)


def test_the_skipped_line_is_a_pause_and_the_rest_is_rendered(tmp_path):
    plan = _plan(tmp_path, "off")
    store = open_store(tmp_path / "out")
    records = synthesise_batch(plan.jobs, plan, store)
    by_line = {job.source_line: record for job, record in zip(plan.jobs, records, strict=True)}
    assert by_line[3].duration_samples == SKIPPED_CHUNK_MS * 24
    assert all(by_line[line].duration_samples > 24_000 for line in (1, 2, 4))
    # resumed: everything is reused, the silence included
    assert [record.rendered for record in synthesise_batch(plan.jobs, plan, store)] == [False] * 4


def test_with_qa_on_the_skipped_line_is_a_failing_check_flagged_unspeakable(tmp_path):
    plan = _plan(tmp_path, "warn")
    store = open_store(tmp_path / "out")
    [job] = [job for job in plan.jobs if job.skipped]
    record = store_skipped(job, plan, store)
    assert record.check.flags == (UNSPEAKABLE_FLAG,) and not record.check.passed and record.check.wer is None
    # stored with this QA's fingerprint: a resumed render reuses it without hearing silence
    [again] = cached_records([job], store, plan)
    assert again.check == record.check and not again.rendered


class FailsOnBoom(Engine):
    """A tone per text, except texts containing 'boom': those fail as an engine fails on an input."""

    name = "fails-on-boom"
    capabilities = EngineCapabilities(languages=("en",), cloning=False, max_chars=200, target_chars=150,
                                      sample_rate=24_000, deterministic=True, batch_rows=4)
    calls: list[int] = []

    @classmethod
    def availability(cls):
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice):
        return Availability(True)

    @classmethod
    def identity(cls, voice, options=None):
        return "fails-on-boom 1"

    def synthesize(self, texts, voice, seeds):
        FailsOnBoom.calls.append(len(texts))
        if any("boom" in text for text in texts):
            raise RuntimeError("cannot say boom")
        return [np.full(12_000 + 100 * len(text), 0.05, np.float32) for text in texts]


def test_a_chunk_the_engine_fails_on_costs_the_others_nothing(tmp_path, monkeypatch):
    import castline.render.plan as render_plan

    monkeypatch.setitem(registry.ENGINE_CLASSES, "fails-on-boom", "test_unspeakable:FailsOnBoom")
    monkeypatch.setattr(render_plan, "voice_usability", lambda voice, engine=None: Availability(True))
    FailsOnBoom.calls = []
    lines = ["First line here.", "Then a boom goes off.", "Third line here.", "Fourth line here."]
    plan = _plan(tmp_path, "off", lines=lines, engine="fails-on-boom")
    store = open_store(tmp_path / "out")
    with pytest.raises(EngineError) as caught:
        synthesise_batch(plan.jobs, plan, store)
    message = str(caught.value)
    assert f"{tmp_path / 'ep.txt'}:2:" in message and "boom" in message
    # one call of four rows failed; each row was tried alone, and the three good ones are stored
    assert FailsOnBoom.calls == [4, 1, 1, 1, 1]
    stored = cached_records(plan.jobs, store, plan)
    assert [record is not None for record in stored] == [True, False, True, True]
