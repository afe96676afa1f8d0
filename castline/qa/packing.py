"""Hear many short clips with few Whisper windows: pack them with silence between, transcribe each
window once, give every word back to the clip it was spoken in.

Whisper encodes a whole 30 s window per call however short the clip (a 2.3 s chunk cost 0.93 s,
a 19 s one 1.37 s), so hearing chunk by chunk pays the encoder once per chunk. Measured on the
49 chunks of bench/qa.py's episode (2.3–19.2 s, 9.4 min; Whisper base int8, 1 thread, machine
shared): one call per chunk 55–67 CPU-s, mean WER 0.033; packed in the flow's batches of 9 into
24 windows, decoded 8 at a time, 36–37 CPU-s, mean WER 0.025. Six chunks scored better packed
(the neighbours' context helped with names such as "El Niño"), three worse by one mid-chunk word
each; none gained or lost a word at its edges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from castline.audio.resample import resample
from castline.qa.asr import WHISPER_SAMPLE_RATE, Transcriber, Transcript, Word
from castline.qa.listening import CAREFUL, Listening

PACK_WINDOW_S = CAREFUL.content_s
"""Longest packed window at natural speed (Whisper's is 30 s; the margin keeps the last word off its edge)."""
PACK_GAP_S = 0.8
"""Silence between two clips in a window, in seconds as Whisper hears them (a quick listen's
gaps are ``speed`` times longer in the audio). Of the 1,536 words heard in the 49 chunks above, 8 had
their midpoint in a gap, at most 0.17 s from their own clip (half the gap is 0.4 s). A 0.6 s gap
gave 7 words, 0.14 s, and one window fewer (23): not worth the thinner margin."""
EDGE_FLOOR_DBFS = -60.0
"""Leading and trailing 10 ms frames under −60 dBFS RMS are not packed (engines leave 0.05–0.5 s
of near-silence at each end)…"""
EDGE_MARGIN_S = 0.1
"""…except the 100 ms next to the speech. A clip with no frame above the floor is packed whole."""
MIN_WINDOW_SPEECH_S = 2.0
"""A window holding less than this (as Whisper hears it) is heard with its content repeated after it (gap between),
up to this length; the repeats' words are dropped. Whisper base hears a lone 0.65 s piper
"Goodbye." as "Bye bye." however much silence surrounds it (0.2–2 s tried), but "Goodbye." when
the window also holds any other speech, the same clip again included: a retry round with one
short chunk left failed all its takes that way (a flaky flow test)."""


@dataclass(frozen=True)
class Placement:
    """Where one clip's kept part lies: ``window`` (index), ``start`` in the window and
    ``length`` (samples at the packing rate)."""

    clip: int
    window: int
    start: int
    length: int


@dataclass(frozen=True)
class PackPlan:
    """``window_lengths`` (samples); ``placements``, one per packed clip, in window order and
    in order inside each window; ``alone``: clips longer than a window, heard on their own."""

    window_lengths: tuple[int, ...]
    placements: tuple[Placement, ...]
    alone: tuple[int, ...]


def plan_packs(lengths: Sequence[int], sample_rate: int, *, window_s: float = PACK_WINDOW_S,
               gap_s: float = PACK_GAP_S) -> PackPlan:
    """First-fit decreasing: the longest clips first, each into the first window with room for
    it and a gap; clips keep their input order inside a window. Clips of zero length are left
    out (nothing to hear); clips longer than ``window_s`` go to ``alone``."""
    if window_s <= 0 or gap_s < 0:
        raise ValueError(f"window_s must be positive and gap_s not negative, got {window_s}, {gap_s}")
    limit = int(round(window_s * sample_rate))
    gap = int(round(gap_s * sample_rate))
    bins: list[list[int]] = []
    used: list[int] = []
    alone = []
    for clip in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[clip]
        if length <= 0:
            continue
        if length > limit:
            alone.append(clip)
            continue
        for number, members in enumerate(bins):
            if used[number] + gap + length <= limit:
                members.append(clip)
                used[number] += gap + length
                break
        else:
            bins.append([clip])
            used.append(length)
    placements, window_lengths = [], []
    for number, members in enumerate(bins):
        position = 0
        for clip in sorted(members):
            if position:
                position += gap
            placements.append(Placement(clip, number, position, lengths[clip]))
            position += lengths[clip]
        window_lengths.append(position)
    return PackPlan(tuple(window_lengths), tuple(placements), tuple(sorted(alone)))


def assign_words(words: Sequence[Word], spans: Sequence[tuple[float, float]]) -> list[list[Word]]:
    """Each word (times in seconds) to the span (start, end seconds; sorted, not overlapping)
    nearest its midpoint: the one containing it, else the nearer edge across a gap."""
    assigned: list[list[Word]] = [[] for _ in spans]
    if not spans:
        return assigned
    for word in words:
        middle = (word.start_s + word.end_s) / 2
        distances = [max(start - middle, middle - end, 0.0) for start, end in spans]
        assigned[int(np.argmin(distances))].append(word)
    return assigned


def speech_bounds(audio: np.ndarray, sample_rate: int) -> tuple[int, int]:
    """(start, end) samples of ``audio`` without its near-silent edges (see ``EDGE_FLOOR_DBFS``)."""
    frame = max(1, sample_rate // 100)
    count = audio.size // frame
    if count == 0:
        return 0, audio.size
    frames = np.asarray(audio[:count * frame], np.float64).reshape(count, frame)
    levels = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    loud = np.flatnonzero(levels > EDGE_FLOOR_DBFS)
    if loud.size == 0:
        return 0, audio.size
    margin = int(round(EDGE_MARGIN_S * sample_rate))
    return max(0, int(loud[0]) * frame - margin), min(audio.size, (int(loud[-1]) + 1) * frame + margin)


def hear_clips(clips: Sequence[np.ndarray], sample_rate: int, transcriber: Transcriber, *,
               language: str | None = "en", listening: Listening = CAREFUL,
               gap_s: float = PACK_GAP_S) -> list[Transcript]:
    """One ``Transcript`` per clip (float mono at ``sample_rate``), as if each had been heard
    alone, from as few Whisper windows as packing allows; ``listening`` sets the speed, window
    and fill (``castline.qa.listening``), ``gap_s`` the silence between clips as Whisper hears it.

    Per clip: ``text`` is its words joined; ``words`` carry times from the clip's own start,
    clamped to the clip;
    ``language`` is the window's; ``no_speech_prob``/``avg_logprob`` are None (Whisper gives them
    per window — ``word_probability`` is the per-clip measure). Clips longer than a window are
    transcribed alone (sequential 30 s windows, word timestamps) and keep all their fields.
    """
    clips = [_mono(clip) for clip in clips]
    at_whisper_rate = [resample(clip, sample_rate, WHISPER_SAMPLE_RATE) for clip in clips]
    bounds = [speech_bounds(clip, WHISPER_SAMPLE_RATE) for clip in at_whisper_rate]
    speed = listening.exact_speed
    plan = plan_packs([end - start for start, end in bounds], WHISPER_SAMPLE_RATE,
                      window_s=listening.audio_per_window_s, gap_s=gap_s * speed)
    windows = [np.zeros(length, np.float32) for length in plan.window_lengths]
    for place in plan.placements:
        start, end = bounds[place.clip]
        windows[place.window][place.start:place.start + place.length] = at_whisper_rate[place.clip][start:end]
    echoes = [_with_echoes(window, gap_s * speed, MIN_WINDOW_SPEECH_S * speed) for window in windows]
    heard = transcriber.transcribe_batch([audio for audio, _ in echoes], WHISPER_SAMPLE_RATE, language,
                                         listening=listening) if windows else []
    transcripts: list[Transcript | None] = [None] * len(clips)
    for number, window in enumerate(heard):
        members = [place for place in plan.placements if place.window == number]
        spans = [(place.start / WHISPER_SAMPLE_RATE, (place.start + place.length) / WHISPER_SAMPLE_RATE)
                 for place in members]
        echo_start, echo_end = echoes[number][1], echoes[number][0].size
        if echo_end > echo_start:  # the repeats' words are collected here and dropped
            spans.append((echo_start / WHISPER_SAMPLE_RATE, echo_end / WHISPER_SAMPLE_RATE))
        for place, words in zip(members, assign_words(window.words, spans)):
            shift = (bounds[place.clip][0] - place.start) / WHISPER_SAMPLE_RATE
            duration_s = clips[place.clip].size / sample_rate
            # Whisper starts the first word after a gap early, inside the silence: times are
            # clamped to the clip (a word is spoken inside the audio that holds it).
            moved = tuple(Word(min(max(word.start_s + shift, 0.0), duration_s),
                               min(max(word.end_s + shift, 0.0), duration_s), word.text, word.probability)
                          for word in words)
            transcripts[place.clip] = Transcript(
                text="".join(word.text for word in moved).strip(), language=window.language, words=moved,
                no_speech_prob=None, avg_logprob=None, duration_s=duration_s)
    for clip in plan.alone:
        transcripts[clip] = transcriber.transcribe(clips[clip], sample_rate, language=language, word_timestamps=True)
    return [transcript if transcript is not None else
            Transcript(text="", language=language or "", words=(), no_speech_prob=None, avg_logprob=None,
                       duration_s=clips[i].size / sample_rate)
            for i, transcript in enumerate(transcripts)]


def _with_echoes(window: np.ndarray, gap_s: float, minimum_s: float = MIN_WINDOW_SPEECH_S) -> tuple[np.ndarray, int]:
    """``window`` followed by gap-separated repeats of itself up to ``minimum_s`` (seconds of
    audio), and where the repeats start (samples; ``window.size`` when none were needed)."""
    wanted = int(round(minimum_s * WHISPER_SAMPLE_RATE))
    if window.size == 0 or window.size >= wanted:
        return window, window.size
    gap = np.zeros(int(round(gap_s * WHISPER_SAMPLE_RATE)), np.float32)
    parts, length = [window], window.size
    while length < wanted:
        parts += [gap, window]
        length += gap.size + window.size
    return np.concatenate(parts), window.size + gap.size


def _mono(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono (samples,) or (channels, samples), got shape {audio.shape}")
    return audio
