"""Windowed engines through castline: grouping, batching, retries, line timings, joins, cache."""

from __future__ import annotations

import shutil

import pytest
import soundfile

from castline.dsp.seams import seam_report
from castline.engines import registry
from castline.core.errors import EngineError
from castline.render.options import RenderOptions
from castline.qa.settings import QASettings
from castline.render.plan import prepare_render
from castline.render.stitch import stitch
from castline.storage import open_store
from castline.voices.ingest import add_voice
from castline.render.windows import batch_windows, synthesise_windows
from conftest import speech_like
from fake_engines import ToneWindows

SCRIPT = """\
Speaker 1: Welcome back to the show. Today we talk about windows.
Speaker 2: Windows of text, rendered together, so the model hears the conversation.
Speaker 3: And I am the third voice in this window.
Speaker 1: A fourth line, still short.
Speaker 4: The fourth speaker joins.
Speaker 5: A fifth speaker must start a new window.
Speaker 1: Back to speaker one to close.
"""


@pytest.fixture
def setup(tmp_path, monkeypatch, voices_dir):
    monkeypatch.setitem(registry.ENGINE_CLASSES, "tone-windows", "fake_engines:ToneWindows")
    ToneWindows.fail_seeds = set()
    ToneWindows.calls = []
    ToneWindows.batch_sizes = []
    voices = tmp_path / "voices"
    shutil.copytree(voices_dir, voices)
    reference = tmp_path / "ref.wav"
    soundfile.write(reference, speech_like(5.0, 24_000, seed=1), 24_000)
    for name in ("ana", "ben", "cleo", "dan", "eve"):
        add_voice(voices, name, reference, engine="tone-windows", consent_statement="I agree.")
    script = tmp_path / "ep.txt"
    script.write_text(SCRIPT, encoding="utf-8")
    cast = (("1", "ana"), ("2", "ben"), ("3", "cleo"), ("4", "dan"), ("5", "eve"))

    def plan(**kwargs):
        # QA off: these tests are about window plumbing (tones are not speech); QA has its own tests.
        return prepare_render(RenderOptions(script=str(script), out=str(tmp_path / "out"), voices_dir=str(voices),
                                            cast=cast, qa=QASettings(policy="off"), **kwargs))

    return plan, tmp_path


def test_windows_group_consecutive_lines_with_at_most_four_speakers(setup):
    plan, _ = setup
    windowed = plan()
    assert [w.chunk_indexes for w in windowed.windows] == [(0, 1, 2, 3, 4), (5, 6)]
    assert all(len(w.voice_ids) <= 4 for w in windowed.windows)
    assert windowed.windows[0].voice_ids == ("ana", "ben", "cleo", "dan")
    small = plan(window_words=20)
    assert all(sum(len(small.jobs[i].text.split()) for i in w.chunk_indexes) <= 20 or len(w.chunk_indexes) == 1
               for w in small.windows)
    exact = plan(exact_timings=True)
    assert [len(w.chunk_indexes) for w in exact.windows] == [1] * 7
    assert all(job.window is not None for job in windowed.jobs)
    assert len({job.key for job in windowed.jobs}) == 7


def test_window_batch_sets_windows_per_call_and_no_cache_key(setup):
    plan, folder = setup
    single = plan(exact_timings=True)  # 7 one-line windows
    batched = plan(exact_timings=True, window_batch=3)
    assert [job.key for job in batched.jobs] == [job.key for job in single.jobs]
    batches = batch_windows(batched.windows, workers=1, per_batch=batched.options.window_batch)
    assert [len(batch) for batch in batches] == [3, 3, 1]
    assert [len(batch) for batch in batch_windows(single.windows, workers=1)] == [4, 3]  # the default, 4
    store = open_store(folder / "out")
    records = [record for batch in batches for record in synthesise_windows(batch, batched, store)]
    assert len(records) == 7 and all(record.rendered for record in records)
    assert ToneWindows.calls == [3, 3, 1] and ToneWindows.batch_sizes == [3, 3, 3]
    with pytest.raises(ValueError, match="--window-batch: must be 1..64"):
        plan(window_batch=65)


def test_editing_one_line_changes_only_its_window(setup, tmp_path):
    plan, folder = setup
    before = plan()
    (folder / "ep.txt").write_text(SCRIPT.replace("to close", "to finish"), encoding="utf-8")
    after = plan()
    assert [j.key for j in before.jobs[:5]] == [j.key for j in after.jobs[:5]]
    assert before.jobs[6].key != after.jobs[6].key


def test_window_lines_are_timed_split_and_joined_without_seams(setup):
    plan, folder = setup
    windowed = plan()
    store = open_store(folder / "out")
    records = []
    for batch in batch_windows(windowed.windows, workers=1):
        records += synthesise_windows(batch, windowed, store)
    assert [r.index for r in records] == list(range(7)) and all(r.rendered for r in records)
    assert ToneWindows.calls == [2]  # both windows in one batched call
    # line boundaries: each stored line is its tone plus at most the pause around it
    for job, record in zip(windowed.jobs, records):
        tone = ToneWindows.line_samples(job.text)
        assert tone <= record.duration_samples <= tone + ToneWindows.PAUSE + 2400, job.text
    result = stitch(windowed.jobs, records, store, folder / "stitched.wav")
    audio, _ = soundfile.read(result.path, dtype="float32")
    placed = result.placements
    for first, second in zip(placed, placed[1:]):
        same_window = windowed.jobs[first.index].window == windowed.jobs[second.index].window
        assert (second.start_sample == first.end_sample) == same_window  # contiguous inside a window
    joins = [p.start_sample for p in placed] + [p.end_sample for p in placed]
    flagged = seam_report(audio, joins, 24_000)
    assert flagged == [], [(j, round(d, 1), [(p.index, p.start_sample, p.end_sample) for p in placed if j in (p.start_sample, p.end_sample)]) for j, d in flagged]
    again = []
    for batch in batch_windows(windowed.windows, workers=1):
        again += synthesise_windows(batch, windowed, store)
    assert not any(r.rendered for r in again) and ToneWindows.calls == [2]


def test_failed_window_is_retried_with_another_seed_then_reported(setup):
    plan, folder = setup
    windowed = plan()
    store = open_store(folder / "out")
    ToneWindows.fail_seeds = {windowed.windows[0].seed}
    records = synthesise_windows(windowed.windows, windowed, store)
    assert len(records) == 7  # first window recovered on a retry seed, second unaffected
    ToneWindows.fail_seeds = _AllSeeds()
    store2 = open_store(folder / "out2")
    with pytest.raises(EngineError) as failed:
        synthesise_windows(windowed.windows[:1], windowed, store2)
    message = str(failed.value)
    assert "window 0" in message and "failed 3 times" in message and "ep.txt:1" in message
    assert list(store2.list("_cache")) == []  # nothing half-written


class _AllSeeds(set):
    def __contains__(self, item):
        return True


def test_cloning_engine_needs_the_voice_reference(setup, voices_dir):
    plan, _ = setup
    with pytest.raises(Exception) as refused:
        prepare_render(RenderOptions(script=str(setup[1] / "ep.txt"), voices_dir=str(voices_dir),
                                     cast=(("1", "heart"),) * 1, engine="tone-windows"))
    assert "reference" in str(refused.value) or "not usable" in str(refused.value)
