"""One of each shared piece: model pool, engine locks, take cache, atomic write, first line,
the transformers device/dtype policy, the test failpoint kept out of progress events."""

import os
import threading

import numpy as np
import pytest

from castline.core.atomic import TEMP_MARK, atomic_folder, atomic_path, write_bytes_atomic
from castline.core.errors import EngineError
from castline.core.text import first_line
from castline.engines.pool import ModelPool
from castline.engines.takes import TakeCache
from castline.storage import open_store


class _Model:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def test_one_pool_holds_each_kind_per_thread_and_releases_one_kind_at_a_time():
    pool = ModelPool()
    engine = pool.get("engine", "a", _Model)
    whisper = pool.get("whisper", "a", _Model)
    assert engine is not whisper and pool.get("engine", "a", _Model) is engine
    other = []
    thread = threading.Thread(target=lambda: other.append(pool.get("engine", "a", _Model)))
    thread.start()
    thread.join()
    assert other[0] is not engine and pool.count("engine") == 2 and pool.count("whisper") == 1
    pool.release("engine")
    assert engine.closed and other[0].closed and not whisper.closed
    assert pool.count("engine") == 0 and pool.get("whisper", "a", _Model) is whisper
    assert pool.get("engine", "a", _Model) is not engine


def test_a_shared_model_is_made_once_for_every_thread_even_when_they_ask_together():
    pool = ModelPool()
    made = []
    barrier = threading.Barrier(4)

    def create():
        made.append(_Model())
        return made[-1]

    got = []

    def ask():
        barrier.wait()
        got.append(pool.get("whisper", "base", create, shared=True))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and all(model is made[0] for model in got) and pool.count("whisper") == 1
    tiny = pool.get("whisper", "tiny.en", _Model, shared=True)
    assert tiny is not made[0] and pool.count("whisper") == 2
    mine = pool.get("engine", "a", _Model)  # per thread, beside the shared ones
    pool.release("whisper")
    assert made[0].closed and tiny.closed and not mine.closed and pool.count("whisper") == 0
    again = pool.get("whisper", "base", create, shared=True)
    assert again is not made[0] and len(made) == 2


def test_render_and_dub_share_the_engine_pool_locks_and_take_cache_code():
    from castline.dub import voicing
    from castline.engines import locks, pool
    from castline.qa import asr
    from castline.render import synthesis

    assert synthesis.engine_lock is voicing.engine_lock is locks.engine_lock
    assert synthesis.get_engine is voicing.get_engine is pool.get_engine
    assert asr.MODELS is pool.MODELS
    assert isinstance(synthesis.CHUNKS, TakeCache) and isinstance(voicing.TAKES, TakeCache)


def test_take_cache_round_trip_marks_a_take_complete_only_with_its_metadata(tmp_path):
    store = open_store(tmp_path / "store")
    cache = TakeCache("_cache/test")
    key = "ab" * 32
    audio = (0.25 * np.sin(np.arange(2400) / 7)).astype(np.float32)
    stored = cache.put_audio(store, key, audio, 24_000, read_back=True)
    assert stored.info.key == cache.audio_key(key) == f"_cache/test/ab/{key}.flac"
    assert cache.find(store, key) is None  # audio alone is not a complete take
    cache.put_meta(store, key, {"key": key, "duration_samples": int(audio.size)})
    assert cache.find(store, key) == {"duration_samples": 2400, "key": key}
    held, rate = cache.read(store, key)
    assert rate == 24_000 and np.array_equal(held, stored.audio)
    assert np.max(np.abs(held - audio)) < 2 ** -22  # 24-bit FLAC
    store.put_bytes(b"{not json", cache.meta_key(key))
    assert cache.find(store, key) is None


