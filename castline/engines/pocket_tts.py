"""Pocket TTS (Kyutai, via transformers' ``pocket_tts``): ~100M-parameter English voice cloning at 24 kHz.

A transformer backbone with a flow head samples one continuous codec latent per frame (12.5 frames/s,
1920 samples each) until its end-of-speech head fires; the codec decodes the latents. One voice per
batch row, so a batch is several turns of one speaker rendered in one ``generate`` call.

``--model`` is a local checkpoint folder or a Hub id. Each speaker's reference clip is encoded by the
codec once per engine instance and reused for every batch (``voice_cache_hits`` / ``_misses``).
Sampling noise comes from one generator per row seeded with that row's seed, so a row's audio
depends on its text, voice and seed only, not on which rows share its batch.
"""

from __future__ import annotations

import gc
import json
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from castline.engines.base import Availability, Engine, EngineCapabilities, EngineOptions
from castline.engines.textprep import plain_punctuation
from castline.engines.transformers_policy import (device_and_dtype, directory_identity, hub_identity,
                                                  package_version)
from castline.engines.cloning import from_transformers, reference_voice_availability, transformers_model_availability
from castline.core.errors import EngineError
from castline.core.text import first_line
from castline.voices.profiles import VoiceProfile

MAX_ROWS_PER_CALL = 16
"""Rows per ``generate`` call; longer lists are split (every row runs until the batch's longest ends)."""

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
_CODEC_REFERENCE_FILES = ("processor_config.json", "audio_tokenizer_config.json")
_EXCERPT_CHARS = 40


@dataclass(frozen=True)
class _Loaded:
    """What one engine instance holds after its first use."""

    model: object
    processor: object
    device: str
    dtype: str
    model_identity: str
    latent_dim: int
    do_sample: bool
    temperature: float


