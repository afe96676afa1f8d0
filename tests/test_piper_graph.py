"""Piper's graph cut at its decoder and decoded in windows: the same samples, bit for bit."""

from dataclasses import replace

import numpy as np
import pytest

from castline.engines import piper
from castline.engines.ort_options import session_options
from castline.engines.piper_graph import explicit_noise_model, split_at_decoder
from castline.engines.pool import get_engine, release_all
from castline.voices.profiles import load_voice_library

LONG_SENTENCE = ("The report, which was prepared over three years by more than two hundred scientists from forty "
                 "countries, concludes that the warming of the oceans, the melting of the polar ice sheets and the "
                 "rise of the sea level are accelerating faster than the models had predicted a decade ago, and "
                 "that the window for limiting the damage is closing quickly for everyone.")


@pytest.fixture(scope="module")
def joe(voices_dir):
    voice = load_voice_library(voices_dir).get("joe")
    yield voice
    release_all()


@pytest.fixture(scope="module")
def loaded(joe):
    return get_engine("piper")._voice(joe.engine_voice)


@pytest.fixture(scope="module")
def whole_session(joe):
    import onnxruntime

    model, _ = piper._voice_files(joe.engine_voice)
    graph, _ = explicit_noise_model(model)
    return onnxruntime.InferenceSession(graph, session_options(threads=1), providers=["CPUExecutionProvider"])


def sentence_feeds(loaded, text: str, seed: int = 7) -> dict:
    config = loaded.piper_voice.config
    [phonemes] = loaded.piper_voice.phonemize(text)
    ids = loaded.piper_voice.phonemes_to_ids(phonemes)
    feeds = {"input": np.asarray([ids], dtype=np.int64), "input_lengths": np.asarray([len(ids)], dtype=np.int64),
             "scales": np.array([config.noise_scale, config.length_scale, config.noise_w_scale], dtype=np.float32)}
    for k, name in enumerate(loaded.noise_inputs):
        feeds[name] = np.random.default_rng([seed, 0, k]).standard_normal(piper._NOISE_PER_ID * (len(ids) + 8),
                                                                            dtype=np.float32)
    return feeds


def test_the_packaged_voice_is_cut_where_its_hifigan_decoder_starts(loaded):
    layout = loaded.layout
    assert layout is not None and loaded.piper_voice.session is None  # the weights live in the halves only
    assert layout.hop == 256  # upsampling 8 x 8 x 4
    assert layout.decoder_inputs == (layout.latent,)  # one speaker: no speaker embedding
    assert 16 <= layout.reach_frames <= 40


@pytest.fixture(scope="module")
def long_line(loaded, whole_session) -> tuple[np.ndarray, np.ndarray]:
    """(the decoder's latent input, the whole graph's audio) for LONG_SENTENCE, seed 7."""
    feeds = sentence_feeds(loaded, LONG_SENTENCE, seed=7)
    [latent] = loaded.front.run(list(loaded.layout.decoder_inputs), feeds)
    return latent, whole_session.run(None, feeds)[0].reshape(-1)


def test_a_long_sentence_decoded_in_windows_equals_the_whole_graph_bit_for_bit(loaded, long_line):
    latent, whole = long_line
    assert latent.shape[-1] > 2 * piper.DECODER_WINDOW_FRAMES  # three windows or more
    assert np.array_equal(piper._decode_in_windows(loaded, [latent]), whole)
    assert np.array_equal(piper._decode_in_windows(loaded, [latent], window_frames=64), whole)


def test_windows_without_their_context_would_click_at_every_seam(loaded, long_line):
    latent, whole = long_line
    blind = replace(loaded, layout=replace(loaded.layout, reach_frames=0))
    differs = np.abs(piper._decode_in_windows(blind, [latent], window_frames=64) - whole) > 1e-6
    frames = latent.shape[-1]
    count = -(-frames // 64)
    seams = [frames * number // count * loaded.layout.hop for number in range(1, count)]
    assert all(differs[seam - 256:seam + 256].any() for seam in seams)
    assert not differs[:32 * 256].any()  # far from any seam it is the same audio


def test_the_engine_speaks_a_long_line_as_the_whole_graph_does(joe, long_line):
    [spoken] = get_engine("piper").synthesize([LONG_SENTENCE], joe, [7])
    assert np.array_equal(spoken, np.clip(long_line[1], -1.0, 1.0))


def test_a_graph_without_a_decoder_this_can_find_runs_whole():
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["input"], ["output"], name="/enc_p/Identity")], "g",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None])])
    assert split_at_decoder(helper.make_model(graph).SerializeToString()) is None