def test_atomic_write_leaves_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "a.json"
    write_bytes_atomic(target, b"old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temp:
            temp.write_bytes(b"half")
            assert temp.name.startswith(TEMP_MARK) and f".{os.getpid()}-" in temp.name
            raise RuntimeError("killed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_atomic_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "cache" / "key"
    with pytest.raises(RuntimeError):
        with atomic_folder(target) as temp:
            (temp / "one").write_text("1")
            assert temp.name.startswith(TEMP_MARK) and not target.exists()
            raise RuntimeError("killed")
    assert not target.exists() and not any((tmp_path / "cache").iterdir())
    with atomic_folder(target) as temp:
        (temp / "one").write_text("1")
    assert (target / "one").read_text() == "1"
    with atomic_folder(target) as temp:  # stored first by another writer: theirs is kept
        (temp / "two").write_text("2")
    assert [p.name for p in target.iterdir()] == ["one"] and [p.name for p in (tmp_path / "cache").iterdir()] == ["key"]


def test_first_line():
    assert first_line(ValueError("one\ntwo")) == "one"
    assert first_line(ValueError("  \n")) == "ValueError"


class _Cuda:
    def __init__(self, available, bf16, count=1):
        self.available, self.bf16, self.count = available, bf16, count

    def is_available(self):
        return self.available

    def is_bf16_supported(self):
        return self.bf16

    def device_count(self):
        return self.count if self.available else 0


@pytest.mark.parametrize("cuda, device, expected", [
    (_Cuda(True, True), "auto", ("cuda", "bfloat16")),
    (_Cuda(True, False), "auto", ("cuda", "float16")),  # a GPU without bfloat16: half precision, not float32
    (_Cuda(True, False), "cuda:0", ("cuda:0", "float16")),
    (_Cuda(False, False), "auto", ("cpu", "float32")),
    (_Cuda(True, True), "cpu", ("cpu", "float32")),
])
def test_device_and_dtype_policy(monkeypatch, cuda, device, expected):
    torch = pytest.importorskip("torch")
    from castline.engines.transformers_policy import device_and_dtype

    for name in ("is_available", "is_bf16_supported", "device_count"):
        monkeypatch.setattr(torch.cuda, name, getattr(cuda, name))
    assert device_and_dtype(device, "auto", "pocket-tts") == expected
    assert device_and_dtype(device, "auto", "vibevoice") == expected


def test_device_and_dtype_refusals_are_one_line(monkeypatch):
    torch = pytest.importorskip("torch")
    from castline.engines.transformers_policy import device_and_dtype

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for device, dtype, message in (("cuda", "bfloat16", "does not support bfloat16"),
                                   ("cuda:3", "auto", "has 1 CUDA device"),
                                   ("cpu", "float16", "float16 needs a CUDA device"),
                                   ("tpu", "auto", "unknown device 'tpu' for vibevoice"),
                                   ("cpu", "int8", "unknown dtype 'int8' for vibevoice")):
        with pytest.raises(EngineError, match=message) as caught:
            device_and_dtype(device, dtype, "vibevoice")
        assert "\n" not in str(caught.value)


def test_failpoint_is_a_listener_installed_only_from_the_environment(monkeypatch):
    from castline.core import failpoint, progress

    calls = []
    monkeypatch.setattr(failpoint.os, "kill", lambda pid, sig: calls.append((pid, sig)))
    kill = failpoint.KillAt.parse("stitch:3")
    with progress.listening(kill):
        progress.emit("stitch", advance=1)
        progress.emit("synthesise", advance=5)
        progress.emit("stitch", total=9)
        assert calls == []
        progress.emit("stitch", advance=2)
    assert calls == [(os.getpid(), failpoint.signal.SIGKILL)]
    with pytest.raises(ValueError, match="STAGE:N"):
        failpoint.KillAt.parse("stitch:x")
    monkeypatch.delenv("CASTLINE_KILL_AT", raising=False)
    assert failpoint.install_from_environment() is False
    assert "_failpoint" not in vars(progress) and "CASTLINE_KILL_AT" not in open(progress.__file__).read()
