"""Build chunk jobs and stored chunk audio from synthetic signals, without an engine."""

from __future__ import annotations

import math
from pathlib import Path


from castline.audio.chunkfile import write_chunk
from castline.dsp.loudness import LoudnessMeter
from castline.render.chunking import Boundary
from castline.render.plan import ChunkJob
from castline.render.synthesis import ChunkRecord, audio_key


def store_synthetic_chunks(store, signals, speakers, boundaries, tmp_path: Path, sample_rate=24_000):
    jobs, records = [], []
    for index, (signal, speaker, boundary) in enumerate(zip(signals, speakers, boundaries)):
        key = f"{index:064x}"
        path = tmp_path / f"chunk{index}.flac"
        write_chunk(path, signal, sample_rate)
        info = store.put_file(path, audio_key(key))
        meter = LoudnessMeter(sample_rate, 1)
        meter.process(signal)
        lufs = meter.result().integrated_lufs
        jobs.append(ChunkJob(index=index, turn=index, position=0 if boundary != Boundary.SENTENCE else 1,
                             speaker=speaker, voice_id=speaker, engine="test", text=f"chunk {index}",
                             boundary=boundary, pause_before_ms=None, seed=0, key=key, source_line=index + 1))
        records.append(ChunkRecord(index=index, key=key, uri=info.uri, sha256=info.sha256, bytes=info.bytes,
                                   duration_samples=signal.size, sample_rate=sample_rate,
                                   integrated_lufs=lufs if math.isfinite(lufs) else None, rendered=True))
    return jobs, records
