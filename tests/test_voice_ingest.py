"""Voice-clone profiles: ingest real and synthetic references, consent, versions, provenance."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import soundfile
import yaml

from castline.core.errors import VoiceError
from castline.voices.ingest import add_voice, prepare_reference
from castline.voices.profiles import load_voice_library
from conftest import speech_like

CORPUS_VOICES = ["en-Alice_woman", "en-Carter_man", "en-Frank_man", "en-Mary_woman_bgm", "en-Maya_woman",
                 "zh-Xinran_woman"]


@pytest.mark.parametrize("name", CORPUS_VOICES)
def test_real_references_ingest(shared_dir, tmp_path, name):
    source = shared_dir / "corpus" / "vibevoice-demo" / "voices" / f"{name}.wav"
    voice_id = name.lower().replace("_", "-")
    profile, report = add_voice(tmp_path, voice_id, source, engine="vibevoice",
                                consent_statement="I agree to this test.", language=name[:2])
    audio, rate = soundfile.read(profile.reference.path, dtype="float32")
    original, original_rate = soundfile.read(source, dtype="float32")
    assert rate == 24_000 and audio.ndim == 1
    assert abs(audio.size / rate - original.shape[0] / original_rate) < 0.01  # 16 kHz clip resampled, not cut
    frames = audio[: audio.size // 1200 * 1200].reshape(-1, 1200)
    speech_db = np.percentile(10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12), 90)
    assert abs(speech_db - (-20.0)) < 0.5  # levelled
    music_warned = any("music" in w for w in report.warnings)
    assert music_warned == (name == "en-Mary_woman_bgm")
    assert profile.is_clone and profile.consent.statement == "I agree to this test." and profile.version == 1
    assert (report.source_sample_rate == 16_000) == (name == "en-Alice_woman")


def _write(tmp_path, name, audio, rate=24_000):
    path = tmp_path / name
    soundfile.write(path, audio, rate)
    return path


def test_synthetic_problems_are_reported(tmp_path):
    # Phrases with breaths between them, as a read reference has (25 % pauses).
    phrases = [speech_like(1.2, 24_000, seed=seed, level_db=-20) for seed in range(4)]
    gap = np.zeros(9_600, np.float32)
    pauses = np.concatenate([part for phrase in phrases for part in (phrase, gap)])
    _, clean = prepare_reference(_write(tmp_path, "clean.wav", pauses))
    assert clean.warnings == ()
    _, short = prepare_reference(_write(tmp_path, "short.wav", pauses[:50_000]))
    assert any("works best" in w for w in short.warnings)
    clipped = np.clip(pauses * 30, -1, 1)
    _, report = prepare_reference(_write(tmp_path, "clipped.wav", clipped))
    assert any("clipped" in w for w in report.warnings)
    _, quiet = prepare_reference(_write(tmp_path, "quiet.wav", pauses * 0.003))
    assert any("very quiet" in w for w in quiet.warnings)
    noise = np.random.default_rng(0).standard_normal(pauses.size).astype(np.float32) * 0.03
    _, noisy = prepare_reference(_write(tmp_path, "noisy.wav", pauses + noise))
    assert any("background noise" in w for w in noisy.warnings)
    with pytest.raises(VoiceError, match="silent"):
        prepare_reference(_write(tmp_path, "silent.wav", np.zeros(24_000 * 5, np.float32)))
    with pytest.raises(VoiceError, match="at least 3 s"):
        prepare_reference(_write(tmp_path, "tiny.wav", pauses[:12_000]))


def test_any_format_and_rate(tmp_path):
    from castline.audio.encode import ffmpeg_exe

    stereo = np.stack([speech_like(5.0, 44_100, seed=2), speech_like(5.0, 44_100, seed=3)], axis=1)
    wav = _write(tmp_path, "stereo44.wav", stereo, rate=44_100)
    mp3 = tmp_path / "ref.mp3"
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "libmp3lame", str(mp3)],
                   check=True)
    audio, report = prepare_reference(mp3)
    assert report.source_sample_rate == 44_100 and report.source_channels == 2
    assert abs(audio.size / 24_000 - 5.0) < 0.1 and audio.dtype == np.float32


def test_consent_is_required_and_versions_increase(tmp_path):
    reference = _write(tmp_path, "ref.wav", speech_like(5.0, 24_000, seed=4))
    with pytest.raises(VoiceError, match="consent"):
        add_voice(tmp_path / "voices", "ana", reference, engine="vibevoice")
    evidence = tmp_path / "signed.pdf"
    evidence.write_bytes(b"%PDF-1.4 signed")
    profile, _ = add_voice(tmp_path / "voices", "ana", reference, engine="vibevoice", consent_file=evidence,
                           consent_who="Ana Example", consent_scope="season 1")
    stored = yaml.safe_load((tmp_path / "voices" / "ana" / "voice.yaml").read_text())
    assert stored["consent"]["evidence"] == "consent.pdf" and len(stored["consent"]["evidence_sha256"]) == 64
    assert profile.consent.who == "Ana Example" and profile.consent.scope == "season 1"
    with pytest.raises(VoiceError, match="--replace"):
        add_voice(tmp_path / "voices", "ana", reference, engine="vibevoice", consent_statement="yes")
    again, _ = add_voice(tmp_path / "voices", "ana", reference, engine="vibevoice", consent_statement="yes",
                         replace=True)
    assert again.version == 2 and again.profile_hash != profile.profile_hash
    assert [p.voice_id for p in load_voice_library(tmp_path / "voices").profiles] == ["ana"]


def test_cloning_without_consent_is_refused(tmp_path, monkeypatch, voices_dir):
    import shutil

    from castline.engines import registry
    from castline.render.options import RenderOptions
    from castline.render.plan import prepare_render

    monkeypatch.setitem(registry.ENGINE_CLASSES, "tone-cloner", "fake_engines:ToneCloner")
    voices = tmp_path / "voices"
    shutil.copytree(voices_dir, voices)
    reference = _write(tmp_path, "ref.wav", speech_like(5.0, 24_000, seed=5))
    add_voice(voices, "ana", reference, engine="tone-cloner", consent_statement="I agree.")
    (voices / "bob").mkdir()
    shutil.copy(voices / "ana" / "reference.wav", voices / "bob" / "reference.wav")
    (voices / "bob" / "voice.yaml").write_text(
        "id: bob\nname: Bob\nlanguage: en\nengine: tone-cloner\nengine_voice: clone\n"
        "reference: {audio: reference.wav}\n", encoding="utf-8")
    script = tmp_path / "ep.txt"
    script.write_text("Speaker 1: Hello.\nSpeaker 2: Hi.\n", encoding="utf-8")
    with pytest.raises(VoiceError) as refused:
        prepare_render(RenderOptions(script=str(script), voices_dir=str(voices), cast=(("1", "ana"), ("2", "bob"))))
    assert "bob" in str(refused.value) and "consent" in str(refused.value)
    plan = prepare_render(RenderOptions(script=str(script), voices_dir=str(voices), cast=(("1", "ana"), ("2", "ana"))))
    assert plan.voice("ana").is_clone and plan.voice("ana").consent is not None


def test_cli_voices_add_then_list(tmp_path, voices_dir):
    import os
    import shutil

    voices = tmp_path / "voices"
    shutil.copytree(voices_dir, voices)
    reference = _write(tmp_path, "ref.wav", speech_like(5.0, 24_000, seed=6))
    env = {**os.environ, "CASTLINE_VOICES_DIR": str(voices)}
    added = subprocess.run([sys.executable, "-m", "castline_cli", "voices", "add", "cleo", "--ref", str(reference),
                            "--consent-statement", "I, Cleo, agree."], capture_output=True, text=True, env=env)
    assert added.returncode == 0, added.stderr
    assert "added voice 'cleo' version 1" in added.stdout
    missing = subprocess.run([sys.executable, "-m", "castline_cli", "voices", "add", "dan", "--ref", str(reference)],
                             capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "--consent" in missing.stderr
    listed = subprocess.run([sys.executable, "-m", "castline_cli", "voices", "list"], capture_output=True, text=True,
                            env=env)
    assert "cleo" in listed.stdout and "clone" in listed.stdout


def test_profile_hash_does_not_depend_on_where_the_library_sits(tmp_path):
    """A library fetched from s3:// into a temporary folder, or on another machine, keeps its hashes
    (they key the chunk cache); changing the reference audio still changes the hash."""
    import shutil

    reference = _write(tmp_path, "ref.wav", speech_like(5.0, 24_000, seed=5))
    add_voice(tmp_path / "here", "ana", reference, engine="vibevoice", consent_statement="yes")
    shutil.copytree(tmp_path / "here", tmp_path / "elsewhere" / "voices")
    here = load_voice_library(tmp_path / "here").get("ana")
    elsewhere = load_voice_library(tmp_path / "elsewhere" / "voices").get("ana")
    assert here.reference.path != elsewhere.reference.path
    assert here.profile_hash == elsewhere.profile_hash
    add_voice(tmp_path / "elsewhere" / "voices", "ana", _write(tmp_path, "other.wav", speech_like(5.0, 24_000, seed=6)),
              engine="vibevoice", consent_statement="yes", replace=True)
    assert load_voice_library(tmp_path / "elsewhere" / "voices").get("ana").profile_hash != here.profile_hash
