"""Classical speaker embeddings and per-episode speaker consistency checks.

No learned model: the embedding is built from MFCC statistics (a mel filterbank and DCT computed
here), a YIN pitch tracker's F0 statistics and the spectral centroid, all on active frames only,
standardised by fixed background statistics and L2-normalised, so cosine similarity compares
voices. Everything runs at 16 kHz over 80–7600 Hz, so 16 kHz reference clips and 24 kHz renders
are measured in the same band. ``bench/speaker_separation.py`` measures how well it separates
voices and fits the background constants below.
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
"""c1..c20 (c0, the level, is dropped). The bench measured 16–24 coefficients within 0.01 AUC."""
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

# Weight of each feature group in the embedding (the group's share of the squared norm before
# normalisation). Measured on the six real references (3 s segments): the active-frame MFCC means
# alone give AUC 0.935, adding the MFCC standard deviations, delta spread, F0 and centroid 0.950;
# the CMN'd statistics alone (means removed) only 0.81, so no CMN.
GROUP_WEIGHTS = {"mfcc_mean": 2.0, "mfcc_std": 1.0, "delta_std": 0.5, "f0": 1.0, "centroid": 0.5}
_GROUP_SIZES = {"mfcc_mean": MFCC_COUNT, "mfcc_std": MFCC_COUNT, "delta_std": MFCC_COUNT, "f0": 2, "centroid": 1}
EMBEDDING_SIZE = sum(_GROUP_SIZES.values())

# Background statistics (per raw feature): mean of the per-speaker means and the pooled standard
# deviation over 3 s segments of eight speakers (the six VibeVoice demo references, hibari
# 'heart' and piper 'joe'), from ``bench/speaker_separation.py --fit-background``. They only
# centre and scale the features; fitting them on the real references alone or on the two TTS
# voices alone changed the AUCs by under 0.01.
BACKGROUND_MEAN: tuple[float, ...] = (
    -0.73499, -1.6937, 1.5608, -1.5615, -0.34925, -1.1621, -0.23932, -0.77655, -0.28459, -0.094108,
    -0.24254, 0.10898, -0.030086, -0.29949, -0.50534, -0.19469, -0.54491, -0.47081, -0.6103, -0.39728,
    9.4129, 4.7428, 4.3813, 3.1781, 2.289, 2.1892, 1.9421, 1.8947, 1.7482, 1.4656,
    1.4442, 1.3596, 1.3029, 1.2359, 1.2364, 1.2559, 1.1465, 1.1368, 1.1012, 1.0538,
    8.2168, 4.351, 3.6056, 2.9526, 2.2732, 2.1727, 1.9396, 1.9262, 1.7964, 1.5446,
    1.543, 1.434, 1.3595, 1.3503, 1.3056, 1.2541, 1.1935, 1.1588, 1.1389, 1.0908,
    7.3683, 0.32242, 10.827,
)
BACKGROUND_SCALE: tuple[float, ...] = (
    1.8083, 2.1898, 1.8048, 1.2338, 0.90368, 0.96189, 1.0824, 0.94505, 0.80749, 0.5922,
    0.62217, 0.52017, 0.50832, 0.60005, 0.34168, 0.47232, 0.51934, 0.34883, 0.50508, 0.33518,
    2.0164, 0.94804, 0.86174, 0.69399, 0.43318, 0.37268, 0.41499, 0.37191, 0.39732, 0.27392,
    0.22503, 0.1915, 0.21605, 0.25165, 0.21169, 0.24197, 0.24426, 0.2927, 0.28197, 0.26668,
    1.7223, 0.8561, 0.53217, 0.49152, 0.39598, 0.25666, 0.3369, 0.24526, 0.32907, 0.24278,
    0.21479, 0.16033, 0.21235, 0.23991, 0.19431, 0.17544, 0.19217, 0.18643, 0.22421, 0.22586,
    0.48187, 0.12002, 0.2831,
)

WRONG_SPEAKER_MARGIN = 0.0
"""A chunk whose cosine to another speaker's centroid exceeds that to its own centroid by more
than this is flagged "wrong-speaker" (no margin: any chunk nearer another voice is suspect)."""
OUTLIER_Z = 3.5
"""Modified z-score (Iglewicz & Hoaglin) of a chunk's similarity to its own centroid below −3.5
flags "speaker-outlier"."""
MIN_SIMILARITY_SPREAD = 0.05
"""Floor (cosine) on the robust spread of a speaker's chunk similarities, so a voice that renders
very consistently does not turn ordinary sentence-to-sentence variation into outliers."""
MIN_CHUNKS_FOR_STATS = 4
DRIFT_MIN_CHUNKS = 8
DRIFT_ANCHOR_MAX_CHUNKS = 8
DRIFT_DROP = 0.25
""""drift" when the last quarter's mean similarity to the first chunks' centroid is more than
0.25 (cosine) below the first quarter's."""

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
    of their deltas (±2 frames), F0 median and interquartile range (log2 Hz, voiced frames; the
    background mean when fewer than 10 frames are voiced), median log2 spectral centroid (Hz).
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
        q25, median, q75 = np.percentile(log_f0, [25, 50, 75])
        f0_stats = np.array([median, q75 - q25])
    else:
        offset = 3 * MFCC_COUNT
        f0_stats = (np.asarray(BACKGROUND_MEAN[offset:offset + 2], np.float64) if BACKGROUND_MEAN
                    else np.array([math.log2(160.0), 0.2]))
    return np.concatenate([coefficients.mean(axis=0), coefficients.std(axis=0), delta.std(axis=0),
                           f0_stats, [float(np.median(np.log2(centroid_hz[active] + 1.0)))]])


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
    mfcc, centroid = [], []
    # blocks bound memory for long clips: a spectrum is 257 values per 10 ms frame
    for start in range(0, emphasised_frames.shape[0], _BLOCK_FRAMES):
        spectrum = np.abs(np.fft.rfft(emphasised_frames[start:start + _BLOCK_FRAMES] * window, FFT_SIZE)) ** 2
        mfcc.append(np.log(spectrum @ bank.T + 1e-10) @ dct.T)
        centroid.append(spectrum @ freqs / (spectrum.sum(axis=1) + 1e-20))
    level_db = 10 * np.log10(np.mean(raw_frames * raw_frames, axis=1) + 1e-12)
    if not mfcc:
        return np.zeros((0, MFCC_COUNT)), level_db, np.zeros(0)
    return np.concatenate(mfcc), level_db, np.concatenate(centroid)