def multi_speaker_graph(tanh_in_decoder: bool = True) -> bytes:
    """A small graph laid out as Piper exports a multi-speaker voice: a front making the latent and
    the speaker embedding ``g`` (time axis of 1), and a ``/dec/`` decoder that takes both (its
    ``cond`` convolution adds the speaker to every frame) and upsamples 2x."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)

    def weight(name, *shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    nodes = [
        helper.make_node("Identity", ["input"], ["latent"], name="/enc_p/Identity"),
        helper.make_node("Identity", ["speaker"], ["g"], name="/emb_g/Identity"),
        helper.make_node("Conv", ["latent", "w_pre"], ["pre"], name="/dec/conv_pre/Conv", pads=[3, 3]),
        helper.make_node("Conv", ["g", "w_cond"], ["cond"], name="/dec/cond/Conv"),
        helper.make_node("Add", ["pre", "cond"], ["conditioned"], name="/dec/Add"),
        helper.make_node("ConvTranspose", ["conditioned", "w_up"], ["up"], name="/dec/ups.0/ConvTranspose",
                         strides=[2], pads=[1, 1]),
        helper.make_node("Conv", ["up", "w_post"], ["audio"], name="/dec/conv_post/Conv", pads=[3, 3]),
        helper.make_node("Tanh", ["audio"], ["output"], name="/dec/Tanh" if tanh_in_decoder else "/Tanh"),
    ]
    graph = helper.make_graph(
        nodes, "multi_speaker",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, None]),
         helper.make_tensor_value_info("speaker", TensorProto.FLOAT, [1, 5, 1])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, None])],
        [weight("w_pre", 4, 3, 7), weight("w_cond", 4, 5, 1), weight("w_up", 4, 2, 4), weight("w_post", 1, 2, 7)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def test_a_multi_speaker_layout_keeps_the_speaker_whole_and_windows_the_latent():
    from castline.engines.ort_options import session_from_bytes

    graph = multi_speaker_graph()
    split = split_at_decoder(graph)
    layout = split.layout
    assert layout.latent == "latent" and set(layout.decoder_inputs) == {"latent", "g"}
    assert layout.decoder_output == "output" and layout.hop == 2
    assert layout.reach_frames == 11  # conv_pre 6 + cond 0 + upsampling ceil(4/2) + conv_post 6/2
    feeds = {"input": np.random.default_rng(4).standard_normal((1, 3, 150)).astype(np.float32),
             "speaker": np.random.default_rng(5).standard_normal((1, 5, 1)).astype(np.float32)}
    whole = session_from_bytes(graph).run(["output"], feeds)[0].reshape(-1)
    voice = piper._LoadedVoice(None, (), session_from_bytes(split.front), session_from_bytes(split.decoder), layout)
    decoder_inputs = voice.front.run(list(layout.decoder_inputs), feeds)
    np.testing.assert_allclose(piper._decode_in_windows(voice, decoder_inputs, window_frames=16), whole,
                               rtol=0, atol=1e-6)
    blind = replace(voice, layout=replace(layout, reach_frames=0))
    assert np.abs(piper._decode_in_windows(blind, decoder_inputs, window_frames=16) - whole).max() > 1e-3


def test_a_graph_with_an_op_after_its_decoder_runs_whole():
    assert split_at_decoder(multi_speaker_graph(tanh_in_decoder=False)) is None


def test_a_session_made_from_bytes_does_not_keep_them():
    import sys

    from castline.engines.ort_options import session_from_bytes

    graph = multi_speaker_graph()
    before = sys.getrefcount(graph)
    session = session_from_bytes(graph)
    assert sys.getrefcount(graph) == before  # onnxruntime's own class would hold one more
    feeds = {"input": np.ones((1, 3, 8), np.float32), "speaker": np.ones((1, 5, 1), np.float32)}
    assert session.run(["output"], feeds)[0].shape == (1, 1, 16)
