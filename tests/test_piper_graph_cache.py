"""Piper's rewritten graphs kept on disk: the same bytes as a rewrite in memory, read back without
importing onnx, made again when damaged, rewritten in memory when nothing can be stored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from castline.engines import piper, piper_graph_cache
from castline.engines.piper import NOISE_METHOD, PiperEngine
from castline.engines.piper_graph import explicit_noise_model, split_at_decoder
from castline.engines.piper_graph_cache import voice_graphs
from castline.voices.profiles import load_voice_library

SENTENCE = "The harbour lights came on one by one as the ferry turned for home."


@pytest.fixture(scope="module")
def joe(voices_dir):
    return load_voice_library(voices_dir).get("joe")


@pytest.fixture(scope="module")
def model(joe):
    return piper._voice_files(joe.engine_voice)[0]


def test_the_stored_graphs_are_the_rewrite_in_memory(model, tmp_path):
    graphs = voice_graphs(model, NOISE_METHOD, cache_root=tmp_path)
    graph, noise_inputs = explicit_noise_model(model)
    split = split_at_decoder(graph)
    assert graphs.noise_inputs == noise_inputs and graphs.layout == split.layout and graphs.whole is None
    assert graphs.front.read_bytes() == split.front and graphs.decoder.read_bytes() == split.decoder


def test_stored_graphs_are_read_and_damaged_ones_made_again(model, tmp_path, monkeypatch):
    made = []
    original = piper_graph_cache._write
    monkeypatch.setattr(piper_graph_cache, "_write", lambda *args: made.append(args) or original(*args))
    first = voice_graphs(model, NOISE_METHOD, cache_root=tmp_path)
    assert voice_graphs(model, NOISE_METHOD, cache_root=tmp_path) == first and len(made) == 1
    with open(first.decoder, "r+b") as damaged:
        damaged.truncate(100)
    again = voice_graphs(model, NOISE_METHOD, cache_root=tmp_path)
    assert again == first and len(made) == 2 and again.decoder.stat().st_size > 100
    assert voice_graphs(model, "noise explicit v2", cache_root=tmp_path).front.parent != first.front.parent
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]  # no staging left behind


def test_a_graph_that_cannot_be_cut_is_stored_whole(tmp_path):
    from onnx import TensorProto, helper

    nodes = [helper.make_node("RandomNormalLike", ["input"], ["noise"], name="/enc_p/RandomNormalLike"),
             helper.make_node("Add", ["input", "noise"], ["output"], name="/enc_p/Add")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None])])
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    graphs = voice_graphs(voice, NOISE_METHOD, cache_root=tmp_path / "cache")
    assert graphs.front is graphs.decoder is graphs.layout is None
    assert graphs.whole.read_bytes() == explicit_noise_model(voice)[0]
    assert graphs.noise_inputs == ("castline_noise_0",)


def test_without_a_writable_cache_the_graph_is_rewritten_in_memory_and_speaks_the_same(joe, model, tmp_path,
                                                                                        monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    assert voice_graphs(model, NOISE_METHOD, cache_root=blocked) is None
    [stored] = PiperEngine().synthesize([SENTENCE], joe, [5])
    monkeypatch.setattr(piper, "voice_graphs", lambda *args: None)
    [in_memory] = PiperEngine().synthesize([SENTENCE], joe, [5])
    assert stored.size > 22_050 and np.array_equal(stored, in_memory)


def test_a_process_that_reads_stored_graphs_does_not_import_onnx(joe, voices_dir, tmp_path):
    speak = ("import sys; from castline.engines.piper import PiperEngine; "
             "from castline.voices.profiles import load_voice_library; "
             f"voice = load_voice_library({str(voices_dir)!r}).get('joe'); "
             f"[audio] = PiperEngine().synthesize([{SENTENCE!r}], voice, [5]); "
             "print(audio.size, 'onnx' in sys.modules)")
    env = {**__import__("os").environ, "CASTLINE_HOME": str(tmp_path)}
    runs = [subprocess.run([sys.executable, "-c", speak], env=env, capture_output=True, text=True, check=True,
                           cwd=Path(__file__).resolve().parents[1]).stdout.split() for _ in range(2)]
    assert runs[0][1] == "True" and runs[1][1] == "False"  # made with onnx once, then read without it
    assert runs[0][0] == runs[1][0] != "0"