def pitch_track(x: np.ndarray, sample_rate: int = PITCH_RATE_HZ) -> tuple[np.ndarray, np.ndarray]:
    """YIN F0 (Hz) and a voiced mask, one value per 10 ms hop (aligned with the spectral frames).

    Cumulative-mean-normalised difference over a 25 ms window, lags for 60–400 Hz; the first dip
    under ``YIN_THRESHOLD`` (its local minimum, parabolically interpolated) is the period.
    """
    window = int(sample_rate * FRAME_MS / 1000)
    hop = int(sample_rate * HOP_MS / 1000)
    max_lag = int(math.ceil(sample_rate / F0_LOW_HZ))
    min_lag = int(sample_rate / F0_HIGH_HZ)
    x64 = np.asarray(x, np.float64)
    padded = np.concatenate([x64, np.zeros(max_lag)])
    frames = _frame_view(padded, window + max_lag, hop)
    count = max(0, 1 + (x64.size - window) // hop) if x64.size >= window else 0
    frames = frames[:count]
    if count == 0:
        return np.zeros(0), np.zeros(0, bool)
    frames = frames - frames.mean(axis=1, keepdims=True)
    fft_size = 1 << int(math.ceil(math.log2(window + max_lag + window)))
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
    ``drop`` = first − last; ``flag`` is "drift" when ``drop`` > ``DRIFT_DROP``, ``None``
    otherwise (also when the speaker has under ``DRIFT_MIN_CHUNKS`` chunks).
    """

    speaker: str
    chunks: int
    anchor_chunks: int
    similarities: tuple[float, ...]
    slope_per_episode: float
    first_quarter: float
    last_quarter: float
    drop: float
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
    """One ``DriftReport`` per speaker (in order of first appearance) for ``(speaker, audio)`` chunks in episode order."""
    return drift_from_embeddings(embed_chunks(chunks, sample_rate))


def profile_stats(embedded: Sequence[tuple[str, np.ndarray]]) -> dict[str, SpeakerProfileStats]:
    """Centroid and similarity spread of each speaker's ``(speaker, embedding)`` chunks."""
    stats = {}
    for name, rows in _by_speaker(embedded).items():
        vectors = np.array([embedded[i][1] for i in rows], np.float64)
        own = _leave_one_out_similarities(vectors)
        finite = own[np.isfinite(own) & np.any(vectors != 0, axis=1)]
        median = float(np.median(finite)) if finite.size else math.nan
        spread = max(1.4826 * float(np.median(np.abs(finite - median))) if finite.size else 0.0, MIN_SIMILARITY_SPREAD)
        stats[name] = SpeakerProfileStats(speaker=name, centroid=_centroid(vectors), chunks=len(rows),
                                          median_similarity=median, similarity_spread=spread)
    return stats


def check_embeddings(embedded: Sequence[tuple[str, np.ndarray]],
                     references: Mapping[str, np.ndarray] | None = None, *,
                     wrong_speaker_margin: float = WRONG_SPEAKER_MARGIN,
                     outlier_z: float = OUTLIER_Z) -> list[SpeakerFinding]:
    """``speaker_checks`` on precomputed ``(speaker, embedding)`` chunks and reference embeddings."""
    references = dict(references or {})
    stats = profile_stats(embedded)
    groups = _by_speaker(embedded)
    own_similarity = np.full(len(embedded), math.nan)
    for name, rows in groups.items():
        own_similarity[rows] = _leave_one_out_similarities(np.array([embedded[i][1] for i in rows], np.float64))
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
    """``drift_report`` on precomputed ``(speaker, embedding)`` chunks in episode order."""
    reports = []
    for name, rows in _by_speaker(embedded).items():
        vectors = np.array([embedded[i][1] for i in rows], np.float64)
        count = len(rows)
        anchor = int(min(DRIFT_ANCHOR_MAX_CHUNKS, max(2, count // 4)))
        if count < DRIFT_MIN_CHUNKS:
            reports.append(DriftReport(name, count, min(anchor, count), (), math.nan, math.nan, math.nan,
                                       math.nan, None))
            continue
        anchor_sum = vectors[:anchor].sum(axis=0)
        sims = np.array([similarity(vector, anchor_sum - vector if i < anchor else anchor_sum)
                         for i, vector in enumerate(vectors)])
        quarter = int(math.ceil(count / 4))
        first, last = float(np.mean(sims[:quarter])), float(np.mean(sims[-quarter:]))
        position = np.linspace(0.0, 1.0, count)
        slope = float(np.polyfit(position, sims, 1)[0])
        drop = first - last
        reports.append(DriftReport(name, count, anchor, tuple(float(v) for v in sims), slope, first, last, drop,
                                   "drift" if drop > drop_threshold else None))
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
