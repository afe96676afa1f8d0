"""Every user mistake in a script is one ScriptError line naming the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from castline.core.errors import CastlineError, ScriptError
from castline.script.load import load_script
from castline.script.textio import MAX_SCRIPT_BYTES

VOICES = ("heart", "joe", "alloy")
PRESETS = frozenset({"podcast", "audiobook"})


def load(path: Path, **overrides):
    overrides.setdefault("known_voices", VOICES)
    overrides.setdefault("known_presets", PRESETS)
    return load_script(path, **overrides)


def error_for(path: Path, line: int | None = None, **overrides) -> ScriptError:
    """The ScriptError for ``path``, checked to be one line naming the file (and line)."""
    with pytest.raises(ScriptError) as info:
        load(path, **overrides)
    message = str(info.value)
    assert "\n" not in message and message == message.strip(), message
    assert message.startswith(str(path)), message
    if line is not None:
        assert message.startswith(f"{path}:{line}: "), message
        assert info.value.line == line
    return info.value


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


BASE = (
    "episode:",             # 1
    "  title: Demo",        # 2
    "cast:",                # 3
    "  host: heart",        # 4
    "  guest: joe",         # 5
    "turns:",               # 6
    "  - speaker: host",    # 7
    "    text: Hello.",     # 8
)


def base_with(*extra: str, replace: dict[int, str] | None = None) -> str:
    rows = list(BASE)
    for number, row in (replace or {}).items():
        rows[number - 1] = row
    return lines(*rows, *extra)


# -- reading -----------------------------------------------------------------------------

def test_non_utf8_names_line_column_and_byte(tmp_path):
    path = write(tmp_path, "cafe.txt", b"Speaker 1: Hello\nSpeaker 2: caf\xe9 au lait\n")
    err = error_for(path, line=2)
    assert "not valid UTF-8" in str(err) and "0xE9" in str(err) and "column 15" in str(err)
    assert isinstance(err.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize("newline", [b"\r\n", b"\r"])
def test_non_utf8_line_counts_crlf_and_cr(tmp_path, newline):
    data = newline.join([b"Speaker 1: a", b"", b"Speaker 2: b", b"Speaker 1: \xff"])
    err = error_for(write(tmp_path, "crlf.txt", data), line=4)
    assert "0xFF" in str(err)


def test_non_utf8_after_bom(tmp_path):
    err = error_for(write(tmp_path, "bom.txt", b"\xef\xbb\xbfSpeaker 1: \x80"), line=1)
    assert "0x80" in str(err) and "column 12" in str(err)


def test_non_utf8_yaml(tmp_path):
    path = write(tmp_path, "latin1.yaml", base_with("  - speaker: guest", "    text: Gr\xfc\xdfe")
                 .encode("latin-1"))
    assert "0xFC" in str(error_for(path, line=10))


@pytest.mark.parametrize("data, kind", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "PNG"),
    (b"Speaker 1: hi\x00\x00\x00", None),
    (bytes(range(0, 32)) * 20, None),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF"),
])
def test_binary_file(tmp_path, data, kind):
    err = error_for(write(tmp_path, "cover.txt", data))
    assert "is a binary file, not a script" in str(err)
    if kind:
        assert kind in str(err)


def test_utf16_file_is_named(tmp_path):
    err = error_for(write(tmp_path, "wide.txt", "Speaker 1: hi\n".encode("utf-16")))
    assert "UTF-16" in str(err)


@pytest.mark.parametrize("name, content", [
    ("empty.txt", b""),
    ("blank.txt", b"  \n\n\t \r\n"),
    ("empty.yaml", b""),
    ("comment.yaml", b"# nothing here yet\n"),
    ("bom-only.txt", b"\xef\xbb\xbf\n"),
])
def test_empty_file_has_no_turns(tmp_path, name, content):
    assert "has no turns" in str(error_for(write(tmp_path, name, content)))


def test_missing_file(tmp_path):
    err = error_for(tmp_path / "nope.txt")
    assert "no such script file" in str(err)
    assert isinstance(err.__cause__, FileNotFoundError)


def test_directory(tmp_path):
    (tmp_path / "folder.txt").mkdir()
    assert "directory" in str(error_for(tmp_path / "folder.txt"))


def test_too_large(tmp_path):
    path = write(tmp_path, "huge.txt", b"Speaker 1: " + b"a" * MAX_SCRIPT_BYTES)
    assert "larger than 5 MB" in str(error_for(path))


def test_control_character_in_plaintext(tmp_path):
    path = write(tmp_path, "bell.txt", "Speaker 1: hi\nSpeaker 2: ring \x07 ring\n")
    assert "U+0007" in str(error_for(path, line=2))


# -- plain text --------------------------------------------------------------------------

def test_text_before_first_prefix(tmp_path):
    path = write(tmp_path, "intro.txt", "\n\nOur show begins\nSpeaker 1: Hi\nSpeaker 2: Hello\n")
    assert "before the first 'Speaker N:'" in str(error_for(path, line=3))


def test_empty_turn_names_its_speaker_line(tmp_path):
    path = write(tmp_path, "gap.txt", "Speaker 1: Hi\n\nSpeaker 2:   \nSpeaker 1: Bye\n")
    assert "Speaker 2 has no text" in str(error_for(path, line=3))


def test_cast_override_for_missing_speaker(tmp_path):
    path = write(tmp_path, "two.txt", "Speaker 1: Hi\nSpeaker 2: Hello\n")
    err = error_for(path, cast={"3": "joe"})
    assert "--cast" in str(err) and "speaker '3' is not in the script (speakers: 1, 2)" in str(err)


def test_cast_override_with_unknown_voice(tmp_path):
    path = write(tmp_path, "two.txt", "Speaker 1: Hi\nSpeaker 2: Hello\n")
    err = error_for(path, cast={"2": "nobody"})
    assert "--cast" in str(err) and "unknown voice 'nobody'" in str(err)
    assert "known voices: heart, joe, alloy" in str(err)


@pytest.mark.parametrize("option, value, field", [
    ("preset", "radio", "--preset"),
    ("language", "english!", "--language"),
    ("title", "   ", "--title"),
])
def test_bad_cli_overrides(tmp_path, option, value, field):
    path = write(tmp_path, "two.txt", "Speaker 1: Hi\nSpeaker 2: Hello\n")
    err = error_for(path, **{option: value})
    assert f": {field}: " in str(err)


def test_bad_preset_lists_known(tmp_path):
    err = error_for(write(tmp_path, "two.txt", "Speaker 1: Hi\n"), preset="radio")
    assert "unknown preset 'radio' (known presets: audiobook, podcast)" in str(err)


# -- YAML --------------------------------------------------------------------------------

YAML_CASES = {
    "syntax": (base_with(replace={8: "    text: Hello: world"}), 8, None, "invalid YAML"),
    "tab-indent": (base_with("\t- speaker: guest"), 9, None, "invalid YAML"),
    "two-documents": (base_with("---", "turns: []"), 9, None, "invalid YAML"),
    "top-level-list": (lines("- speaker: host", "  text: hi"), 1, None,
                       "top level must be a mapping"),
    "missing-turns": (lines(*BASE[:5]), 1, None, "missing 'turns'"),
    "missing-cast": (lines("turns:", "  - speaker: host", "    text: hi"), 1, None,
                     "missing 'cast'"),
    "turns-not-list": (lines(*BASE[:5], "turns: hello"), 6, "turns", "must be a list"),
    "turns-empty": (lines(*BASE[:5], "turns: []"), 6, "turns", "has no turns"),
    "turns-null": (lines(*BASE[:5], "turns:"), 6, "turns", "has no turns"),
    "only-markers": (lines(*BASE[:6], "  - chapter: One", "  - pause_ms: 300"), 7, "turns",
                     "has no turns"),
    "top-typo": (base_with(replace={6: "turn:"}), 6, "turn",
                 "unknown key 'turn' (did you mean 'turns'?); allowed: episode, cast, turns"),
    "episode-typo": (base_with(replace={2: "  titel: Demo"}), 2, "episode.titel",
                     "did you mean 'title'?"),
    "turn-typo": (base_with(replace={7: "  - speker: host"}), 7, "turns[0].speker",
                  "unknown key 'speker' (did you mean 'speaker'?)"),
    "cast-entry-typo": (base_with(replace={5: "  guest: {voise: joe}"}), 5, "cast.guest.voise",
                        "did you mean 'voice'?"),
    "unknown-speaker": (base_with("  - speaker: gest", "    text: Hi."), 9, "turns[1].speaker",
                        "unknown speaker 'gest' (did you mean 'guest'?) (cast: host, guest)"),
    "unknown-voice": (base_with(replace={5: "  guest: jo"}), 5, "cast.guest",
                      "unknown voice 'jo' (known voices: heart, joe, alloy)"),
    "unknown-voice-long-form": (base_with(replace={5: "  guest: {voice: jo, name: Sam}"}), 5,
                                "cast.guest.voice", "unknown voice 'jo'"),
    "empty-text": (base_with("  - speaker: guest", "    text: '   '"), 10, "turns[1].text",
                   "is empty"),
    "null-text": (base_with("  - speaker: guest", "    text: ~"), 10, "turns[1].text", "is empty"),
    "list-text": (base_with("  - speaker: guest", "    text: [a, b]"), 10, "turns[1].text",
                  "must be text (found a list)"),
    "control-text": (base_with("  - speaker: guest", '    text: "a\\x07b"'), 10, "turns[1].text",
                     "control character U+0007"),
    "missing-speaker": (base_with("  - text: Hi."), 9, "turns[1]", "missing 'speaker'"),
    "missing-text": (base_with("  - speaker: guest"), 9, "turns[1]", "missing 'text'"),
    "item-not-mapping": (base_with("  - Just words"), 9, "turns[1]",
                         "must be a mapping (found 'Just words')"),
    "empty-item": (base_with("  - {}"), 9, "turns[1]", "empty item"),
    "marker-in-turn": (base_with("    chapter: Intro"), 9, "turns[0].chapter",
                       "marker goes in its own list item"),
    "pause-negative": (base_with("  - pause_ms: -1", "  - speaker: guest", "    text: Hi."), 9,
                       "turns[1].pause_ms", "from 0 to 60000 (found -1)"),
    "pause-word": (base_with("  - pause_ms: soon", "  - speaker: guest", "    text: Hi."), 9,
                   "turns[1].pause_ms", "whole number of milliseconds"),
    "pause-bool": (base_with("  - pause_ms: yes", "  - speaker: guest", "    text: Hi."), 9,
                   "turns[1].pause_ms", "whole number of milliseconds"),
    "pause-too-long": (base_with("  - pause_ms: 60001", "  - speaker: guest", "    text: Hi."), 9,
                       "turns[1].pause_ms", "(found 60001)"),
    "pause-float": (base_with("    pause_before_ms: 1.5"), 9, "turns[0].pause_before_ms",
                    "(found '1.5')"),
    "pause-bad-int": (base_with("    pause_before_ms: 0b_"), 9, "turns[0].pause_before_ms",
                      "whole number"),
    "pauses-add-up": (base_with("  - pause_ms: 40000", "  - pause_ms: 30000", "  - speaker: guest",
                                "    text: Hi."), 10, "turns[2].pause_ms",
                      "add up to 70000 ms, over 60000"),
    "bad-preset": (base_with(replace={2: "  preset: radio"}), 2, "episode.preset",
                   "unknown preset 'radio' (known presets: audiobook, podcast)"),
    "bad-language": (base_with(replace={2: "  language: english!"}), 2, "episode.language",
                     "not a language code"),
    "empty-title": (base_with(replace={2: "  title: ''"}), 2, "episode.title", "is empty"),
    "duplicate-turn-key": (base_with("    text: Again."), 9, "turns[0].text",
                           "duplicate key 'text' (first at line 8)"),
    "duplicate-top-key": (base_with("cast:", "  host: joe"), 9, "cast",
                          "duplicate key 'cast' (first at line 3)"),
    "duplicate-speaker": (base_with(replace={5: "  host: joe"}), 5, "cast.host",
                          "duplicate key 'host' (first at line 4)"),
    "speaker-key-with-space": (base_with(replace={5: "  Sam Guest: joe"}), 5, "cast.Sam Guest",
                               "put the display name in 'name'"),
    "cast-empty": (lines("cast: {}", *BASE[5:]), 1, "cast", "is empty"),
    "cast-list": (lines("cast: [heart]", *BASE[5:]), 1, "cast", "must be a mapping"),
    "plaintext-in-yaml": (lines("Speaker 1: Hello", "Speaker 2: Hi"), 1, "Speaker 1",
                          "plain-text script"),
}


@pytest.mark.parametrize("name", list(YAML_CASES))
def test_yaml_mistakes(tmp_path, name):
    content, line, field, expected = YAML_CASES[name]
    path = write(tmp_path, f"{name}.yaml", content)
    err = error_for(path, line=line)
    assert expected in str(err)
    assert err.field == field
    if field:
        assert f":{line}: {field}: " in str(err)


def test_yaml_syntax_error_keeps_cause(tmp_path):
    err = error_for(write(tmp_path, "bad.yaml", YAML_CASES["syntax"][0]), line=8)
    assert isinstance(err.__cause__, yaml.YAMLError)


@pytest.mark.parametrize("episode_id", ["../x", "a/b", "_hidden", ".hidden", "a..b", "x" * 101,
                                        "café", "with space", "-dash"])
def test_bad_episode_id(tmp_path, episode_id):
    path = write(tmp_path, "ids.yaml", base_with(replace={2: f"  id: '{episode_id}'"}))
    err = error_for(path, line=2)
    assert err.field == "episode.id" and "not a valid episode id" in str(err)


def test_deep_brackets_refused_before_parsing(tmp_path):
    path = write(tmp_path, "deep.yaml", "x: " + "[" * 100_000)
    assert "nested" in str(error_for(path))


def test_yaml_cast_overrides_are_checked(tmp_path):
    path = write(tmp_path, "show.yaml", base_with())
    err = error_for(path, cast={"bob": "joe"})
    assert "speaker 'bob' is not in the script (speakers: host, guest)" in str(err)
    err = error_for(path, cast={"host": "nobody"})
    assert "--cast" in str(err) and "unknown voice 'nobody'" in str(err)


def test_no_voices_at_all(tmp_path):
    path = write(tmp_path, "two.txt", "Speaker 1: Hi\n")
    with pytest.raises(CastlineError) as info:
        load(path, known_voices=())
    assert str(info.value).startswith(str(path)) and "no voice profiles" in str(info.value)


# -- nothing raw escapes -----------------------------------------------------------------

# One file in tmp_path is overwritten per example; nothing carries over between them.
_REUSED_TMP = [HealthCheck.function_scoped_fixture]
_YAML_BITS = st.sampled_from([
    "episode:", "cast:", "turns:", "  - speaker: host", "    text: hi", "  host: heart",
    "  guest: {voice: joe, name: G}", "  - pause_ms: 99999999999999999999", "  - scene:",
    "  - chapter: [x]", "  id: ../x", "  preset: podcast", "- ", ": ", "{", "[", "]", "&a x",
    "*a", "*b", "!!binary zz", "!!python/object:os.system x", '"', "'", "\t", "---", "? k",
    "<<: *a", "  - {speaker: host, text: *a}", "    pause_before_ms: !!int abc", "\x07", "\ufeff",
    "Speaker 1: hi", "  1: heart", "  - speaker: 1", "    text: Yes",
])


@settings(max_examples=150, deadline=None, suppress_health_check=_REUSED_TMP)
@given(rows=st.lists(_YAML_BITS, max_size=14), suffix=st.sampled_from([".yaml", ".txt", ".md"]))
def test_random_yaml_never_raises_raw(tmp_path, rows, suffix):
    path = write(tmp_path, "fuzz" + suffix, "\n".join(rows))
    try:
        load(path)
    except CastlineError as err:
        assert "\n" not in str(err) and str(path) in str(err)


@settings(max_examples=100, deadline=None, suppress_health_check=_REUSED_TMP)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise_raw(tmp_path, data):
    path = write(tmp_path, "fuzz.txt", data)
    try:
        load(path)
    except CastlineError as err:
        assert "\n" not in str(err) and str(path) in str(err)
