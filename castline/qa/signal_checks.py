"""Signal-level QA of rendered chunks and the stitched episode: each check returns a ``Finding``.

Per chunk: speech rate against the text, long pauses, music or noise where there should be
none, clipping, (almost) silent chunks. Per episode: clicks at joins and how consistent each
speaker's loudness is. Thresholds are named constants; each docstring gives the measurement that
set it. "Clean renders" there are hibari 'heart' and piper 'joe' at 24 kHz, 12 single sentences
and 6 three-sentence chunks each; "beds" are those renders mixed with sustained chords (triads
with harmonics, a chord every 1.5–2.5 s), pink or white noise, N dB under the speech's active RMS;
"real references" the five clean VibeVoice demo voices (the sixth has music under the voice).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from castline import PROJECT_SAMPLE_RATE
from castline.dsp.loudness import measure_loudness
from castline.dsp.seams import CLICK_THRESHOLD_DB, seam_jump_db

FRAME_MS = 10.0
ACTIVE_RANGE_DB = 40.0
"""A 10 ms frame is speech-active within 40 dB of the chunk's loud frames (95th percentile)."""
ACTIVE_FLOOR_DBFS = -60.0
"""...and above −60 dBFS RMS, so room tone or dither never counts as speech."""
WORD_PATTERN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")

SPEECH_PAUSE_BRIDGE_MS = 250.0
"""Gaps shorter than 250 ms (stops, word joins) count as speech time; longer ones are pauses
(the usual pause threshold of speech-timing studies)."""
WORDS_PER_MINUTE_BAND = (120.0, 360.0)
"""Words per minute of speech time (pauses ≥ 250 ms excluded, so it reads higher than a speaking
rate that counts the pauses). Clean renders measured
179–280 wpm for single sentences (word lengths differ) and 197–239 for three-sentence chunks;
played 1.5× faster 264–396, 0.6× as fast 108–168. The band is for gross failures (dropped or
repeated text); set a voice's own band, about 0.65–1.5× its measured median, to catch less."""
MIN_WORDS_FOR_RATE = 3

MAX_SILENCE_MS = 1200.0
"""Longest pause inside a chunk: clean renders' longest was 0.36 s in single sentences and 0.85 s
between sentences of three-sentence chunks."""

SPEECH_TO_PAUSE_MIN_DB = 35.0
"""Speech (90th percentile of 20 ms frame levels) over pauses (2nd percentile), dB. Clean renders
measured 66–101 dB (their pauses are near digital silence), the five clean real references
39.8–100 dB (room tone); beds 20 dB under the speech 23–39 dB (all 108 flagged), 30 dB under
33–47 dB (about half the chord beds, 1–2 of 36 pink, 34–36 of 36 white flagged), 40 dB under
43–50 dB (none): a background within about 30 dB of the speech is flagged."""
QUIET_TONAL_PERSISTENCE_MUSIC = 0.6
"""Share of spectral peaks in the quietest quarter of frames that persist to the next frame
(castline.voices.ingest's cue, same threshold): chord beds 20–30 dB under the speech measured
0.66–0.96, pink and white noise there 0.00–0.47, the real reference with music 0.73."""
SUSTAINED_PEAK_MS = 400.0
"""A spectral peak that stays in the same 5.9 Hz bin (170 ms STFT) this long is a held note:
speech harmonics glide with the intonation and leave the bin sooner."""
SUSTAINED_TONE_FRACTION_MUSIC = 0.3
"""Share of audible frames carrying a held note: clean renders measured ≤ 0.15, clean real
references 0.00; speech over a chord bed 10 dB down ≥ 0.84, chords alone 1.0, the real reference
with music under the voice 0.58–0.79 (9 s pieces). Quieter beds are left to the pause cue."""
PEAK_PROMINENCE_DB = 15.0

CLIPPING_LEVEL = 0.999
CLIPPED_FRACTION_MAX = 0.0005
"""Share of samples at full scale or on a flat top at the chunk's peak: clean renders 0; driven
6 dB into the rails 0–0.001, 12 dB 0–0.014 (median 0.002), 20 dB 0.04–0.11."""
MIN_FLAT_TOP_SAMPLES = 3

