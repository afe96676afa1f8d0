
import pytest

from castline.engines.registry import voice_usability
from castline.core.errors import VoiceError
from castline.voices.profiles import load_voice_library, load_voice_profile


def test_bundled_voices_load_and_are_usable(voices_dir):
    library = load_voice_library(voices_dir)
    assert library.ids()[:2] == ["heart", "joe"]
    heart, joe = library.get("heart"), library.get("joe")
    assert (heart.engine, joe.engine) == ("hibari", "piper")
    assert heart.profile_hash != joe.profile_hash and len(heart.profile_hash) == 64
    assert voice_usability(heart).usable, voice_usability(heart).reason
    assert voice_usability(joe).usable, voice_usability(joe).reason
    assert not heart.is_clone


def _write(folder, text):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "voice.yaml").write_text(text, encoding="utf-8")
    return folder / "voice.yaml"


BASE = "id: v1\nname: V\nlanguage: en\nengine: hibari\nengine_voice: heart\n"


@pytest.mark.parametrize("extra, field", [
    ("reference: {audio: ../../etc/passwd}\n", "reference.audio"),
    ("reference: {audio: missing.wav}\n", "reference.audio"),
    ("consent: {who: A, when: 2026-01-01, scope: podcast}\n", "consent"),
    ("consent: {who: A, when: yesterday, scope: x, statement: ok}\n", "consent.when"),
    ("consent: {who: '', when: 2026-01-01, scope: x, statement: ok}\n", "consent.who"),
    ("consent: {who: A, when: 2026-01-01, scope: x, evidence: nope.pdf}\n", "consent.evidence"),
    ("engine_options: {speed: [1]}\n", "engine_options"),
    ("colour: blue\n", "colour"),
    ("words_per_minute: 200\n", "words_per_minute"),
    ("words_per_minute: [300, 200]\n", "words_per_minute"),
    ("words_per_minute: [100, fast]\n", "words_per_minute"),
])
def test_invalid_profiles_name_the_field(tmp_path, extra, field):
    path = _write(tmp_path / "v1", BASE + extra)
    with pytest.raises(VoiceError) as caught:
        load_voice_profile(path)
    message = str(caught.value)
    assert str(path) in message and field in message and "\n" not in message


def test_reference_and_consent_are_recorded(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "ref.wav").write_bytes(b"RIFF....")
    (folder / "consent.txt").write_text("signed", encoding="utf-8")
    path = _write(folder, BASE + "reference: {audio: ref.wav, transcript: Hi}\n"
                  "consent: {who: Ana, when: 2026-02-03, scope: this podcast, evidence: consent.txt}\n")
    profile = load_voice_profile(path)
    assert profile.is_clone and profile.reference.transcript == "Hi"
    assert profile.consent.who == "Ana" and profile.consent.when == "2026-02-03"
    assert len(profile.reference.sha256) == 64


def test_id_must_match_folder(tmp_path):
    path = _write(tmp_path / "other", BASE)
    with pytest.raises(VoiceError, match="must match its folder"):
        load_voice_profile(path)


def test_profile_hash_changes_with_options(tmp_path):
    first = load_voice_profile(_write(tmp_path / "a" / "v1", BASE + "engine_options: {speed: 1.0}\n"))
    second = load_voice_profile(_write(tmp_path / "b" / "v1", BASE + "engine_options: {speed: 1.1}\n"))
    assert first.profile_hash != second.profile_hash


def test_words_per_minute_band_is_optional_and_leaves_other_profiles_hashes_alone(tmp_path):
    plain = load_voice_profile(_write(tmp_path / "a" / "v1", BASE))
    banded = load_voice_profile(_write(tmp_path / "b" / "v1", BASE + "words_per_minute: [110, 400.5]\n"))
    assert plain.words_per_minute is None and banded.words_per_minute == (110.0, 400.5)
    assert plain.profile_hash != banded.profile_hash
    # a profile without the field keeps the hash it had before the field existed (up-to-date checks hold)
    assert plain.profile_hash == "2281f7bfe75df29ab5b15fa26b2617965313f7bb71cf5b0f95692e2d0d604d3a"


def test_download_only_hibari_voice_is_reported_unusable(tmp_path):
    profile = load_voice_profile(_write(tmp_path / "v1", BASE.replace("engine_voice: heart", "engine_voice: emma")))
    usable = voice_usability(profile)
    assert not usable.usable and "download-only" in usable.reason


def test_unknown_voice_lists_known(voices_dir):
    with pytest.raises(VoiceError, match=r"unknown voice 'zed' \(known: heart, joe"):
        load_voice_library(voices_dir).get("zed")


# --- a broken profile fails only the renders that cast it ------------------------------------------

def _library_with_a_broken_profile(tmp_path, voices_dir):
    import shutil

    root = tmp_path / "voices"
    for voice_id in ("heart", "joe"):
        shutil.copytree(voices_dir / voice_id, root / voice_id)
    broken = _write(root / "stolen", BASE.replace("id: v1", "id: stolen") + "reference: {audio: ../../etc/passwd}\n")
    return root, broken


def test_a_broken_profile_is_listed_with_its_error_not_raised(tmp_path, voices_dir):
    root, broken = _library_with_a_broken_profile(tmp_path, voices_dir)
    library = load_voice_library(root)
    assert library.ids() == ["heart", "joe"] and library.broken_ids() == ["stolen"]
    [entry] = library.broken
    assert entry.source_path == str(broken) and entry.field == "reference.audio"
    assert str(broken) in entry.reason and "inside the profile folder" in entry.reason
    assert library.get("heart").engine == "hibari"
    with pytest.raises(VoiceError) as caught:
        library.get("stolen")
    assert str(caught.value) == entry.reason


def _script(tmp_path, cast):
    script = tmp_path / "ep.yaml"
    script.write_text("episode: {id: ep, title: Ep}\n"
                      f"cast:\n  host: {{voice: {cast}}}\n"
                      "turns:\n  - speaker: host\n    text: Hello there.\n", encoding="utf-8")
    return str(script)


def test_renders_that_do_not_cast_a_broken_profile_still_plan(tmp_path, voices_dir):
    from castline.render.options import RenderOptions
    from castline.render.plan import prepare_render

    root, broken = _library_with_a_broken_profile(tmp_path, voices_dir)
    plan = prepare_render(RenderOptions(script=_script(tmp_path, "heart"), voices_dir=str(root)))
    assert [voice.voice_id for voice in plan.voices] == ["heart"]
    with pytest.raises(VoiceError) as caught:
        prepare_render(RenderOptions(script=_script(tmp_path, "stolen"), voices_dir=str(root)))
    message = str(caught.value)
    assert str(broken) in message and "reference.audio" in message and "\n" not in message


def test_voices_list_shows_a_broken_profile_with_its_error(tmp_path, voices_dir):
    import subprocess
    import sys

    root, broken = _library_with_a_broken_profile(tmp_path, voices_dir)
    listed = subprocess.run([sys.executable, "-m", "castline_cli", "voices", "list", "--voices-dir", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in listed.stdout.splitlines()[1:]}
    assert set(rows) == {"heart", "joe", "stolen"}
    assert rows["heart"][-1] == "yes"
    assert rows["stolen"][-2] == "broken"
    assert rows["stolen"][-1].startswith(f"no: {broken}: reference.audio:")
