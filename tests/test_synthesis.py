"""Chunk synthesis: rows batched per voice for engines that batch, one call per chunk otherwise;
work split into batches of about equal text."""

from castline.render.chunking import Boundary
from castline.render.plan import ChunkJob
from castline.render.synthesis import _row_groups, batch_jobs


def _job(index, engine, voice, text=None):
    return ChunkJob(index=index, turn=index, position=0, speaker=voice, voice_id=voice, engine=engine,
                    text=text or f"line {index}", boundary=Boundary.TURN, pause_before_ms=None, seed=index,
                    key=f"{index:064x}", source_line=index + 1)


def test_batches_hold_about_equal_text_in_order():
    # 49 chunks as the benchmark's episode has them: equal counts (9) left a last batch of 4
    lengths = [40 + (i * 37) % 260 for i in range(49)]
    jobs = [_job(i, "hibari", "heart", "x" * n) for i, n in enumerate(lengths)]
    batches = batch_jobs(jobs, workers=2)
    assert len(batches) == 6
    assert [job.index for batch in batches for job in batch] == list(range(49))
    totals = [sum(len(job.text) for job in batch) for batch in batches]
    assert max(totals) - min(totals) <= max(lengths), totals
    assert all(len(batch) <= 12 for batch in batches)


def test_batches_respect_the_cap_and_never_come_out_empty():
    jobs = [_job(i, "hibari", "heart", "x" * (2000 if i == 0 else 10)) for i in range(30)]
    batches = batch_jobs(jobs, workers=2, max_batch=6)
    assert all(1 <= len(batch) <= 6 for batch in batches)
    assert [job.index for batch in batches for job in batch] == list(range(30))
    assert [len(b) for b in batch_jobs(jobs[:3], workers=4)] == [1, 1, 1]
    assert len(batch_jobs(jobs, workers=2, max_batch=None, batches_per_worker=2)) == 4


def test_batching_engines_get_rows_grouped_per_voice_in_order():
    jobs = [_job(i, "pocket-tts", "ana" if i % 3 else "ben") for i in range(20)]
    groups = _row_groups(jobs, plan=None)
    assert all(len({job.voice_id for job in group}) == 1 for group in groups)
    assert all(len(group) <= 8 for group in groups)
    assert sorted(job.index for group in groups for job in group) == list(range(20))
    assert [len(g) for g in groups if g[0].voice_id == "ana"] == [8, 5]
    for group in groups:
        assert [job.index for job in group] == sorted(job.index for job in group)


def test_non_batching_engines_get_one_chunk_per_call():
    jobs = [_job(i, "hibari", "heart") for i in range(5)]
    assert [len(group) for group in _row_groups(jobs, plan=None)] == [1] * 5
