"""Speaker embedding and speaker checks on real renders of the two offline voices (heart, joe)."""

import numpy as np
import pytest

from castline import PROJECT_SAMPLE_RATE
from castline.audio.resample import resample
from castline.qa.speaker import (EMBEDDING_SIZE, check_embeddings, drift_from_embeddings, drift_report,
                                 speaker_checks, speaker_embedding, similarity)
from tts_renders import render_sentences

RATE = PROJECT_SAMPLE_RATE
HEART_TEXTS = (
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
    "Let me read you a short passage from the first chapter.",
)
JOE_TEXTS = (
    "The river froze solid for the first time in living memory.",
    "My grandmother taught me to play chess on a cardboard board.",
    "Engineers found a crack in the main support beam yesterday.",
    "Every spring the swallows return to the same old barn.",
    "The satellite sent back photographs of a dust storm on Mars.",
    "We argued for hours about the best way to cook rice.",
    "The orchestra tuned up while the audience found their seats.",
    "A good editor can make a messy draft sound effortless.",
    "The hiking trail climbs steeply for the first three miles.",
    "Some researchers think sleep helps us sort our memories.",
    "Thanks for joining us, and we'll see you next Thursday.",
)


_render = render_sentences


@pytest.fixture(scope="module")
def voices(voices_dir):
    """Ten sentences and one reference sentence per voice, with their embeddings."""
    heart = _render("hibari", "heart", HEART_TEXTS, voices_dir)
    joe = _render("piper", "joe", JOE_TEXTS, voices_dir)
    return {
        "heart": heart[:10], "joe": joe[:10],
        "heart_ref": heart[10], "joe_ref": joe[10],
        "heart_emb": [speaker_embedding(a, RATE) for a in heart[:10]],
        "joe_emb": [speaker_embedding(a, RATE) for a in joe[:10]],
    }


def test_embedding_is_a_deterministic_unit_vector(voices):
    audio = voices["heart"][0]
    first, again = speaker_embedding(audio, RATE), speaker_embedding(audio.copy(), RATE)
    assert first.dtype == np.float32 and first.shape == (EMBEDDING_SIZE,)
    assert np.array_equal(first, again)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    # the same voice at another sample rate is analysed in the same band
    assert similarity(first, speaker_embedding(resample(audio, RATE, 16_000), 16_000)) > 0.95


def test_silence_has_no_embedding():
    assert not np.any(speaker_embedding(np.zeros(RATE, np.float32), RATE))
    assert similarity(np.zeros(EMBEDDING_SIZE), np.ones(EMBEDDING_SIZE)) == 0.0


def test_heart_and_joe_are_separated(voices):
    heart, joe = np.array(voices["heart_emb"]), np.array(voices["joe_emb"])
    for own, other in ((heart, joe), (joe, heart)):
        for index, vector in enumerate(own):
            own_centroid = np.delete(own, index, axis=0).mean(axis=0)
            assert similarity(vector, own_centroid) > similarity(vector, other.mean(axis=0))
    embeddings = np.vstack([heart, joe])
    labels = np.array([0] * len(heart) + [1] * len(joe))
    sims = embeddings @ embeddings.T
    first, second = np.triu_indices(len(labels), 1)
    same = labels[first] == labels[second]
    positive, negative = sims[first, second][same], sims[first, second][~same]
    auc = np.mean(positive[:, None] > negative[None, :])
    assert auc >= 0.95


def test_a_chunk_in_the_wrong_voice_is_flagged(voices):
    chunks = [("heart", a) for a in voices["heart"][:6]] + [("joe", a) for a in voices["joe"][:6]]
    chunks[3] = ("heart", voices["joe"][7])  # a heart line rendered with joe's voice
    findings = speaker_checks(chunks, RATE, references={"heart": voices["heart_ref"], "joe": voices["joe_ref"]})
    assert [f.index for f in findings if "wrong-speaker" in f.flags] == [3]
    assert [f.index for f in findings if "reference-mismatch" in f.flags] == [3]
    wrong = findings[3]
    assert wrong.nearest_other == "joe" and wrong.similarity_other > wrong.similarity_own
    assert all(f.similarity_reference > 0.3 for f in findings if f.index != 3)


