"""Decode whole Whisper windows with CTranslate2 directly: one encoder call per window, greedy
decoding of several windows at once, then word alignment.

faster-whisper's ``BatchedInferencePipeline`` always pads to 30 s and encodes windows in
batches; both cost time here (Whisper base int8, one thread: a batch of 8 windows took 0.89 s
per window in the encoder against 0.72 s one at a time). This module takes its steps (the same
prompt, suppressed tokens and word-timestamp code from faster-whisper) with any window length
and log-mel hop (``castline.qa.listening``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from castline.qa.listening import Listening

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
"""faster-whisper's defaults: punctuation merged into the neighbouring word."""


@dataclass(frozen=True)
class WindowResult:
    """What Whisper heard in one window: ``text``; ``words`` as (start_s, end_s, text,
    probability) in seconds of the window's audio as recorded (speed undone);
    ``no_speech_prob`` (0..1) and ``avg_logprob`` (natural log per token, ≤ 0); ``language``."""

    text: str
    words: tuple[tuple[float, float, str, float], ...]
    no_speech_prob: float
    avg_logprob: float
    language: str


def decode_windows(whisper, windows: Sequence[np.ndarray], listening: Listening, *, language: str | None,
                   beam_size: int, batch_size: int, timestamp_tokens: bool) -> list[WindowResult]:
    """Hear each window (float32 mono, 16 kHz, at most ``listening.audio_per_window_s``) with the
    faster-whisper ``WhisperModel`` ``whisper``: log-mel frames every ``listening.hop_samples``,
    zero-padded to ``listening.frames``; greedy (or ``beam_size``) decoding at temperature 0 with
    nothing carried between windows; word times by cross-attention alignment. ``language``: an
    ISO code, or None to detect one from the first window for all."""
    import ctranslate2
    from faster_whisper.feature_extractor import FeatureExtractor
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    if not windows:
        return []
    extractor = FeatureExtractor(feature_size=whisper.model.n_mels, hop_length=listening.hop_samples)
    to_cpu = whisper.model.device != "cpu"
    tokenizer = prompt = suppressed = None
    results: list[WindowResult] = []
    # Encoded a batch at a time, so at most ``batch_size`` encoder outputs are held at once.
    for first in range(0, len(windows), batch_size):
        encoded, frames = [], []
        for window in windows[first:first + batch_size]:
            features = extractor(np.asarray(window, np.float32))[..., :-1][:, :listening.frames]
            frames.append(max(2, features.shape[1]))
            features = np.pad(features, ((0, 0), (0, listening.frames - features.shape[1])))
            output = whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                                          to_cpu=to_cpu)
            encoded.append(np.array(output))
        stacked = np.concatenate(encoded)
        batch = ctranslate2.StorageView.from_array(stacked)
        if tokenizer is None:
            if language is None:
                [[(token, _), *_]] = whisper.model.detect_language(ctranslate2.StorageView.from_array(encoded[0]))
                language = token[2:-2]
            tokenizer = Tokenizer(whisper.hf_tokenizer, whisper.model.is_multilingual, task="transcribe",
                                  language=language)
            prompt = whisper.get_prompt(tokenizer, [], without_timestamps=not timestamp_tokens)
            suppressed = list(get_suppressed_tokens(tokenizer, [-1]))
        outputs = whisper.model.generate(batch, [list(prompt) for _ in encoded], beam_size=beam_size,
                                         max_length=whisper.max_length, suppress_blank=True,
                                         suppress_tokens=suppressed, return_scores=True, return_no_speech_prob=True)
        tokens = [[token for token in output.sequences_ids[0] if token < tokenizer.eot] for output in outputs]
        words = _align(whisper, tokenizer, stacked, tokens, frames, listening)
        for output, ids, heard in zip(outputs, tokens, words, strict=True):
            count = len(output.sequences_ids[0])
            # CTranslate2's score is the summed log-probability divided by the length (length
            # penalty 1); faster-whisper's average divides the sum by length + 1 (the end token).
            avg_logprob = output.scores[0] * count / (count + 1) if output.scores else 0.0
            results.append(WindowResult(text=tokenizer.decode(ids).strip(), words=heard,
                                        no_speech_prob=float(output.no_speech_prob), avg_logprob=float(avg_logprob),
                                        language=language))
    return results


def _align(whisper, tokenizer, encoded: np.ndarray, tokens: list[list[int]], frames: list[int],
           listening: Listening) -> list[tuple[tuple[float, float, str, float], ...]]:
    """Word times for each window's tokens, from the windows' ``encoded`` output (batch first);
    empty windows are skipped: nothing to align.

    One window at a time: the alignment runs the decoder over the window's tokens and keeps its
    logits over the whole vocabulary (51,864 floats per token), so two windows at once held twice
    that, and the hearing's working memory peaked there."""
    import ctranslate2

    words: list[tuple[tuple[float, float, str, float], ...]] = [() for _ in tokens]
    scale = listening.exact_speed
    for i in (i for i, ids in enumerate(tokens) if ids):
        one = ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded[i:i + 1]))
        segments = [[{"tokens": tokens[i], "start": 0.0, "end": frames[i] / 100, "seek": 0}]]
        whisper.add_word_timestamps(segments, tokenizer, one, [frames[i]], PREPEND_PUNCTUATIONS,
                                    APPEND_PUNCTUATIONS, 0.0)
        [[segment]] = segments
        words[i] = tuple((float(word["start"]) * scale, float(word["end"]) * scale, word["word"],
                          float(word["probability"])) for word in segment.get("words", ()))
    return words
