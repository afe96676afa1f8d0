"""How well ``castline.qa.speaker`` tells voices apart: same- vs different-speaker similarity.

Two sets:
  * offline TTS: 20 sentences each from hibari 'heart' and piper 'joe' (different texts);
  * real speech: the six VibeVoice demo references, each cut into 3 s segments.

For each set: AUC and EER of pairwise cosine similarity (same speaker = positive), the min-gap
(lowest same-speaker minus highest different-speaker similarity; > 0 means a threshold separates
them perfectly), and leave-one-out identification (each segment against every speaker's centroid
of the other segments). Prints a table; asserts nothing.

    .venv/bin/python bench/speaker_separation.py                 # the table
    .venv/bin/python bench/speaker_separation.py --calibrate-checks  # + outlier / drift figures
    .venv/bin/python bench/speaker_separation.py --fit-background  # + constants for speaker.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.engines.registry import engine_class
from castline.qa import speaker
from castline.voices.profiles import load_voice_library

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "vibevoice-demo" / "voices"
SEGMENT_S = 3.0

SENTENCES = (
    "The harbour lights came on one by one as the fog rolled in.",
    "Nobody expected the quarterly numbers to look quite this strong.",
    "She packed three notebooks, a torch, and far too many pencils.",
    "If you listen closely, you can hear the train before you see it.",
    "Our next guest spent a decade mapping caves under the desert.",
    "The recipe calls for butter, but olive oil works just as well.",
    "Honestly, I think the second half of the season was better.",
    "A small change in temperature can shift the whole ecosystem.",
    "We recorded this episode in a cabin with no running water.",
    "The committee will vote on the proposal early next week.",
    "He said the bridge was safe, but nobody wanted to go first.",
    "Let's take a short break and come back to your question.",
    "Bees communicate the direction of flowers with a little dance.",
    "The museum reopened after two years of careful restoration.",
    "I have never seen a crowd that quiet during a final.",
    "Most of the letters were written by candlelight in winter.",
    "Could you explain why the model failed on that dataset?",
    "The old lighthouse keeper kept a diary for forty years.",
    "Prices at the market jumped after the storm damaged the crops.",
    "Thanks for joining us, and we'll see you next Thursday.",
    "The river froze solid for the first time in living memory.",
    "My grandmother taught me to play chess on a cardboard board.",
    "Engineers found a crack in the main support beam yesterday.",
    "Every spring the swallows return to the same old barn.",
    "Let me read you a short passage from the first chapter.",
    "The satellite sent back photographs of a dust storm on Mars.",
    "We argued for hours about the best way to cook rice.",
    "The orchestra tuned up while the audience found their seats.",
    "A good editor can make a messy draft sound effortless.",
    "The hiking trail climbs steeply for the first three miles.",
    "Some researchers think sleep helps us sort our memories.",
    "The ferry was cancelled, so we drove around the long way.",
    "I found an old radio in the attic, and it still works.",
    "The startup grew from two people to two hundred in a year.",
    "Rain is forecast for the weekend, so bring an umbrella.",
    "She won the chess tournament without losing a single game.",
    "The bakery on the corner sells out of bread by nine.",
    "Our producer says we have about five minutes left today.",
    "The ancient city was buried under ash for centuries.",
    "You might be surprised how much of this is pure luck.",
)


def render_tts(per_voice: int = 20) -> list[tuple[str, np.ndarray, int]]:
    """``(speaker, audio, rate)``: ``per_voice`` sentences from heart, the next ``per_voice`` from joe."""
    library = load_voice_library(REPO / "voices")
    out = []
    for offset, (engine_name, voice_id) in enumerate((("hibari", "heart"), ("piper", "joe"))):
        engine = engine_class(engine_name)()
        texts = SENTENCES[offset * per_voice:(offset + 1) * per_voice]
        rendered = engine.synthesize(list(texts), library.get(voice_id), list(range(len(texts))))
        rate = engine.capabilities.sample_rate
        out += [(voice_id, resample(audio, rate, PROJECT_SAMPLE_RATE), PROJECT_SAMPLE_RATE) for audio in rendered]
        engine.close()
    return out


def corpus_segments(seconds: float = SEGMENT_S) -> list[tuple[str, np.ndarray, int]]:
    """``(speaker, segment, rate)``: every real reference cut into ``seconds`` pieces (at its own rate)."""
    out = []
    for path in sorted(CORPUS.glob("*.wav")):
        audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        mono = audio.mean(axis=1)
        step = int(seconds * rate)
        out += [(path.stem, mono[start:start + step], rate) for start in range(0, mono.size - step + 1, step)]
    return out


def separation(embeddings: np.ndarray, labels: list[str]) -> dict[str, float]:
    """AUC, EER, min-gap and mean same/different similarity of all pairs; leave-one-out
    identification accuracy and worst margin (own centroid minus best other centroid)."""
    sims = embeddings @ embeddings.T
    first, second = np.triu_indices(len(labels), 1)
    same = np.array([labels[i] == labels[j] for i, j in zip(first, second)])
    values = sims[first, second]
    positive, negative = values[same], values[~same]
    auc = float(np.mean(positive[:, None] > negative[None, :]) + 0.5 * np.mean(positive[:, None] == negative[None, :]))
    eer = min(max(np.mean(positive < t), np.mean(negative >= t)) for t in np.unique(values))
    names = sorted(set(labels))
    correct, margins = 0, []
    for index, label in enumerate(labels):
        if labels.count(label) < 2:
            continue
        scores = {}
        for name in names:
            members = [j for j, other in enumerate(labels) if other == name and j != index]
            scores[name] = speaker.similarity(embeddings[index], embeddings[members].mean(axis=0))
        other = max(score for name, score in scores.items() if name != label)
        margins.append(scores[label] - other)
        correct += scores[label] > other
    return {"auc": auc, "eer": float(eer), "min_gap": float(positive.min() - negative.max()),
            "same_mean": float(positive.mean()), "diff_mean": float(negative.mean()),
            "loo_id": correct / len(margins), "worst_margin": float(min(margins))}


def pair_aucs(embeddings: np.ndarray, labels: list[str]) -> dict[tuple[str, str], float]:
    """For each pair of speakers: AUC of their same-speaker similarities against their cross ones."""
    sims = embeddings @ embeddings.T
    names = sorted(set(labels))
    out = {}
    for a_index, first in enumerate(names):
        for second in names[a_index + 1:]:
            rows_a = [i for i, who in enumerate(labels) if who == first]
            rows_b = [i for i, who in enumerate(labels) if who == second]
            same = np.concatenate([sims[np.ix_(rows, rows)][np.triu_indices(len(rows), 1)]
                                   for rows in (rows_a, rows_b)])
            cross = sims[np.ix_(rows_a, rows_b)].ravel()
            if same.size and cross.size:
                out[(first, second)] = float(np.mean(same[:, None] > cross[None, :]))
    return out


def calibrate_checks(tts: list[tuple[str, np.ndarray, int]], segments: list[tuple[str, np.ndarray, int]]) -> None:
    """The figures behind the outlier and drift thresholds of castline.qa.speaker."""
    rng = np.random.default_rng(0)
    items = tts + segments
    embedded: dict[str, list[np.ndarray]] = {}
    for name, audio, rate in items:
        embedded.setdefault(name, []).append(speaker.speaker_embedding(audio, rate))
    print("\nwithin-speaker similarity to the leave-one-out centroid (outlier statistics)")
    for name, vectors in embedded.items():
        labelled = [(name, vector) for vector in vectors]
        findings = speaker.check_embeddings(labelled)
        own = np.array([f.similarity_own for f in findings])
        median = float(np.median(own))
        raw_spread = 1.4826 * float(np.median(np.abs(own - median)))
        z = [f.outlier_z for f in findings if np.isfinite(f.outlier_z)]
        print(f"  {name:18s} n={len(vectors):2d} median {median:.3f} spread {raw_spread:.3f} "
              f"lowest z {min(z) if z else float('nan'):+.2f} flagged {sum(bool(f.flags) for f in findings)}")
    print("\ndrift drop on consistent sequences (300 random orders each; flagged share)")
    for name, vectors in embedded.items():
        if len(vectors) < speaker.DRIFT_MIN_CHUNKS:
            continue
        reports = [speaker.drift_from_embeddings([(name, vectors[i]) for i in rng.permutation(len(vectors))])[0]
                   for _ in range(300)]
        drops = np.array([r.drop for r in reports])
        print(f"  {name:18s} n={len(vectors):2d} p99 {np.percentile(drops, 99):+.3f} max {drops.max():+.3f} "
              f"flagged {np.mean([r.flag is not None for r in reports]):.3f}")

    def last_third(first: list[np.ndarray], then: list[np.ndarray]) -> speaker.DriftReport:
        keep = len(first) - len(first) // 3
        return speaker.drift_from_embeddings([("x", v) for v in first[:keep] + then[keep:len(first)]])[0]

    print("\ndrift: last third in another voice (drop; flagged above max(0.25, 3 standard errors))")
    names = [name for name, vectors in embedded.items() if len(vectors) >= speaker.DRIFT_MIN_CHUNKS]
    for first in names:
        cells = [f"{other[:8]} {last_third(embedded[first], embedded[other]).drop:+.2f}"
                 for other in names if other != first and len(embedded[other]) >= len(embedded[first])]
        print(f"  {first:18s} " + "  ".join(cells))
    print("\ndrift: last third of the same voice played faster (pitch and formants up)")
    for name in ("heart", "joe", "en-Frank_man", "en-Maya_woman"):
        sources = [(audio, rate) for who, audio, rate in items if who == name]
        cells = []
        for percent in (4, 6, 8, 10):
            shifted = [speaker.speaker_embedding(resample(audio, int(rate * (1 + percent / 100)), rate), rate)
                       for audio, rate in sources]
            report = last_third(embedded[name], shifted)
            cells.append(f"+{percent}% {report.drop:+.2f}{'*' if report.flag else ' '}")
        print(f"  {name:18s} " + "  ".join(cells) + "   (* = flagged)")


def fit_background(raws: list[tuple[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Mean of per-speaker means; RMS deviation from it with every speaker weighted equally."""
    names = sorted({name for name, _ in raws})
    per_speaker = {name: np.array([raw for who, raw in raws if who == name]) for name in names}
    mean = np.mean([rows.mean(axis=0) for rows in per_speaker.values()], axis=0)
    scale = np.sqrt(np.mean([((rows - mean) ** 2).mean(axis=0) for rows in per_speaker.values()], axis=0))
    return mean, scale