SILENT_FRAME_DBFS = -50.0
MIN_AUDIBLE_FRACTION = 0.1
"""A chunk is silent when under 10 % of its 10 ms frames exceed −50 dBFS RMS: clean renders
measured 0.62–0.85 (word gaps and the silence engines leave at the ends make up the rest)."""

MAX_LOUDNESS_SPREAD_LU = 5.0
"""Spread (10th to 90th percentile) of one speaker's chunk loudness, LU. Stitching applies one
gain per speaker, so this spread is what the listener hears as the voice moving nearer and
further. Measured: heart 1.2–1.4 LU and joe 2.2–3.5 LU (20 and 12 sentences; piper's level
varies by sentence), the real references' 3 s pieces 1.3–4.7 LU (expressive reading). 4 LU
would flag natural human variation; 5 LU is above everything natural measured here."""


@dataclass(frozen=True)
class Finding:
    """One check's result: ``flag`` is ``None`` when it passed, else a short tag; ``value`` is
    what was measured and ``threshold`` what it was compared with (units in ``detail``)."""

    check: str
    flag: str | None
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class SpeakerLoudness:
    """A speaker's chunks: ``integrated_lufs``, the duration-weighted power mean of the chunks'
    integrated loudness (the level stitching brings each speaker to the common one; LUFS, mono as
    dual mono); ``chunk_lufs``, each chunk's (``-inf`` for silent chunks, left out of the spread);
    ``spread_lu`` and the ``finding`` on it."""

    speaker: str
    integrated_lufs: float
    chunk_lufs: tuple[float, ...]
    spread_lu: float
    finding: Finding


def frame_levels_db(audio: np.ndarray, sample_rate: int, frame_ms: float = FRAME_MS) -> np.ndarray:
    """RMS level (dBFS) of consecutive ``frame_ms`` frames (a partial last frame is dropped)."""
    frame = max(1, int(round(sample_rate * frame_ms / 1000)))
    count = audio.size // frame
    frames = np.asarray(audio[:count * frame], np.float64).reshape(count, frame)
    return 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)


def active_frames(levels_db: np.ndarray) -> np.ndarray:
    """Speech-active mask of 10 ms frame levels (see ``ACTIVE_RANGE_DB``, ``ACTIVE_FLOOR_DBFS``)."""
    if levels_db.size == 0:
        return np.zeros(0, bool)
    loud = float(np.percentile(levels_db, 95))
    return levels_db > max(loud - ACTIVE_RANGE_DB, ACTIVE_FLOOR_DBFS)


def speech_time_s(audio: np.ndarray, sample_rate: int, bridge_ms: float = SPEECH_PAUSE_BRIDGE_MS) -> float:
    """Seconds of speech: active 10 ms frames plus the gaps between them shorter than ``bridge_ms``."""
    active = active_frames(frame_levels_db(audio, sample_rate))
    gaps = _inner_gaps(active)
    bridged = sum(length for _, length in gaps if length * FRAME_MS < bridge_ms)
    return (int(active.sum()) + bridged) * FRAME_MS / 1000


def count_words(text: str) -> int:
    """Words in ``text``: runs of letters or digits, apostrophes inside a word allowed."""
    return len(WORD_PATTERN.findall(text))


def speech_rate_check(audio: np.ndarray, sample_rate: int, text: str,
                      words_per_minute_band: tuple[float, float] = WORDS_PER_MINUTE_BAND) -> Finding:
    """Words of ``text`` per minute of speech time (see ``speech_time_s``); flags "too-fast" or
    "too-slow" outside ``words_per_minute_band`` (set it per voice where a voice is brisker)."""
    low, high = words_per_minute_band
    words = count_words(text)
    seconds = speech_time_s(audio, sample_rate)
    if words < MIN_WORDS_FOR_RATE:
        return Finding("speech-rate", None, math.nan, high, f"{words} words: too few to judge the rate")
    if seconds <= 0:
        return Finding("speech-rate", "too-fast", math.inf, high, f"{words} words in no audible speech")
    rate = words / seconds * 60
    detail = f"{words} words in {seconds:.2f} s of speech: {rate:.0f} wpm (band {low:.0f}–{high:.0f})"
    if rate > high:
        return Finding("speech-rate", "too-fast", rate, high, detail)
    if rate < low:
        return Finding("speech-rate", "too-slow", rate, low, detail)
    return Finding("speech-rate", None, rate, high, detail)