class PocketTTSEngine(Engine):
    """Pocket TTS through transformers; see the module docstring."""

    name = "pocket-tts"
    capabilities = EngineCapabilities(languages=("en",), cloning=True, max_chars=400, target_chars=300,
                                      sample_rate=24_000, deterministic=True, thread_parallel=True,
                                      batch_rows=8)

    def __init__(self, options: EngineOptions | None = None) -> None:
        super().__init__(options)
        _model_folder(self.options.model)
        self._lock = threading.RLock()
        self._loaded: _Loaded | None = None
        self._voice_latents: dict[tuple[str, str, str], object] = {}
        self.voice_cache_hits = 0
        self.voice_cache_misses = 0

    @classmethod
    def availability(cls) -> Availability:
        return transformers_model_availability("pocket_tts", "modeling_pocket_tts.py", "Pocket TTS")

    @classmethod
    def voice_availability(cls, voice: VoiceProfile) -> Availability:
        return reference_voice_availability(voice)

    @classmethod
    def identity(cls, voice: VoiceProfile, options: EngineOptions | None = None) -> str:
        """``pocket-tts``, the transformers version, the model's identity and the audio-shaping options.

        Reads only small files (never loads the model). ``options`` defaults to ``EngineOptions()``;
        instances pass their own (``engine.identity(voice, engine.options)``).
        """
        options = options or EngineOptions()
        model = "unset" if options.model is None else model_identity(options.model)
        # The model identity stands for options.model: a checkpoint moved to another folder keeps its chunks.
        shaping = {key: value for key, value in options.identity().items() if key != "model"}
        settings = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
        return f"pocket-tts transformers {package_version('transformers')} model {model} options {settings}"

    def synthesize(self, texts: Sequence[str], voice: VoiceProfile, seeds: Sequence[int]) -> list[np.ndarray]:
        """One float32 mono array (24 kHz) per text, trimmed to that row's own frames."""
        if len(texts) != len(seeds):
            raise EngineError(f"pocket-tts got {len(texts)} texts but {len(seeds)} seeds")
        if not texts:
            return []
        prepared = [plain_punctuation(text) for text in texts]
        for original, text in zip(texts, prepared):
            if not text:
                raise EngineError(f"pocket-tts cannot speak an empty text ({_excerpt(original)!r})")
        with self._lock:
            loaded = self._load()
            latents = self._voice_prompt(voice, loaded)
            audio: list[np.ndarray] = []
            for start in range(0, len(prepared), MAX_ROWS_PER_CALL):
                stop = start + MAX_ROWS_PER_CALL
                audio += self._generate(loaded, voice, latents, prepared[start:stop], texts[start:stop],
                                        [int(seed) for seed in seeds[start:stop]])
            return audio

    def voice_latents(self, voice: VoiceProfile) -> np.ndarray:
        """The codec's encoding of ``voice``'s reference: float32 ``(frames, latent_dim)``, 12.5 frames/s.

        The same cached encoding ``synthesize`` uses (counts as a cache hit or miss).
        """
        with self._lock:
            return self._voice_prompt(voice, self._load()).numpy().copy()

    def close(self) -> None:
        with self._lock:
            loaded, self._loaded = self._loaded, None
            self._voice_latents.clear()
        used_cuda = loaded is not None and loaded.device.startswith("cuda")
        del loaded
        gc.collect()
        if used_cuda:
            import torch

            torch.cuda.empty_cache()

    def _load(self) -> _Loaded:
        if self._loaded is not None:
            return self._loaded
        import torch
        AutoConfig, PocketTTSForConditionalGeneration = from_transformers(
            "AutoConfig", "PocketTTSForConditionalGeneration")

        model_name = self.options.model
        folder = _model_folder(model_name)
        device, dtype = device_and_dtype(self.options.device, self.options.dtype, "pocket-tts")
        source = str(folder) if folder is not None else model_name
        try:
            config = AutoConfig.from_pretrained(source)
        except Exception as error:
            raise EngineError(f"cannot load pocket-tts model '{model_name}': {first_line(error)}") from error
        if config.model_type != "pocket_tts":
            raise EngineError(f"model '{model_name}' is a '{config.model_type}' checkpoint, not Pocket TTS")
        try:
            processor = _load_processor(source, folder)
            model = PocketTTSForConditionalGeneration.from_pretrained(source, dtype=getattr(torch, dtype))
        except EngineError:
            raise
        except Exception as error:
            raise EngineError(f"cannot load pocket-tts model '{model_name}': {first_line(error)}") from error
        codec = getattr(processor, "audio_tokenizer", None)
        if codec is None or codec.config.encoder_config is None or codec.config.decoder_config is None:
            raise EngineError(f"pocket-tts model '{model_name}' has no full codec (encoder and decoder) to clone "
                              "and decode voices")
        model.to(device).eval()
        # The codec stays float32: it is small, and its output is the audio itself.
        codec.to(device=device, dtype=torch.float32).eval()
        # generate() requires every prompt to end on its first audio position.
        processor.tokenizer.padding_side = "left"
        generation = model.generation_config
        self._loaded = _Loaded(model=model, processor=processor, device=device, dtype=dtype,
                               model_identity=model_identity(model_name), latent_dim=int(config.latent_dim),
                               do_sample=bool(generation.do_sample),
                               temperature=float(generation.temperature if generation.temperature is not None
                                                 else 1.0))
        return self._loaded

    def _voice_prompt(self, voice: VoiceProfile, loaded: _Loaded):
        """The cached codec latents of ``voice``'s reference, a CPU float32 tensor ``(frames, latent_dim)``."""
        if voice.reference is None:
            raise EngineError(f"voice '{voice.voice_id}' has no reference audio to clone (pocket-tts clones voices)")
        profile = voice.profile_hash or f"{voice.reference.path}:{voice.reference.sha256}"
        key = (profile, self.name, loaded.model_identity)
        cached = self._voice_latents.get(key)
        if cached is not None:
            self.voice_cache_hits += 1
            return cached
        self.voice_cache_misses += 1
        latents = _encode_reference(voice, loaded)
        self._voice_latents[key] = latents
        return latents

    def _generate(self, loaded: _Loaded, voice: VoiceProfile, latents, texts: list[str], originals: Sequence[str],
                  seeds: list[int]) -> list[np.ndarray]:
        import torch

        processor, model = loaded.processor, loaded.model
        # The voice arrives as precomputed latents; the audio item only makes the template place its placeholder.
        conversations = [[{"role": "user", "content": [{"type": "audio", "audio": voice.reference.path},
                                                        {"type": "text", "text": text}]}] for text in texts]
        try:
            prompts = processor.apply_chat_template(conversations, tokenize=False)
            if any(prompt.count(processor.audio_token) != 1 for prompt in prompts):
                raise EngineError("the model's chat template does not place exactly one voice prompt per text")
            inputs = processor(text=prompts, audio_prompt_latents=[latents] * len(texts), return_tensors="pt",
                               padding=True).to(loaded.device)
            generators = [torch.Generator().manual_seed(seed) for seed in seeds]
            sampling = {"do_sample": True, "temperature": loaded.temperature} if loaded.do_sample else \
                {"do_sample": False}
            with torch.no_grad(), _per_row_noise(model, generators, loaded):
                output = model.generate(**inputs, **sampling, return_dict_in_generate=True)
                waveforms = processor.decode(output.audio_latents, output.audio_latents_mask)
        except EngineError:
            raise
        except Exception as error:
            raise EngineError(f"pocket-tts failed on '{_excerpt(originals[0])}' (batch of {len(texts)}): "
                              f"{first_line(error)}") from error
        audio = []
        for original, waveform in zip(originals, waveforms, strict=True):
            samples = waveform.detach().to(torch.float32).cpu().numpy().reshape(-1)
            if samples.size == 0 or not np.any(samples):
                raise EngineError(f"pocket-tts produced no audio for '{_excerpt(original)}'")
            if not np.all(np.isfinite(samples)):
                raise EngineError(f"pocket-tts produced non-finite audio for '{_excerpt(original)}'")
            audio.append(np.ascontiguousarray(samples, dtype=np.float32))
        return audio


