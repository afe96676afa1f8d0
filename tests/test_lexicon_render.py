"""Targeted re-render: editing one lexicon rule re-synthesises exactly the chunks it changes.

A 50-chunk script (one short turn per chunk) read by hibari's seeded offline voice 'heart'.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from castline.render.options import RenderOptions
from castline.render.plan import prepare_render

NAMES = {7, 13, 21, 34, 42}
"""Turns that mention Nguyen (the rule that gets edited)."""
SQL = {3, 29, 48}


def _script(folder: Path) -> tuple[Path, Path]:
    lexicon = folder / "names.yaml"
    lexicon.write_text("rules:\n  - {grapheme: Nguyen, alias: Win}\n  - {grapheme: SQL, alias: sequel, "
                       "case_sensitive: true}\n", encoding="utf-8")
    turns = []
    for number in range(50):
        text = f"Line {number + 1} of the test, a short sentence."
        if number in NAMES:
            text = f"Doctor Nguyen reads line {number + 1}."
        elif number in SQL:
            text = f"The SQL query on line {number + 1} is slow."
        turns.append(f"  - speaker: host\n    text: {text}")
    script = folder / "fifty.yaml"
    script.write_text("episode:\n  id: fifty\n  title: Fifty\n  lexicons: [names.yaml]\ncast:\n"
                      "  host: {voice: heart}\nturns:\n" + "\n".join(turns) + "\n", encoding="utf-8")
    return script, lexicon


def test_plan_keys_change_only_where_spoken_text_changes(tmp_path):
    script, lexicon = _script(tmp_path)
    options = RenderOptions(script=str(script), out=str(tmp_path / "out"))
    before = prepare_render(options).jobs
    assert len(before) == 50
    assert before[7].text == "Doctor Nguyen reads line 8." and before[7].spoken_text == "Doctor Win reads line 8."
    assert before[7].lexicon_rules == ("names.yaml:2 Nguyen",)
    assert before[3].spoken_text == "The sequel query on line 4 is slow."
    assert before[0].spoken_text == before[0].text and before[0].lexicon_rules == ()

    lexicon.write_text(lexicon.read_text(encoding="utf-8").replace("alias: Win", "alias: Nwin"), encoding="utf-8")
    after = prepare_render(options).jobs
    changed = {job.index for job, old in zip(after, before) if job.key != old.key}
    assert changed == NAMES
    assert all(job.text == old.text for job, old in zip(after, before))

    # Without any lexicon or normalisation, keys are those of a plain script (the cache of
    # renders made before lexicons existed stays valid).
    plain = tmp_path / "plain.yaml"
    plain.write_text(script.read_text(encoding="utf-8").replace("  lexicons: [names.yaml]\n", ""), encoding="utf-8")
    keys = [job.key for job in prepare_render(replace(options, script=str(plain))).jobs]
    assert [job.key for i, job in enumerate(before) if i not in NAMES | SQL] == \
        [key for i, key in enumerate(keys) if i not in NAMES | SQL]


def test_cli_lexicon_order_command_line_first(tmp_path):
    script, _ = _script(tmp_path)
    override = tmp_path / "override.pls"
    override.write_text('<lexicon version="1.0" xmlns="http://www.w3.org/2005/01/pronunciation-lexicon" '
                        'alphabet="ipa" xml:lang="en"><lexeme><grapheme>Nguyen</grapheme><alias>Ngwen</alias>'
                        '</lexeme></lexicon>', encoding="utf-8")
    jobs = prepare_render(RenderOptions(script=str(script), lexicons=(str(override),))).jobs
    assert jobs[7].spoken_text == "Doctor Ngwen reads line 8." and jobs[7].lexicon_rules == ("override.pls:1 Nguyen",)
    assert jobs[3].spoken_text == "The sequel query on line 4 is slow."  # the script's lexicon still applies


@pytest.mark.slow
def test_editing_one_rule_rerenders_exactly_the_affected_chunks(prefect_api, tmp_path, capsys):
    from castline_cli.main import main

    script, lexicon = _script(tmp_path)
    out = tmp_path / "out"
    command = ["render", str(script), "--out", str(out), "--qa", "off", "--workers", "1", "--quiet"]
    assert main(command) == 0
    assert re.search(r"rendered in [\d.]+ s: 50 chunks synthesised, 0 reused", capsys.readouterr().out)

    lexicon.write_text(lexicon.read_text(encoding="utf-8").replace("alias: Win", "alias: Nwin"), encoding="utf-8")
    assert main(command) == 0
    assert re.search(r"rendered in [\d.]+ s: 5 chunks synthesised, 45 reused", capsys.readouterr().out)

    manifest = json.loads((out / "fifty" / "manifest.json").read_text(encoding="utf-8"))
    chunk = manifest["chunks"][7]
    assert chunk["text"] == "Doctor Nguyen reads line 8."
    assert chunk["spoken_text"] == "Doctor Nwin reads line 8."
    assert chunk["lexicon_rules"] == ["names.yaml:2 Nguyen"]
    assert "reference_text" not in chunk  # only present when the engine was sent phoneme markup
    assert manifest["chunks"][0]["lexicon_rules"] == []


def test_qa_hears_the_word_not_the_phoneme_markup(tmp_path):
    from castline.render.plan import episode_facts

    script, _ = _script(tmp_path)
    ipa = tmp_path / "ipa.yaml"
    ipa.write_text("rules:\n  - {grapheme: Nguyen, phoneme: wɪn}\n", encoding="utf-8")
    plan = prepare_render(RenderOptions(script=str(script), lexicons=(str(ipa),)))
    assert plan.jobs[7].spoken_text == "Doctor [Nguyen](/wɪn/) reads line 8."  # hibari reads misaki markup
    facts = {fact.index: fact for fact in episode_facts(plan).jobs}
    assert facts[7].text == "Doctor Nguyen reads line 8."
    assert facts[3].text == "The sequel query on line 4 is slow."


def test_normalise_option_and_show_file_lexicons(tmp_path):
    from castline_cli.lexicon import show_lexicons

    script, _ = _script(tmp_path)
    show_lexicon = tmp_path / "show-names.yaml"
    show_lexicon.write_text("rules:\n  - {grapheme: Doctor, alias: Doc}\n  - {grapheme: Nguyen, alias: Nope}\n",
                            encoding="utf-8")
    show = tmp_path / "show.yaml"
    show.write_text("id: s\ntitle: S\nlexicons: [show-names.yaml]\n", encoding="utf-8")
    options = RenderOptions(script=str(script), normalise=True, meta=(f"show={show}",))
    options = replace(options, show_lexicons=show_lexicons(options))
    assert options.show_lexicons == (str(show_lexicon),)
    jobs = prepare_render(options).jobs
    # The script's lexicon outranks the show's for "Nguyen"; the show's still adds "Doctor".
    assert jobs[7].spoken_text == "Doc Win reads line eight."
    assert jobs[7].lexicon_rules == ("show-names.yaml:2 Doctor", "names.yaml:2 Nguyen")


def test_lexicon_check_command(tmp_path, capsys):
    from castline_cli.main import main

    script, _ = _script(tmp_path)
    assert main(["lexicon", "check", str(script)]) == 0
    out = capsys.readouterr().out
    assert "Lexicon rules that fire (2):" in out
    assert "Nguyen → Win ×5" in out and "SQL → sequel ×3" in out
    assert "left to the engine (normalisation off)" in out and "→ eight" in out
    assert main(["lexicon", "check", str(script), "--lexicon", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml: no such lexicon file" in capsys.readouterr().err


def test_phoneme_markup_reaches_the_engines_front_ends(tmp_path):
    import shutil
    import subprocess

    from hibari.g2p import G2P

    from castline.script.lexicon import apply_lexicons, load_lexicon

    ipa = load_lexicon(_write(tmp_path / "ipa.yaml", "rules:\n  - {grapheme: Nguyen, phoneme: wˈɪn}\n"))
    assert "wˈɪn" in G2P()(apply_lexicons("Hello Nguyen.", [ipa], engine="hibari").spoken)
    espeak = load_lexicon(_write(tmp_path / "es.yaml", "alphabet: x-espeak\nrules:\n  - {grapheme: Nguyen, phoneme: w'In}\n"))
    if shutil.which("espeak-ng"):
        spoken = apply_lexicons("Hello Nguyen there", [espeak], engine="espeak").spoken
        heard = subprocess.run(["espeak-ng", "-q", "-x", "--stdin"], input=spoken, capture_output=True, text=True)
        assert "w'In" in heard.stdout and "n'u:" not in heard.stdout


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_voice_profile_lexicons_rank_below_the_script(tmp_path):
    import shutil

    from castline.voices.profiles import default_voices_dir, load_voice_profile

    voices = tmp_path / "voices"
    shutil.copytree(default_voices_dir() / "heart", voices / "heart")
    profile = voices / "heart" / "voice.yaml"
    plain_hash = load_voice_profile(profile).profile_hash
    profile.write_text(profile.read_text(encoding="utf-8") + "lexicons: [heart-names.yaml]\n", encoding="utf-8")
    (voices / "heart" / "heart-names.yaml").write_text(
        "rules:\n  - {grapheme: Nguyen, alias: Nope}\n  - {grapheme: line, alias: lyne}\n", encoding="utf-8")
    loaded = load_voice_profile(profile)
    assert loaded.lexicons == (str(voices / "heart" / "heart-names.yaml"),)
    assert loaded.profile_hash == plain_hash  # lexicons change the text sent, not the voice
    script, _ = _script(tmp_path)
    jobs = prepare_render(RenderOptions(script=str(script), voices_dir=str(voices))).jobs
    assert jobs[7].spoken_text == "Doctor Win reads lyne 8."
    assert jobs[0].spoken_text == "lyne 1 of the test, a short sentence."  # rules ignore case by default