def long_silence_check(audio: np.ndarray, sample_rate: int, max_silence_ms: float = MAX_SILENCE_MS) -> Finding:
    """Longest pause (ms) between the first and last speech frames; "long-silence" above
    ``max_silence_ms``. Leading and trailing silence are the trimmer's business, not this check's."""
    gaps = _inner_gaps(active_frames(frame_levels_db(audio, sample_rate)))
    start, length = max(gaps, key=lambda gap: gap[1]) if gaps else (0, 0)
    longest_ms = length * FRAME_MS
    detail = (f"longest pause {longest_ms:.0f} ms at {start * FRAME_MS / 1000:.2f} s" if gaps
              else "no pause inside the speech")
    return Finding("long-silence", "long-silence" if longest_ms > max_silence_ms else None,
                   longest_ms, max_silence_ms, detail)


def non_speech_energy_check(audio: np.ndarray, sample_rate: int,
                            min_speech_to_pause_db: float = SPEECH_TO_PAUSE_MIN_DB) -> Finding:
    """Music or noise where a render should have silence between words.

    ``value``: speech-to-pause level difference (dB, ``speech_to_pause_db``).
    Flags "music" when notes are held (``sustained_tone_fraction``) or when the pauses are
    loud and their spectral peaks persist (tonal persistence, as castline.voices.ingest measures
    reference clips); "noise" when the pauses are loud without that tonal cue.
    """
    gap_db = speech_to_pause_db(audio, sample_rate)
    sustained = sustained_tone_fraction(audio, sample_rate)
    detail = (f"pauses {gap_db:.1f} dB under speech (min {min_speech_to_pause_db:.0f}); held-note frames "
              f"{sustained:.2f} (max {SUSTAINED_TONE_FRACTION_MUSIC})")
    if sustained > SUSTAINED_TONE_FRACTION_MUSIC:
        flag = "music"
    elif gap_db < min_speech_to_pause_db:
        # Only loud pauses need telling music from noise: the cue is measured only then.
        persistence = quiet_tonal_persistence(audio, sample_rate)
        detail += f"; quiet-frame tonal persistence {persistence:.2f}"
        flag = "music" if persistence >= QUIET_TONAL_PERSISTENCE_MUSIC else "noise"
    else:
        flag = None
    return Finding("non-speech-energy", flag, gap_db, min_speech_to_pause_db, detail)


def speech_to_pause_db(audio: np.ndarray, sample_rate: int) -> float:
    """90th minus 2nd percentile of 20 ms frame levels (dB); ``nan`` under two frames."""
    levels = frame_levels_db(audio, sample_rate, frame_ms=20.0)
    if levels.size < 2:
        return math.nan
    pause, speech = np.percentile(levels, [2, 90])
    return float(speech - pause)


def quiet_tonal_persistence(audio: np.ndarray, sample_rate: int) -> float:
    """castline.voices.ingest's music cue: share of prominent spectral peaks (100–4000 Hz) in the
    quietest quarter of frames that are peaks in the next frame too (0…1)."""
    from castline.voices.ingest import analyse_reference

    if audio.size < 4096:
        return 0.0
    return float(analyse_reference(np.asarray(audio, np.float32), sample_rate)[3])


def sustained_tone_fraction(audio: np.ndarray, sample_rate: int, sustain_ms: float = SUSTAINED_PEAK_MS) -> float:
    """Share of audible STFT frames (170 ms, hop 43 ms) holding a spectral peak in 100–4000 Hz
    that stays in its bin for at least ``sustain_ms``: held notes of music, which speech lacks."""
    nperseg = _power_of_two(sample_rate * 0.17)
    hop = nperseg // 4
    if audio.size < nperseg * 2:
        return 0.0
    freqs, power = _power_spectrogram(audio, sample_rate, nperseg, hop)
    band = (freqs >= 100) & (freqs <= 4000)
    frame_db = 10 * np.log10(np.sum(power + 1e-20, axis=0))
    audible = frame_db > max(float(np.max(frame_db)) - 50.0, -100.0)
    sub = 10 * np.log10(power[band] + 1e-20)
    local_max = np.zeros_like(sub, bool)
    local_max[1:-1] = (sub[1:-1] >= sub[:-2]) & (sub[1:-1] >= sub[2:])
    peaks = local_max & (sub > np.median(sub, axis=0) + PEAK_PROMINENCE_DB) & audible
    frames_needed = max(2, int(math.ceil(sustain_ms / 1000 * sample_rate / hop)))
    held = np.any(peaks & (_run_lengths(peaks) >= frames_needed), axis=0)
    count = int(audible.sum())
    return float(np.sum(held & audible) / count) if count else 0.0