@contextmanager
def _per_row_noise(model, generators: list, loaded: _Loaded) -> Iterator[None]:
    """Replace the flow sampler's noise with draws from each row's own generator, for one ``generate``.

    Stock generation draws one ``(batch, latent_dim)`` block per frame from the global generator,
    so a row's noise would depend on its batch neighbours and on other threads' torch calls.
    """
    import torch

    scale = float(np.sqrt(loaded.temperature)) if loaded.do_sample else 0.0
    stock = type(model).sample_latent.__get__(model)

    def sample_latent(condition, noise, num_flow_steps):
        if scale > 0.0:
            rows = [torch.randn(loaded.latent_dim, generator=generator) for generator in generators]
            noise = (torch.stack(rows) * scale).to(device=noise.device, dtype=noise.dtype)
        return stock(condition, noise, num_flow_steps)

    model.sample_latent = sample_latent
    try:
        yield
    finally:
        del model.sample_latent


def _encode_reference(voice: VoiceProfile, loaded: _Loaded):
    import soundfile
    import torch

    path = voice.reference.path
    extractor, codec = loaded.processor.feature_extractor, loaded.processor.audio_tokenizer
    try:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except Exception as error:
        raise EngineError(f"cannot read reference audio '{path}': {first_line(error)}") from error
    if rate != extractor.sampling_rate:
        raise EngineError(f"reference audio '{path}' is {rate} Hz; pocket-tts needs {extractor.sampling_rate} Hz "
                          "(re-add the voice with 'castline voices add')")
    if audio.shape[0] == 0:
        raise EngineError(f"reference audio '{path}' is empty")
    mono = audio.mean(axis=1)
    try:
        features = extractor(mono, sampling_rate=rate, return_tensors="pt")
        with torch.no_grad():
            encoded = codec.encode(features["input_values"].to(codec.device, codec.dtype),
                                   features["padding_mask"].to(codec.device))
    except Exception as error:
        raise EngineError(f"cannot encode reference audio '{path}': {first_line(error)}") from error
    latents = encoded.latents[0][encoded.latents_mask[0].bool()].to(torch.float32).cpu()
    if latents.numel() == 0 or not bool(torch.isfinite(latents).all()):
        raise EngineError(f"reference audio '{path}' gave no usable voice encoding")
    return latents


