"""The two offline engines, for real: load, synthesise, resample, identity for cache keys."""

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.pool import get_engine, loaded_count, release_all
from castline.engines.registry import engine_class, engine_names
from castline.core.errors import EngineError
from castline.voices.profiles import load_voice_library


@pytest.fixture(scope="module")
def library(voices_dir):
    return load_voice_library(voices_dir)


def test_registry_lists_engines_without_loading_models():
    release_all()
    assert {"hibari", "piper"} <= set(engine_names())
    for name in engine_names():
        assert engine_class(name).availability().usable
    assert loaded_count() == 0


def test_unknown_engine_is_a_clear_error():
    with pytest.raises(EngineError, match="unknown engine 'nope'"):
        engine_class("nope")


def test_hibari_is_deterministic_per_seed(library):
    engine = get_engine("hibari")
    voice = library.get("heart")
    first, again, other = engine.synthesize(["Hello there. This is castline."] * 3, voice, [7, 7, 8])
    assert first.dtype == np.float32 and first.ndim == 1
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    seconds = first.size / engine.capabilities.sample_rate
    assert 1.0 < seconds < 5.0
    assert 0.05 < np.abs(first).max() <= 1.0


def test_piper_speaks_at_its_own_rate_and_is_not_peak_normalised(library):
    engine = get_engine("piper")
    voice = library.get("joe")
    [audio] = engine.synthesize(["Hello there. This is castline speaking."], voice, [0])
    assert engine.capabilities.sample_rate == 22050
    assert 1.0 < audio.size / 22050 < 6.0
    assert np.abs(audio).max() < 0.999  # piper's normalize_audio would put every sentence at 1.0


def test_engine_is_loaded_once_and_released(library):
    release_all()
    first = get_engine("hibari")
    assert get_engine("hibari") is first
    assert loaded_count() == 1
    release_all()
    assert loaded_count() == 0
    assert get_engine("hibari") is not first
    release_all()


@pytest.mark.parametrize("name, voice_id", [("hibari", "heart"), ("piper", "joe")])
def test_an_onnx_engine_is_shared_by_worker_threads_and_speaks_the_same_from_two_at_once(library, name, voice_id):
    import threading

    release_all()
    voice = library.get(voice_id)
    texts = ["Hello there. This is castline speaking.", "The second worker reads another line, seed eleven."]
    engine = get_engine(name)
    alone = [engine.synthesize([text], voice, [11])[0] for text in texts]
    release_all()  # a fresh instance, loaded by whichever thread comes first
    heard: dict[int, list[np.ndarray]] = {}
    engines = []
    barrier = threading.Barrier(2)

    def work(index: int) -> None:
        barrier.wait()
        shared = get_engine(name)
        engines.append(shared)
        heard[index] = [shared.synthesize([texts[index]], voice, [11])[0] for _ in range(2)]

    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert engines[0] is engines[1] and loaded_count() == 1
    for index, expected in enumerate(alone):
        assert all(np.array_equal(audio, expected) for audio in heard[index])
    release_all()


def test_identity_changes_with_engine_and_is_stable(library):
    heart, joe = library.get("heart"), library.get("joe")
    assert engine_class("hibari").identity(heart) == engine_class("hibari").identity(heart)
    assert engine_class("hibari").identity(heart) != engine_class("piper").identity(joe)
    assert "hibari-tts 0.2.1" in engine_class("hibari").identity(heart)


@pytest.mark.parametrize("rate", [16000, 22050, 44100, 48000])
def test_resample_to_project_rate_keeps_a_tone(rate):
    seconds = 1.0
    t = np.arange(int(rate * seconds)) / rate
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = resample(tone, rate, PROJECT_SAMPLE_RATE)
    assert out.dtype == np.float32
    assert abs(out.size - PROJECT_SAMPLE_RATE * seconds) <= 1
    spectrum = np.abs(np.fft.rfft(out[1000:-1000] * np.hanning(out.size - 2000)))
    peak_hz = np.argmax(spectrum) * PROJECT_SAMPLE_RATE / (out.size - 2000)
    assert abs(peak_hz - 440) < 2
    assert abs(np.sqrt(np.mean(out[1000:-1000] ** 2)) - 0.5 / np.sqrt(2)) < 0.01


def test_gil_bound_engines_are_serialised_across_threads():
    import threading
    import time

    from castline.engines.locks import engine_lock as _engine_lock

    class Caps:
        def __init__(self, parallel):
            self.thread_parallel = parallel

    class Fake:
        def __init__(self, name, parallel):
            self.name, self.capabilities = name, Caps(parallel)

    def max_concurrency(engine):
        state = {"now": 0, "max": 0}
        guard = threading.Lock()

        def work():
            with _engine_lock(engine):
                with guard:
                    state["now"] += 1
                    state["max"] = max(state["max"], state["now"])
                time.sleep(0.05)
                with guard:
                    state["now"] -= 1

        threads = [threading.Thread(target=work) for _ in range(3)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        return state["max"]

    assert max_concurrency(Fake("serial-test", False)) == 1
    assert max_concurrency(Fake("parallel-test", True)) == 3
    assert engine_class("hibari").capabilities.thread_parallel is False