def _embed_with(raws, mean, scale) -> np.ndarray:
    vectors = (np.array([raw for _, raw in raws]) - mean) / scale * speaker._group_weights()
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _row(name: str, count: int, speakers: int, result: dict[str, float]) -> str:
    return (f"| {name:34s} | {speakers:2d} | {count:3d} | {result['auc']:.4f} | {result['eer']:.3f} | "
            f"{result['min_gap']:+.3f} | {result['same_mean']:+.2f} / {result['diff_mean']:+.2f} | "
            f"{result['loo_id']:.3f} | {result['worst_margin']:+.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fit-background", action="store_true",
                        help="fit and print BACKGROUND_MEAN / BACKGROUND_SCALE; also cross-population figures")
    parser.add_argument("--calibrate-checks", action="store_true",
                        help="also print the figures behind the outlier and drift thresholds")
    parser.add_argument("--per-voice", type=int, default=20)
    args = parser.parse_args()

    started = time.perf_counter()
    tts = render_tts(args.per_voice)
    render_s = time.perf_counter() - started
    segment_sets = {"real 3 s": corpus_segments(3.0), "real 6 s": corpus_segments(6.0)}
    pair_tables = {}
    started = time.perf_counter()
    tts_embeddings = np.array([speaker.speaker_embedding(audio, rate) for _, audio, rate in tts])
    embed_s = time.perf_counter() - started
    audio_s = sum(audio.size / rate for _, audio, rate in tts)

    print("| set                                | spk |   n |   AUC  |  EER  | min-gap | mean same / diff "
          "| LOO id | worst LOO margin |")
    print("|------------------------------------|----|-----|--------|-------|---------|------------------"
          "|--------|------------------|")
    labels = [name for name, _, _ in tts]
    print(_row("TTS heart vs joe (sentences)", len(tts), 2, separation(tts_embeddings, labels)))
    for name, segments in segment_sets.items():
        embeddings = np.array([speaker.speaker_embedding(audio, rate) for _, audio, rate in segments])
        seg_labels = [who for who, _, _ in segments]
        print(_row(name, len(segments), len(set(seg_labels)), separation(embeddings, seg_labels)))
        pair_tables[name] = pair_aucs(embeddings, seg_labels)
        without_twin = [i for i, who in enumerate(seg_labels) if "Xinran" not in who]
        print(_row(name + " without Xinran", len(without_twin), len(set(seg_labels)) - 1,
                   separation(embeddings[without_twin], [seg_labels[i] for i in without_twin])))
    print(f"\nrender {render_s:.1f} s; embedding {embed_s / len(tts) * 1000:.0f} ms per sentence "
          f"({audio_s / embed_s:.0f}x real time)")
    for name, table in pair_tables.items():
        print(f"\n{name}: AUC of each speaker pair (same-speaker pairs of both vs their cross pairs)")
        for (first, second), auc in sorted(table.items(), key=lambda item: item[1])[:6]:
            print(f"  {first:18s} {second:18s} {auc:.3f}")

    if args.calibrate_checks:
        calibrate_checks(tts, segment_sets["real 3 s"])

    if args.fit_background:
        tts_raw = [(name, speaker.raw_features(audio, rate)) for name, audio, rate in tts]
        real_raw = [(name, speaker.raw_features(audio, rate)) for name, audio, rate in segment_sets["real 3 s"]]
        mean, scale = fit_background(tts_raw + real_raw)
        real_only, tts_only = fit_background(real_raw), fit_background(tts_raw)
        print("\ncross-population backgrounds (AUC):")
        for title, (bg_mean, bg_scale) in (("all eight speakers", (mean, scale)),
                                           ("real only", real_only), ("TTS only", tts_only)):
            tts_result = separation(_embed_with(tts_raw, bg_mean, bg_scale), [n for n, _ in tts_raw])
            real_result = separation(_embed_with(real_raw, bg_mean, bg_scale), [n for n, _ in real_raw])
            print(f"  background from {title:18s}: TTS {tts_result['auc']:.4f} (gap {tts_result['min_gap']:+.3f}), "
                  f"real 3 s {real_result['auc']:.4f}")
        print("\nBACKGROUND_MEAN: tuple[float, ...] = (")
        print(_wrap(mean))
        print(")\nBACKGROUND_SCALE: tuple[float, ...] = (")
        print(_wrap(scale))
        print(")")


def _wrap(values: np.ndarray, per_line: int = 10) -> str:
    lines = []
    for start in range(0, values.size, per_line):
        lines.append("    " + " ".join(f"{value:.5g}," for value in values[start:start + per_line]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