def _load_processor(source: str, folder: Path | None):
    """The checkpoint's processor, with its codec found inside ``folder`` if its saved path is gone.

    A saved processor records its codec by absolute path, so a checkpoint copied elsewhere with
    its codec folder would otherwise fail to load.
    """
    AutoTokenizer, PocketTTSAudioTokenizerModel, PocketTTSFeatureExtractor, PocketTTSProcessor = from_transformers(
        "AutoTokenizer", "PocketTTSAudioTokenizerModel", "PocketTTSFeatureExtractor", "PocketTTSProcessor")

    moved_codec = _relocated_codec(folder) if folder is not None else None
    if moved_codec is None:
        return PocketTTSProcessor.from_pretrained(source)
    settings = json.loads((folder / "processor_config.json").read_text(encoding="utf-8"))
    template_file = folder / "chat_template.jinja"
    return PocketTTSProcessor(
        feature_extractor=PocketTTSFeatureExtractor.from_pretrained(folder),
        tokenizer=AutoTokenizer.from_pretrained(folder),
        audio_tokenizer=PocketTTSAudioTokenizerModel.from_pretrained(moved_codec),
        chat_template=template_file.read_text(encoding="utf-8") if template_file.is_file() else None,
        **{key: settings[key] for key in ("short_text_max_words", "frames_after_eos_short_text",
                                          "frames_after_eos", "fade_in_duration") if key in settings})


def _relocated_codec(folder: Path) -> Path | None:
    """The codec folder inside ``folder`` when the processor's recorded local codec path no longer exists."""
    reference = _codec_reference(folder)
    if reference is None or not Path(reference).is_absolute() or Path(reference).exists():
        return None
    candidate = folder / Path(reference).name
    if (candidate / "config.json").is_file():
        return candidate
    raise EngineError(f"pocket-tts model '{folder}' refers to its codec at '{reference}', which does not exist "
                      "(copy the codec folder along with the checkpoint)")


def _codec_reference(folder: Path) -> str | None:
    for name, nested in (("audio_tokenizer_config.json", False), ("processor_config.json", True)):
        file = folder / name
        if not file.is_file():
            continue
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        entry = data.get("audio_tokenizer") if nested else data
        if isinstance(entry, dict) and isinstance(entry.get("audio_tokenizer_name_or_path"), str):
            return entry["audio_tokenizer_name_or_path"]
    return None


def model_identity(model: str) -> str:
    """A local folder: ``local:`` + a digest of its content and its codec's
    (``castline.engines.transformers_policy.directory_identity``; the codec's recorded location
    is left out, so a copied or moved checkpoint keeps its identity); a Hub id: ``hub:`` + the
    id. Loads nothing."""
    folder = _model_folder(model)
    if folder is None:
        return hub_identity(model)
    reference = _codec_reference(folder)
    if reference is None:
        return directory_identity([("", folder, frozenset())], prefix="local", contents=_without_codec_path)
    name = Path(reference).name
    codec = Path(reference) if Path(reference).is_dir() else folder / name
    if not (codec / "config.json").is_file():
        # The load will fail and say so; the identity still names what was asked for.
        return directory_identity([(f"codec {reference}", folder, frozenset())], prefix="local",
                                  contents=_without_codec_path)
    return directory_identity([("", folder, frozenset({name})), ("codec", codec, frozenset())], prefix="local",
                              contents=_without_codec_path)


def _without_codec_path(file: Path) -> bytes:
    """A file's bytes; for a processor or codec config, minus the codec's location, which is
    where the codec lies, not what it is."""
    if file.name not in _CODEC_REFERENCE_FILES:
        return file.read_bytes()
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return file.read_bytes()
    for entry in (data, data.get("audio_tokenizer") if isinstance(data, dict) else None):
        if isinstance(entry, dict):
            entry.pop("audio_tokenizer_name_or_path", None)
    return json.dumps(data, sort_keys=True).encode()


def _model_folder(model: str | None) -> Path | None:
    """The checkpoint folder for ``model``, or ``None`` for a Hub id; one-line errors otherwise."""
    if not model:
        raise EngineError("the pocket-tts engine needs --model DIR_OR_HUB_ID")
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise EngineError(f"pocket-tts model folder '{model}' has no config.json")
        return path.resolve()
    if path.exists():
        raise EngineError(f"pocket-tts model '{model}' is a file, not a checkpoint folder")
    if not _HUB_ID.match(model):
        raise EngineError(f"pocket-tts model folder '{model}' not found")
    return None


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _EXCERPT_CHARS else text[:_EXCERPT_CHARS - 1] + "…"
