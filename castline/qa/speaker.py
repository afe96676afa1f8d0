"""Classical speaker embeddings and per-episode speaker consistency checks.

No learned model: the embedding is built from MFCC statistics (a mel filterbank and DCT computed
here), the median F0 of a YIN pitch tracker and the spectral centroid, all on active frames only,
standardised by fixed background statistics and L2-normalised, so cosine similarity compares
voices. Everything runs at 16 kHz over 80–7600 Hz, so 16 kHz reference clips and 24 kHz renders
are measured in the same band. ``bench/speaker_separation.py`` measures how well it separates
voices (heart vs joe sentences: AUC 1.000; six real voices in 3 s pieces: 0.949, where one pair,
Maya and Xinran, is at chance and every other pair ≥ 0.95) and fits the background constants.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from castline.audio.resample import resample

ANALYSIS_RATE_HZ = 16_000
PITCH_RATE_HZ = 8_000
FRAME_MS = 25.0
HOP_MS = 10.0
FFT_SIZE = 512
MEL_BANDS = 40
MEL_LOW_HZ = 80.0
MEL_HIGH_HZ = 7_600.0
MFCC_COUNT = 20
"""c1..c20 (c0, the level, is dropped). An exploratory run measured 12–30 coefficients within
0.015 AUC of each other on the real references."""
PRE_EMPHASIS = 0.97
ACTIVE_RANGE_DB = 35.0
"""A frame is active within 35 dB of the chunk's loudest frames (95th percentile): keeps the
weak consonants of clean renders while dropping their digital-silence pauses."""
ACTIVE_FLOOR_DBFS = -60.0
F0_LOW_HZ = 60.0
F0_HIGH_HZ = 400.0
YIN_THRESHOLD = 0.2
"""Cumulative-mean-normalised difference below which a frame is voiced (de Cheveigné & Kawahara
2002 use 0.1–0.2; 0.2 keeps breathy female voices)."""
MIN_ACTIVE_FRAMES = 30
"""Fewer than 30 active 10 ms frames (0.3 s of speech) gives no embedding (zeros)."""
MIN_VOICED_FRAMES = 10
_BLOCK_FRAMES = 2_048

# Weight of each feature group (its share of the norm before normalisation). Measured with
# bench/speaker_separation.py on the six real references (3 s segments): active-frame MFCC means
# alone AUC 0.935; with MFCC standard deviations, delta spread, median F0 and centroid 0.95.
# Without CMN: the CMN'd statistics (means removed) alone gave 0.81. The F0 interquartile range
# (intonation) lowered the real AUC by 0.015 and made the most monotone clean TTS sentence an
# outlier, so F0 enters by its median only.
GROUP_WEIGHTS = {"mfcc_mean": 2.0, "mfcc_std": 1.0, "delta_std": 0.5, "f0": 1.0, "centroid": 0.5}
_GROUP_SIZES = {"mfcc_mean": MFCC_COUNT, "mfcc_std": MFCC_COUNT, "delta_std": MFCC_COUNT, "f0": 1, "centroid": 1}
EMBEDDING_SIZE = sum(_GROUP_SIZES.values())

# Background statistics (per raw feature): the mean of the per-speaker means, and the RMS
# deviation from it with every speaker weighted equally, over eight speakers (the six VibeVoice
# demo references in 3 s pieces, 20 sentences each of hibari 'heart' and piper 'joe'), from
# ``bench/speaker_separation.py --fit-background``. They only centre and scale the features:
# fitting them on the real references alone or on the two TTS voices alone moved the real AUC by
# under 0.004 and left heart vs joe at 1.000.
BACKGROUND_MEAN: tuple[float, ...] = (
    -0.74789, -1.6972, 1.5538, -1.5616, -0.34687, -1.1624, -0.24338, -0.77403, -0.28189, -0.090941,
    -0.24152, 0.10675, -0.029947, -0.29871, -0.50616, -0.19659, -0.54793, -0.46986, -0.60888, -0.39767,
    9.4147, 4.7363, 4.377, 3.1809, 2.2857, 2.1919, 1.9435, 1.8904, 1.7482, 1.4629,
    1.4464, 1.3595, 1.303, 1.2382, 1.2379, 1.2543, 1.1451, 1.1359, 1.1009, 1.0554,
    8.2181, 4.3505, 3.6096, 2.9593, 2.2687, 2.1732, 1.9415, 1.9233, 1.7958, 1.5439,
    1.5453, 1.4375, 1.3624, 1.3488, 1.3061, 1.2558, 1.1902, 1.1577, 1.1398, 1.0918,
    7.37, 10.826,
)
BACKGROUND_SCALE: tuple[float, ...] = (
    1.8096, 2.1873, 1.8073, 1.2369, 0.90069, 0.95866, 1.087, 0.94312, 0.8118, 0.58641,
    0.62148, 0.52384, 0.50912, 0.60013, 0.34025, 0.4735, 0.5151, 0.34871, 0.50644, 0.335,
    2.0188, 0.95232, 0.86438, 0.69875, 0.43208, 0.37056, 0.41608, 0.37116, 0.39664, 0.27274,
    0.22692, 0.18987, 0.21796, 0.25142, 0.21048, 0.24451, 0.24513, 0.29342, 0.28246, 0.2652,
    1.7242, 0.85644, 0.53096, 0.49602, 0.39073, 0.25744, 0.34052, 0.2445, 0.32702, 0.24319,
    0.21324, 0.16296, 0.21665, 0.23941, 0.19219, 0.17555, 0.19348, 0.18802, 0.22377, 0.22525,
    0.47845, 0.28777,
)

WRONG_SPEAKER_MARGIN = 0.0
"""A chunk whose cosine to another speaker's centroid exceeds that to its own centroid by more
than this is flagged "wrong-speaker". Leave-one-out, every heart and joe sentence was nearer its
own centroid by ≥ 0.89; among the real voices only Maya and Xinran, whom the embedding cannot
tell apart, were ever nearer another speaker (6 of 46 pieces)."""
OUTLIER_Z = 3.5
"""Modified z-score (Iglewicz & Hoaglin) of a chunk's similarity to its own centroid below −3.5
flags "speaker-outlier": clean voices' lowest was −2.25 (real) and −2.01 (renders); a joe
sentence among heart's scored −14."""
MIN_OUTLIER_SPEECH_S = 1.0
"""A chunk shorter than this (s) is never called a "speaker-outlier": one or two words give too
little speech for a stable embedding. On the 101-minute, 4-speaker demo script the only chunk
flagged was heart's 0.49 s "Frank?", a clean take any listener passes."""
MIN_SIMILARITY_SPREAD = 0.08
"""Floor (cosine) on the robust spread (1.4826 × MAD) of a speaker's chunk similarities. Clean
renders measured 0.03–0.04, yet their least typical sentence sat 0.16 below the median: without
the floor, very consistent voices turn ordinary sentence-to-sentence variation into outliers.
Real voices (3 s pieces) measured 0.05–0.21."""
MIN_CHUNKS_FOR_STATS = 4
DRIFT_MIN_CHUNKS = 8
DRIFT_ANCHOR_MIN_CHUNKS = 3
"""The anchor's chunks are scored against the centroid of the other anchor chunks: with only two,
one unusual chunk halves the baseline and hides drift."""
DRIFT_ANCHOR_MAX_CHUNKS = 8
DRIFT_DROP = 0.25
""""drift" needs the last quarter's mean similarity to the first chunks' centroid more than 0.25
(cosine) below the first quarter's. Clean heart/joe episodes (20 sentences, 300 random orders)
reached 0.14; a last third in the other voice measured 1.16–1.17; the same voice played 8 %
faster (pitch and formants up) 0.35 (heart) and 0.19 (joe), 10 % faster 0.44 and 0.27. Real
voices cut into 3 s pieces (8–9 per speaker) are noisier: up to 0.52, so 0.7–12 % of random
orders of Carter, Maya and Xinran are flagged; episode chunks are longer and more numerous."""
DRIFT_SIGMAS = 3.0
"""...and more than 3 standard errors of the difference of two quarter means (from the robust
spread of the first half's similarities), for voices that vary more than the renders."""


