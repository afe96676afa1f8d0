"""Chunk synthesis: rows batched per voice for engines that batch, one call per chunk otherwise."""

from castline.planner import Boundary
from castline.render_plan import ChunkJob
from castline.synthesis import _row_groups


def _job(index, engine, voice):
    return ChunkJob(index=index, turn=index, position=0, speaker=voice, voice_id=voice, engine=engine,
                    text=f"line {index}", boundary=Boundary.TURN, pause_before_ms=None, seed=index,
                    key=f"{index:064x}", source_line=index + 1)


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