def _power_spectrogram(audio: np.ndarray, sample_rate: int, nperseg: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """``(freqs_hz, power)``: |STFT|², shape ``(nperseg // 2 + 1, frames)``, periodic Hann frames of
    ``nperseg`` every ``hop`` samples, no padding; scaled as ``scipy.signal.stft``'s default
    ('spectrum': divided by the window's sum), which it equals to rounding.

    Framed here rather than by ``scipy.signal.stft``: importing ``scipy.signal`` would cost every
    render with QA about 48 MB and 0.9 CPU-s, for this alone (resampling no longer needs it)."""
    samples = np.asarray(audio, np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)
    frames = np.lib.stride_tricks.sliding_window_view(samples, nperseg)[::hop]
    spectrum = np.fft.rfft(frames * (window / window.sum()), axis=1)
    power = np.square(spectrum.real)
    power += np.square(spectrum.imag)
    return np.fft.rfftfreq(nperseg, 1.0 / sample_rate), power.T


def clipping_check(audio: np.ndarray, sample_rate: int, max_fraction: float = CLIPPED_FRACTION_MAX) -> Finding:
    """Share of samples at full scale (|x| ≥ 0.999) or on flat tops (≥ 3 equal samples at the
    chunk's own peak, as left by clipping followed by a gain change); "clipped" above
    ``max_fraction``."""
    magnitude = np.abs(np.asarray(audio, np.float32))
    if magnitude.size == 0:
        return Finding("clipping", None, 0.0, max_fraction, "empty chunk")
    peak = float(magnitude.max())
    clipped = magnitude >= CLIPPING_LEVEL
    if peak > 0:
        at_peak = magnitude >= peak * (1 - 1e-6)
        for start, length in _runs(at_peak):
            if length >= MIN_FLAT_TOP_SAMPLES:
                clipped[start:start + length] = True
    fraction = float(clipped.mean())
    peak_dbfs = 20 * math.log10(peak) if peak else -math.inf
    detail = f"{int(clipped.sum())} clipped samples ({fraction:.4%}), peak {peak_dbfs:.2f} dBFS"
    return Finding("clipping", "clipped" if fraction > max_fraction else None, fraction, max_fraction, detail)


def silence_check(audio: np.ndarray, sample_rate: int, min_audible_fraction: float = MIN_AUDIBLE_FRACTION) -> Finding:
    """Share of 10 ms frames above −50 dBFS RMS; "silent" under ``min_audible_fraction``."""
    levels = frame_levels_db(audio, sample_rate)
    fraction = float(np.mean(levels > SILENT_FRAME_DBFS)) if levels.size else 0.0
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    detail = (f"{fraction:.1%} of {audio.size / sample_rate:.2f} s above {SILENT_FRAME_DBFS:.0f} dBFS; "
              f"peak {20 * math.log10(peak) if peak else -math.inf:.1f} dBFS")
    return Finding("silence", "silent" if fraction < min_audible_fraction else None, fraction,
                   min_audible_fraction, detail)


def chunk_checks(audio: np.ndarray, sample_rate: int, text: str | None = None, *,
                 words_per_minute_band: tuple[float, float] = WORDS_PER_MINUTE_BAND) -> list[Finding]:
    """Every per-chunk check (speech rate only with ``text``); a silent chunk gets only ``silence_check``."""
    silent = silence_check(audio, sample_rate)
    if silent.flag:
        return [silent]
    findings = [silent, clipping_check(audio, sample_rate), long_silence_check(audio, sample_rate),
                non_speech_energy_check(audio, sample_rate)]
    if text is not None:
        findings.append(speech_rate_check(audio, sample_rate, text, words_per_minute_band))
    return findings


def seam_findings(audio: np.ndarray, joins: Sequence[int], sample_rate: int,
                  threshold_db: float = CLICK_THRESHOLD_DB) -> list[Finding]:
    """One finding per join (sample index into ``audio``): the JUMP of castline.dsp.seams (dB,
    ``-inf`` when nothing audible moves there); "click" above ``threshold_db``."""
    findings = []
    for join in joins:
        jump = seam_jump_db(audio, int(join), sample_rate)
        findings.append(Finding("seam", "click" if jump > threshold_db else None, jump, threshold_db,
                                f"join at sample {int(join)} ({int(join) / sample_rate:.3f} s): jump {jump:.1f} dB"))
    return findings


def loudness_spread(chunks_by_speaker: Mapping[str, Sequence[np.ndarray]], sample_rate: int = PROJECT_SAMPLE_RATE,
                    max_spread_lu: float = MAX_LOUDNESS_SPREAD_LU) -> list[SpeakerLoudness]:
    """Per speaker: the duration-weighted level of their chunks, each chunk's integrated loudness
    and the spread (LU,
    10th to 90th percentile of the chunks'; max − min under five chunks); "loudness-spread" above
    ``max_spread_lu``."""
    results = []
    for speaker, chunks in chunks_by_speaker.items():
        chunk_lufs = tuple(measure_loudness(np.asarray(chunk, np.float32), sample_rate).integrated_lufs
                           for chunk in chunks)
        finite = np.array([value for value in chunk_lufs if math.isfinite(value)])
        if finite.size >= 5:
            low, high = np.percentile(finite, [10, 90])
            spread = float(high - low)
        else:
            spread = float(finite.max() - finite.min()) if finite.size else 0.0
        total = _energy_weighted_lufs(chunks, chunk_lufs)
        quietest, loudest = (float(finite.min()), float(finite.max())) if finite.size else (-math.inf, -math.inf)
        detail = f"{finite.size} audible chunks, {total:.1f} LUFS overall, {quietest:.1f} to {loudest:.1f} LUFS"
        finding = Finding("loudness-spread", "loudness-spread" if spread > max_spread_lu else None,
                          spread, max_spread_lu, f"{speaker}: {detail}")
        results.append(SpeakerLoudness(speaker, total, chunk_lufs, spread, finding))
    return results


def _energy_weighted_lufs(chunks: Sequence[np.ndarray], chunk_lufs: Sequence[float]) -> float:
    """Duration-weighted power mean of the chunks' integrated loudness (LUFS), like stitching's
    per-speaker level."""
    energy = duration = 0.0
    for chunk, lufs in zip(chunks, chunk_lufs):
        if math.isfinite(lufs):
            energy += chunk.size * 10 ** (lufs / 10)
            duration += chunk.size
    return 10 * math.log10(energy / duration) if duration else -math.inf


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of True in a 1-D boolean array."""
    padded = np.concatenate([[False], mask, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(start), int(end - start)) for start, end in zip(edges[::2], edges[1::2])]


def _run_lengths(mask: np.ndarray) -> np.ndarray:
    """For a ``(rows, frames)`` boolean array, the length of the run of True each element is in
    (0 where False)."""
    forward = np.zeros(mask.shape, np.int32)
    backward = np.zeros(mask.shape, np.int32)
    for frame in range(mask.shape[1]):
        forward[:, frame] = (forward[:, frame - 1] + 1 if frame else 1) * mask[:, frame]
    for frame in range(mask.shape[1] - 1, -1, -1):
        backward[:, frame] = (backward[:, frame + 1] + 1 if frame + 1 < mask.shape[1] else 1) * mask[:, frame]
    return np.where(mask, forward + backward - 1, 0)


def _inner_gaps(active: np.ndarray) -> list[tuple[int, int]]:
    """``(start, length)`` in frames of each inactive run between the first and last active frame."""
    indices = np.flatnonzero(active)
    if indices.size < 2:
        return []
    inner = ~active[indices[0]:indices[-1] + 1]
    return [(int(indices[0] + start), length) for start, length in _runs(inner)]


def _power_of_two(samples: float) -> int:
    return 1 << int(round(math.log2(max(samples, 2.0))))