def speaker_embedding(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """A float32 vector of ``EMBEDDING_SIZE``, L2-normalised, describing the voice in mono
    ``audio`` (full scale 1.0) at ``sample_rate`` Hz; compare two with ``similarity``.

    Audio with under 0.3 s of active speech gives the zero vector (similarity 0 to anything).
    """
    raw = raw_features(audio, sample_rate)
    if raw is None:
        return np.zeros(EMBEDDING_SIZE, np.float32)
    mean = np.asarray(BACKGROUND_MEAN, np.float64) if BACKGROUND_MEAN else np.zeros(EMBEDDING_SIZE)
    scale = np.asarray(BACKGROUND_SCALE, np.float64) if BACKGROUND_SCALE else np.ones(EMBEDDING_SIZE)
    vector = (raw - mean) / scale * _group_weights()
    norm = float(np.linalg.norm(vector))
    return (vector / norm).astype(np.float32) if norm > 0 else np.zeros(EMBEDDING_SIZE, np.float32)


def similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two embeddings (−1…1); 0.0 when either is the zero vector."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    norms = float(np.linalg.norm(a64) * np.linalg.norm(b64))
    return float(a64 @ b64 / norms) if norms > 0 else 0.0


def raw_features(audio: np.ndarray, sample_rate: int) -> np.ndarray | None:
    """Unnormalised feature vector (``EMBEDDING_SIZE`` float64), ``None`` without enough speech.

    Layout: MFCC c1..c20 means and standard deviations over active frames, standard deviations
    of their deltas (±2 frames), median F0 (log2 Hz, voiced frames; the background mean when
    fewer than 10 frames are voiced), median spectral centroid (log2 Hz).
    """
    signal = np.asarray(audio, np.float32)
    if signal.ndim != 1:
        raise ValueError(f"speaker_embedding takes mono audio, got shape {signal.shape}")
    x = resample(signal, sample_rate, ANALYSIS_RATE_HZ).astype(np.float64)
    if x.size:
        x = x - float(np.mean(x))
    mfcc, level_db, centroid_hz = _spectral_frames(x)
    if level_db.size == 0:
        return None
    loud = float(np.percentile(level_db, 95))
    active = level_db > max(loud - ACTIVE_RANGE_DB, ACTIVE_FLOOR_DBFS)
    if int(active.sum()) < MIN_ACTIVE_FRAMES:
        return None
    f0_hz, voiced = pitch_track(resample(x.astype(np.float32), ANALYSIS_RATE_HZ, PITCH_RATE_HZ))
    count = min(voiced.size, active.size)
    voiced = voiced[:count] & active[:count]
    coefficients = mfcc[active]
    delta = (mfcc[4:] - mfcc[:-4])[active[2:-2]] if mfcc.shape[0] > 4 else np.zeros((1, MFCC_COUNT))
    log_f0 = np.log2(f0_hz[:count][voiced])
    if log_f0.size >= MIN_VOICED_FRAMES:
        median_f0 = float(np.median(log_f0))
    else:
        median_f0 = BACKGROUND_MEAN[3 * MFCC_COUNT] if BACKGROUND_MEAN else math.log2(160.0)
    return np.concatenate([coefficients.mean(axis=0), coefficients.std(axis=0), delta.std(axis=0),
                           [median_f0, float(np.median(np.log2(centroid_hz[active] + 1.0)))]])


@functools.lru_cache(maxsize=1)
def _group_weights() -> np.ndarray:
    return np.concatenate([np.full(size, GROUP_WEIGHTS[name] / math.sqrt(size))
                           for name, size in _GROUP_SIZES.items()])


@functools.lru_cache(maxsize=1)
def _mel_filterbank() -> np.ndarray:
    """``(MEL_BANDS, FFT_SIZE // 2 + 1)`` triangular filters on the HTK mel scale."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)

    edges_hz = 700.0 * (10 ** (np.linspace(to_mel(MEL_LOW_HZ), to_mel(MEL_HIGH_HZ), MEL_BANDS + 2) / 2595.0) - 1)
    freqs = np.fft.rfftfreq(FFT_SIZE, 1.0 / ANALYSIS_RATE_HZ)
    bank = np.zeros((MEL_BANDS, freqs.size))
    for band in range(MEL_BANDS):
        low, centre, high = edges_hz[band:band + 3]
        bank[band] = np.clip(np.minimum((freqs - low) / (centre - low), (high - freqs) / (high - centre)), 0, None)
    return bank


@functools.lru_cache(maxsize=1)
def _dct_matrix() -> np.ndarray:
    """Orthonormal DCT-II rows 1..MFCC_COUNT over the mel bands."""
    bands = np.arange(MEL_BANDS)
    rows = np.arange(1, MFCC_COUNT + 1)[:, None]
    return math.sqrt(2.0 / MEL_BANDS) * np.cos(np.pi * rows * (2 * bands + 1) / (2 * MEL_BANDS))


def _frame_view(x: np.ndarray, length: int, hop: int) -> np.ndarray:
    if x.size < length:
        return np.zeros((0, length))
    return np.lib.stride_tricks.sliding_window_view(x, length)[::hop]


def _spectral_frames(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per 10 ms frame: MFCCs ``(frames, MFCC_COUNT)``, level (dBFS) and spectral centroid (Hz)."""
    length = int(ANALYSIS_RATE_HZ * FRAME_MS / 1000)
    hop = int(ANALYSIS_RATE_HZ * HOP_MS / 1000)
    emphasised = np.append(x[:1], x[1:] - PRE_EMPHASIS * x[:-1])
    raw_frames = _frame_view(x, length, hop)
    emphasised_frames = _frame_view(emphasised, length, hop)
    window = np.hamming(length)
    freqs = np.fft.rfftfreq(FFT_SIZE, 1.0 / ANALYSIS_RATE_HZ)
    bank, dct = _mel_filterbank(), _dct_matrix()
    mfcc, level_db, centroid = [], [], []
    # blocks bound memory for long clips: a spectrum is 257 values per 10 ms frame
    for start in range(0, emphasised_frames.shape[0], _BLOCK_FRAMES):
        block = slice(start, start + _BLOCK_FRAMES)
        spectrum = np.abs(np.fft.rfft(emphasised_frames[block] * window, FFT_SIZE)) ** 2
        mfcc.append(np.log(spectrum @ bank.T + 1e-10) @ dct.T)
        centroid.append(spectrum @ freqs / (spectrum.sum(axis=1) + 1e-20))
        level_db.append(10 * np.log10(np.mean(raw_frames[block] ** 2, axis=1) + 1e-12))
    if not mfcc:
        return np.zeros((0, MFCC_COUNT)), np.zeros(0), np.zeros(0)
    return np.concatenate(mfcc), np.concatenate(level_db), np.concatenate(centroid)


def pitch_track(x: np.ndarray, sample_rate: int = PITCH_RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 (Hz) and a voiced mask, one value per 10 ms hop (aligned with the spectral frames).

    Cumulative-mean-normalised difference over a 25 ms window, lags for 60–400 Hz; the first dip
    under ``YIN_THRESHOLD`` (its local minimum, parabolically interpolated) is the period.
    """
    window = int(sample_rate * FRAME_MS / 1000)
    hop = int(sample_rate * HOP_MS / 1000)
    max_lag = int(math.ceil(sample_rate / F0_LOW_HZ))
    x64 = np.asarray(x, np.float64)
    count = 1 + (x64.size - window) // hop if x64.size >= window else 0
    if count == 0:
        return np.zeros(0), np.zeros(0, bool)
    frames = _frame_view(np.concatenate([x64, np.zeros(max_lag)]), window + max_lag, hop)[:count]
    results = [_yin(frames[start:start + _BLOCK_FRAMES], window, max_lag, sample_rate)
               for start in range(0, count, _BLOCK_FRAMES)]
    return np.concatenate([f0 for f0, _ in results]), np.concatenate([voiced for _, voiced in results])


def _yin(frames: np.ndarray, window: int, max_lag: int, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """F0 (Hz) and voiced mask of ``(frames, window + max_lag)`` samples."""
    count = frames.shape[0]
    min_lag = int(sample_rate / F0_HIGH_HZ)
    frames = frames - frames.mean(axis=1, keepdims=True)
    # Lags 0..max_lag of a frame against its first ``window`` samples never reach past sample
    # window + max_lag - 1, so a transform that long has no wrap-around where it is read; the
    # next size made of 2, 3 and 5 is the fast one (360 at 8 kHz, where a power of two was 1024).
    fft_size = _smooth_size(window + max_lag)
    cross = np.fft.irfft(np.fft.rfft(frames, fft_size) * np.conj(np.fft.rfft(frames[:, :window], fft_size)),
                         fft_size)[:, :max_lag + 1]
    energy = np.concatenate([np.zeros((count, 1)), np.cumsum(frames * frames, axis=1)], axis=1)
    lagged_energy = energy[:, window:window + max_lag + 1] - energy[:, :max_lag + 1]
    difference = energy[:, window:window + 1] + lagged_energy - 2 * cross
    difference[:, 0] = 0.0
    running = np.cumsum(difference[:, 1:], axis=1) / np.arange(1, max_lag + 1)
    normalised = np.ones_like(difference)
    normalised[:, 1:] = difference[:, 1:] / np.maximum(running, 1e-12)
    search = normalised[:, min_lag:max_lag]
    below = search < YIN_THRESHOLD
    first = np.argmax(below, axis=1)
    lags = np.arange(search.shape[1])
    after = lags[None, :] >= first[:, None]
    left = np.cumsum(after & ~below, axis=1) > 0
    dip = np.where(after & ~left, search, np.inf)
    best = np.argmin(dip, axis=1) + min_lag
    voiced = below.any(axis=1)
    inner = np.clip(best, 1, max_lag - 1)
    rows = np.arange(count)
    before, at, past = normalised[rows, inner - 1], normalised[rows, inner], normalised[rows, inner + 1]
    curvature = before - 2 * at + past
    shift = np.where(np.abs(curvature) > 1e-12, 0.5 * (before - past) / np.where(curvature == 0, 1, curvature), 0.0)
    f0 = sample_rate / (inner + np.clip(shift, -1.0, 1.0))
    return f0, voiced & (f0 >= F0_LOW_HZ) & (f0 <= F0_HIGH_HZ)


def _smooth_size(minimum: int) -> int:
    """The smallest ``2**a * 3**b * 5**c`` at least ``minimum``: a size the FFT does fast."""
    from scipy.fft import next_fast_len

    return next_fast_len(minimum, real=True)


@dataclass(frozen=True)
class SpeakerFinding:
    """Speaker check of one chunk (similarities are cosines, −1…1).

    ``similarity_own``: to the robust centroid of the speaker's other chunks (``nan`` for a
    speaker's only chunk). ``nearest_other`` / ``similarity_other``: the closest other speaker's
    centroid (``None`` / ``nan`` with one speaker). ``similarity_reference``: to the speaker's
    reference clip (``nan`` without one). ``outlier_z``: modified z-score of ``similarity_own``
    among the speaker's chunks (``nan`` under ``MIN_CHUNKS_FOR_STATS`` chunks). ``flags``:
    "no-speech", "wrong-speaker", "reference-mismatch", "speaker-outlier".
    """

    index: int
    speaker: str
    similarity_own: float
    nearest_other: str | None
    similarity_other: float
    similarity_reference: float
    outlier_z: float
    flags: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class SpeakerProfileStats:
    """One speaker's chunks: ``centroid`` (unit vector, coordinate-wise median of the chunk
    embeddings), ``chunks`` (count), ``median_similarity`` and ``similarity_spread`` (cosine;
    the spread is 1.4826 × MAD, floored at ``MIN_SIMILARITY_SPREAD``)."""

    speaker: str
    centroid: np.ndarray
    chunks: int
    median_similarity: float
    similarity_spread: float


@dataclass(frozen=True)
class DriftReport:
    """Whether a speaker's voice moves away from how it started.

    Each chunk's cosine similarity to the centroid of the speaker's first ``anchor_chunks``
    chunks (leave-one-out for those); ``slope_per_episode``: least-squares change of that
    similarity from the speaker's first to last chunk (cosine); ``first_quarter`` /
    ``last_quarter``: mean similarity of the first / last quarter of the speaker's chunks;
    ``drop`` = first − last; ``threshold``: the larger of ``DRIFT_DROP`` and ``DRIFT_SIGMAS``
    standard errors of the drop; ``flag`` is "drift" when ``drop`` > ``threshold``, ``None``
    otherwise (also when the speaker has under ``DRIFT_MIN_CHUNKS`` chunks: values are ``nan``).
    """

    speaker: str
    chunks: int
    anchor_chunks: int
    similarities: tuple[float, ...]
    slope_per_episode: float
    first_quarter: float
    last_quarter: float
    drop: float
    threshold: float
    flag: str | None


def embed_chunks(chunks: Sequence[tuple[str, np.ndarray]], sample_rate: int) -> list[tuple[str, np.ndarray]]:
    """``(speaker, embedding)`` for each ``(speaker, audio)`` chunk at ``sample_rate`` Hz."""
    return [(name, speaker_embedding(audio, sample_rate)) for name, audio in chunks]


def speaker_checks(chunks: Sequence[tuple[str, np.ndarray]], sample_rate: int,
                   references: Mapping[str, np.ndarray] | None = None) -> list[SpeakerFinding]:
    """Per chunk (in order): is it the voice its speaker should have? ``chunks`` are
    ``(speaker, mono audio)`` and ``references`` optional reference clips by speaker, both at
    ``sample_rate`` Hz."""
    reference_embeddings = {name: speaker_embedding(audio, sample_rate) for name, audio in (references or {}).items()}
    return check_embeddings(embed_chunks(chunks, sample_rate), reference_embeddings)


def drift_report(chunks: Sequence[tuple[str, np.ndarray]], sample_rate: int) -> list[DriftReport]:
    """One ``DriftReport`` per speaker (in order of first appearance) for ``(speaker, audio)``
    chunks in episode order."""
    return drift_from_embeddings(embed_chunks(chunks, sample_rate))


def profile_stats(embedded: Sequence[tuple[str, np.ndarray]]) -> dict[str, SpeakerProfileStats]:
    """Centroid and similarity spread of each speaker's ``(speaker, embedding)`` chunks."""
    return _profiles(embedded)[0]


def _profiles(embedded: Sequence[tuple[str, np.ndarray]]) -> tuple[dict[str, SpeakerProfileStats], np.ndarray]:
    """Per-speaker stats, and each chunk's similarity to its speaker's leave-one-out centroid."""
    stats = {}
    own = np.full(len(embedded), math.nan)
    for name, rows in _by_speaker(embedded).items():
        vectors = np.array([embedded[i][1] for i in rows], np.float64)
        own[rows] = _leave_one_out_similarities(vectors)
        finite = own[rows][np.isfinite(own[rows]) & np.any(vectors != 0, axis=1)]
        median = float(np.median(finite)) if finite.size else math.nan
        spread = 1.4826 * float(np.median(np.abs(finite - median))) if finite.size else 0.0
        stats[name] = SpeakerProfileStats(speaker=name, centroid=_centroid(vectors), chunks=len(rows),
                                          median_similarity=median,
                                          similarity_spread=max(spread, MIN_SIMILARITY_SPREAD))
    return stats, own


def check_embeddings(embedded: Sequence[tuple[str, np.ndarray]],
                     references: Mapping[str, np.ndarray] | None = None, *,
                     wrong_speaker_margin: float = WRONG_SPEAKER_MARGIN,
                     outlier_z: float = OUTLIER_Z) -> list[SpeakerFinding]:
    """``speaker_checks`` on precomputed ``(speaker, embedding)`` chunks and reference embeddings."""
    references = dict(references or {})
    stats, own_similarity = _profiles(embedded)
    findings = []
    for index, (name, vector) in enumerate(embedded):
        flags = []
        silent = not np.any(vector)
        own = float(own_similarity[index])
        others = {other: similarity(vector, profile.centroid) for other, profile in stats.items() if other != name}
        nearest = max(others, key=others.get) if others else None
        other_value = others[nearest] if nearest is not None else math.nan
        reference_value = similarity(vector, references[name]) if name in references else math.nan
        profile = stats[name]
        z = ((own - profile.median_similarity) / profile.similarity_spread
             if profile.chunks >= MIN_CHUNKS_FOR_STATS and math.isfinite(own) else math.nan)
        if silent:
            flags.append("no-speech")
        else:
            if nearest is not None and math.isfinite(own) and other_value > own + wrong_speaker_margin:
                flags.append("wrong-speaker")
            if name in references and len(references) > 1:
                by_reference = {other: similarity(vector, emb) for other, emb in references.items()}
                if max(by_reference, key=by_reference.get) != name:
                    flags.append("reference-mismatch")
            if math.isfinite(z) and z < -outlier_z:
                flags.append("speaker-outlier")
        findings.append(SpeakerFinding(index=index, speaker=name, similarity_own=own, nearest_other=nearest,
                                       similarity_other=other_value, similarity_reference=reference_value,
                                       outlier_z=z, flags=tuple(flags)))
    return findings


def drift_from_embeddings(embedded: Sequence[tuple[str, np.ndarray]], *,
                          drop_threshold: float = DRIFT_DROP) -> list[DriftReport]:
    """``drift_report`` on precomputed ``(speaker, embedding)`` chunks in episode order; chunks
    without speech (zero embeddings) are left out, so ``chunks`` counts the others."""
    reports = []
    for name, rows in _by_speaker(embedded).items():
        vectors = np.array([embedded[i][1] for i in rows], np.float64)
        vectors = vectors[np.any(vectors != 0, axis=1)]
        count = len(vectors)
        anchor = int(min(DRIFT_ANCHOR_MAX_CHUNKS, max(DRIFT_ANCHOR_MIN_CHUNKS, count // 4)))
        if count < DRIFT_MIN_CHUNKS:
            reports.append(DriftReport(name, count, min(anchor, count), (), math.nan, math.nan, math.nan,
                                       math.nan, math.nan, None))
            continue
        anchor_sum = vectors[:anchor].sum(axis=0)
        sims = np.array([similarity(vector, anchor_sum - vector if i < anchor else anchor_sum)
                         for i, vector in enumerate(vectors)])
        quarter = int(math.ceil(count / 4))
        first, last = float(np.mean(sims[:quarter])), float(np.mean(sims[-quarter:]))
        position = np.linspace(0.0, 1.0, count)
        slope = float(np.polyfit(position, sims, 1)[0])
        drop = first - last
        early = sims[:count // 2]
        spread = max(1.4826 * float(np.median(np.abs(early - np.median(early)))), MIN_SIMILARITY_SPREAD)
        threshold = max(drop_threshold, DRIFT_SIGMAS * spread * math.sqrt(2.0 / quarter))
        reports.append(DriftReport(name, count, anchor, tuple(float(v) for v in sims), slope, first, last, drop,
                                   threshold, "drift" if drop > threshold else None))
    return reports


def _by_speaker(embedded: Sequence[tuple[str, np.ndarray]]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for index, (name, _) in enumerate(embedded):
        groups.setdefault(name, []).append(index)
    return groups


def _centroid(vectors: np.ndarray) -> np.ndarray:
    """Coordinate-wise median, unit length: a few wrong chunks barely move it."""
    usable = vectors[np.any(vectors != 0, axis=1)]
    if usable.size == 0:
        return np.zeros(vectors.shape[1])
    median = np.median(usable, axis=0)
    norm = float(np.linalg.norm(median))
    return median / norm if norm > 0 else median


def _leave_one_out_similarities(vectors: np.ndarray) -> np.ndarray:
    """Each vector's cosine to the centroid of the others (``nan`` when there are none)."""
    if len(vectors) < 2:
        return np.full(len(vectors), math.nan)
    return np.array([similarity(vectors[i], _centroid(np.delete(vectors, i, axis=0))) for i in range(len(vectors))])