def test_an_odd_chunk_of_a_lone_speaker_is_an_outlier(voices):
    embedded = [("heart", e) for e in voices["heart_emb"]]
    embedded[5] = ("heart", voices["joe_emb"][0])
    findings = check_embeddings(embedded)
    assert [f.index for f in findings if "speaker-outlier" in f.flags] == [5]
    assert all(f.nearest_other is None and not f.flags for f in findings if f.index != 5)


def test_silent_chunk_is_reported_not_compared(voices):
    chunks = [("heart", a) for a in voices["heart"][:4]] + [("heart", np.zeros(RATE, np.float32))]
    findings = speaker_checks(chunks, RATE)
    assert findings[-1].flags == ("no-speech",)
    assert all(not f.flags for f in findings[:-1])


def test_drift_fires_when_the_last_third_changes_voice(voices):
    consistent = [("host", e) for e in voices["heart_emb"][:9]]
    drifting = consistent[:6] + [("host", e) for e in voices["joe_emb"][:3]]
    [steady] = drift_from_embeddings(consistent)
    [drifted] = drift_from_embeddings(drifting)
    assert steady.flag is None and steady.drop < steady.threshold
    assert drifted.flag == "drift" and drifted.drop > 2 * drifted.threshold
    assert drifted.slope_per_episode < 0 < drifted.first_quarter - drifted.last_quarter


def test_drift_report_per_speaker_from_audio(voices):
    chunks = [("a", heart) for heart in voices["heart"][:8]] + [("b", joe) for joe in voices["joe"][:4]]
    reports = {r.speaker: r for r in drift_report(chunks, RATE)}
    assert reports["a"].flag is None and len(reports["a"].similarities) == 8
    assert reports["b"].flag is None and reports["b"].similarities == ()  # too few chunks to judge


def test_a_chunk_under_a_second_is_never_a_speaker_outlier(voices):
    """Episode QA: the same odd embedding is an outlier on a 3 s chunk, not on a 0.5 s one
    (one or two words give too little speech for a stable embedding)."""
    from castline.qa.chunk_check import ChunkCheck
    from castline.qa.episode import ChunkFacts, _speaker_flags

    embeddings = list(voices["heart_emb"])
    embeddings[5] = voices["joe_emb"][0]
    jobs = [ChunkFacts(index=i, turn=i, speaker="1", voice_id="heart", engine="hibari", text="x")
            for i in range(len(embeddings))]
    checks = [ChunkCheck(transcript="x", wer=0.0, flags=(), passed=True, embedding=tuple(map(float, e)))
              for e in embeddings]
    long_spans = [(i * 3 * RATE, (i + 1) * 3 * RATE) for i in range(len(jobs))]
    assert _speaker_flags(jobs, checks, long_spans) == {5: ("speaker-outlier",)}
    short_spans = list(long_spans)
    short_spans[5] = (long_spans[5][0], long_spans[5][0] + RATE // 2)
    assert _speaker_flags(jobs, checks, short_spans) == {}


def test_pitch_is_found_with_the_short_transform():
    from castline.qa.speaker import PITCH_RATE_HZ, _smooth_size, pitch_track

    def smooth(size: int) -> bool:
        for factor in (2, 3, 5):
            while size % factor == 0:
                size //= factor
        return size == 1

    assert all(_smooth_size(m) == next(n for n in range(m, 2 * m + 2) if smooth(n)) for m in range(1, 1500))
    seconds = np.arange(PITCH_RATE_HZ) / PITCH_RATE_HZ
    for f0_hz in (80.0, 150.0, 310.0):
        voice = sum(np.sin(2 * np.pi * f0_hz * k * seconds) / k for k in range(1, 6))
        f0, voiced = pitch_track(voice)
        assert voiced[5:-5].all()
        np.testing.assert_allclose(f0[5:-5], f0_hz, rtol=0.01)
