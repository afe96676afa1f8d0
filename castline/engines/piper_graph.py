"""Piper (VITS) ONNX graphs made fit for castline: noise fed from outside, decoder run in windows.

Both are rewrites of the voice's own graph at load time; neither changes what is computed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

_NOISE_INPUT = "castline_noise_{}"
DECODER_PREFIX = "/dec/"
"""Piper's exporter names the HiFi-GAN decoder's nodes ``/dec/...`` (the PyTorch module ``dec``)."""


def explicit_noise_model(model_path: Path) -> tuple[bytes, tuple[str, ...]]:
    """The voice's ONNX graph with every ``RandomNormalLike`` fed from a new 1-D float input.

    Node ``k``'s output becomes the first ``size(like)`` values of input ``castline_noise_k``,
    shaped like its ``like`` tensor, so a longer bank gives the same noise (a prefix).
    Returns the serialised graph and the new input names, in node order.
    """
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(model_path))
    graph = model.graph
    nodes, inputs = [], []
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attributes.get("mean", 0.0) != 0.0 or attributes.get("scale", 1.0) != 1.0 \
                or attributes.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            raise ValueError(f"{model_path}: unexpected RandomNormalLike settings {attributes}")
        name = _NOISE_INPUT.format(len(inputs))
        inputs.append(name)
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [None]))
        like, out = node.input[0], node.output[0]
        nodes += [
            helper.make_node("Shape", [like], [f"{name}_shape"], name=f"{name}/Shape"),
            helper.make_node("ReduceProd", [f"{name}_shape"], [f"{name}_count"], keepdims=1,
                             name=f"{name}/Count"),
            helper.make_node("Slice", [name, f"{name}_zero", f"{name}_count"], [f"{name}_values"],
                             name=f"{name}/Slice"),
            helper.make_node("Reshape", [f"{name}_values", f"{name}_shape"], [out], name=f"{name}/Reshape"),
        ]
        graph.initializer.append(helper.make_tensor(f"{name}_zero", TensorProto.INT64, [1], [0]))
    if not inputs:
        raise ValueError(f"{model_path}: no RandomNormalLike node to feed (not a Piper VITS voice?)")
    del graph.node[:]
    graph.node.extend(nodes)
    return model.SerializeToString(), tuple(inputs)


@dataclass(frozen=True)
class DecoderLayout:
    """Where a Piper graph's HiFi-GAN decoder takes its input and gives its audio.

    ``decoder_inputs``: the decoder's inputs, in order; ``latent`` is the one with a time axis
    (``[1, channels, frames]``), any other (a speaker embedding) has none. ``decoder_output``:
    audio ``[1, 1, frames * hop]``. ``hop``: audio samples per latent frame. ``reach_frames``: how
    many latent frames on each side can touch an output sample, or more (every convolution's full
    extent added up, as if the parallel residual blocks were in series).
    """

    decoder_inputs: tuple[str, ...]
    latent: str
    decoder_output: str
    hop: int
    reach_frames: int


@dataclass(frozen=True)
class SplitGraph:
    """A Piper graph cut where its decoder starts, as two serialised ONNX graphs.

    ``front``: the voice's inputs → ``layout.decoder_inputs`` (text encoder, duration predictor,
    flow). ``decoder``: ``layout.decoder_inputs`` → ``layout.decoder_output``.
    """

    front: bytes
    decoder: bytes
    layout: DecoderLayout


def split_at_decoder(graph_bytes: bytes) -> SplitGraph | None:
    """``graph_bytes`` cut into its front and its HiFi-GAN decoder; None when the graph has no
    decoder this can find, or the graph computes more after its decoder (a voice exported some
    other way runs whole). The latent is the input of ``/dec/conv_pre/Conv`` (else of the first decoder
    node); any other decoder input, such as a multi-speaker voice's speaker embedding, is passed
    whole to every window."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(graph_bytes)
    graph = model.graph
    decoder = [node for node in graph.node if node.name.startswith(DECODER_PREFIX)]
    if not decoder or decoder[0].op_type != "Conv":
        return None
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    produced = {name for node in decoder for name in node.output}
    inputs = tuple(dict.fromkeys(name for node in decoder for name in node.input
                                 if name and name not in produced and name not in initializers))
    consumed_outside = {name for node in graph.node if not node.name.startswith(DECODER_PREFIX) for name in node.input}
    graph_outputs = {output.name for output in graph.output}
    outputs = [name for name in produced if name in consumed_outside or name in graph_outputs]
    pre = next((node for node in decoder if node.name == f"{DECODER_PREFIX}conv_pre/Conv"), decoder[0])
    latent = pre.input[0]
    # The decoder's one output must be the voice's audio, give or take its shape (Piper's
    # exporter adds an Unsqueeze): any other op after it would not be run.
    if len(outputs) != 1 or not _only_reshaped_to_an_output(graph, outputs[0], graph_outputs) or latent not in inputs:
        return None
    hop, reach = _decoder_reach(decoder, initializers)
    graph.value_info.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None)
                            for name in (*inputs, outputs[0]))
    extractor = onnx.utils.Extractor(model)
    front = extractor.extract_model([tensor.name for tensor in graph.input
                                     if tensor.name not in initializers], list(inputs))
    back = extractor.extract_model(list(inputs), outputs)
    return SplitGraph(front.SerializeToString(), back.SerializeToString(),
                      DecoderLayout(inputs, latent, outputs[0], hop, math.ceil(reach)))


_SHAPE_ONLY = frozenset({"Unsqueeze", "Squeeze", "Reshape", "Flatten", "Identity"})


def _only_reshaped_to_an_output(graph, name: str, graph_outputs: set[str]) -> bool:
    """Whether tensor ``name`` reaches a graph output through shape-only ops, and goes nowhere else."""
    while name not in graph_outputs:
        consumers = [node for node in graph.node if name in node.input]
        if len(consumers) != 1 or consumers[0].op_type not in _SHAPE_ONLY or consumers[0].input[0] != name:
            return False
        name = consumers[0].output[0]
    return not any(name in node.input for node in graph.node)


def _decoder_reach(decoder, initializers) -> tuple[int, float]:
    """(hop in samples per latent frame, reach in latent frames) of the decoder's convolutions."""
    from onnx import helper

    rate, reach = 1, 0.0  # ``rate``: the current tensor's samples per latent frame
    for node in decoder:
        if node.op_type not in ("Conv", "ConvTranspose"):
            continue
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        kernel = initializers[node.input[1]].dims[-1]
        if node.op_type == "Conv":
            dilation = (attributes.get("dilations") or [1])[0]
            reach += (kernel - 1) * dilation / rate
        else:
            stride = (attributes.get("strides") or [1])[0]
            reach += math.ceil(kernel / stride) / rate
            rate *= stride
    return rate, reach
