"""Re-running ``castline dub``: an unchanged dub is up to date and starts nothing; an edited cue
re-renders only that cue's take, and the language is mixed again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from castline.core.hashing import sha256_file
from castline.dub.manifest import DubManifest
from castline.dub.options import DubOptions
from castline.dub.pipeline import dub_programme
from castline.dub.plan import dub_key, prepare_dub
from castline.dub.uptodate import DubManifestIndex, current_dub
from castline.engines.espeak import espeak_binary

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "manifests" / "dub-v0.1.0.json"
CUES = ("1\n00:00:00,300 --> 00:00:01,500\nANA: Hola.\n\n"
        "2\n00:00:02,000 --> 00:00:03,200\nANA: Buenos días.\n\n"
        "3\n00:00:03,800 --> 00:00:05,000\nANA: Adiós.\n")
needs_espeak = pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed")


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "es.srt").write_text(CUES, encoding="utf-8")
    soundfile.write(str(tmp_path / "bg.wav"), np.zeros((48_000 * 6, 2), np.float32), 48_000)
    return tmp_path


def options_for(files: Path, **changes) -> DubOptions:
    return DubOptions(cues=(str(files / "es.srt"),), background=str(files / "bg.wav"), out=str(files / "out"),
                      voices_dir=str(REPO / "voices"), **{"qa": "off", **changes})


def manifest(files: Path) -> DubManifest:
    return DubManifest.from_json((files / "out" / "bg" / "es" / "manifest.json").read_bytes())


def cli_in_fresh_process(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``castline dub ARGS`` in a new interpreter that also reports whether Prefect was imported."""
    code = ("import sys; from castline_cli.main import main; code = main(['dub', *sys.argv[1:]]); "
            "print('prefect imported:', 'prefect' in sys.modules); sys.exit(code)")
    environment = {**os.environ, "CASTLINE_VOICES_DIR": str(REPO / "voices"), **(env or {})}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=environment,
                          timeout=300)


def test_key_follows_what_shapes_the_output_and_not_paths(files, tmp_path_factory):
    base = dub_key(prepare_dub(options_for(files))[0])
    assert dub_key(prepare_dub(options_for(files))[0]) == base
    assert dub_key(prepare_dub(options_for(files, qa="warn"))[0]) != base
    assert dub_key(prepare_dub(options_for(files, seed=7))[0]) != base
    assert dub_key(prepare_dub(options_for(files, formats=("wav", "flac")))[0]) != base
    # The same cue sheet and bed elsewhere: same key.
    moved = tmp_path_factory.mktemp("moved")
    (moved / "es.srt").write_bytes((files / "es.srt").read_bytes())
    (moved / "bg.wav").write_bytes((files / "bg.wav").read_bytes())
    assert dub_key(prepare_dub(options_for(moved))[0]) == base
    # An edited cue, or a different bed: a different key.
    (moved / "es.srt").write_text(CUES.replace("Buenos días", "Buenas tardes"), encoding="utf-8")
    assert dub_key(prepare_dub(options_for(moved))[0]) != base
    soundfile.write(str(files / "bg.wav"), np.full((48_000 * 6, 2), 0.01, np.float32), 48_000)
    assert dub_key(prepare_dub(options_for(files))[0]) != base


def test_a_manifest_without_a_key_is_never_up_to_date():
    index = DubManifestIndex.from_json(FIXTURE.read_bytes())
    assert index.render_key is None and index.files  # the v0.1.0 manifest still reads


@needs_espeak
def test_an_edited_cue_re_renders_only_its_take_and_the_mix(files):
    plans = prepare_dub(options_for(files))
    assert current_dub(plans) is None  # nothing published yet
    dub_programme(plans, files / "work")
    first = manifest(files)
    assert first.render_key == dub_key(plans[0])
    assert all(cue.takes_rendered >= 1 and cue.takes_reused == 0 for cue in first.cues)
    assert current_dub(prepare_dub(options_for(files))) is not None  # unchanged: up to date
    mix_before = sha256_file(files / "out" / "bg" / "es" / "mix.wav")

    (files / "es.srt").write_text(CUES.replace("Buenos días", "Buenas tardes"), encoding="utf-8")
    edited = prepare_dub(options_for(files))
    assert current_dub(edited) is None
    dub_programme(edited, files / "work")
    second = manifest(files)
    by_cue = {cue.cue: cue for cue in second.cues}
    assert by_cue[2].text == "Buenas tardes." and by_cue[2].takes_rendered >= 1 and by_cue[2].takes_reused == 0
    for number in (1, 3):
        assert by_cue[number].takes_rendered == 0 and by_cue[number].takes_reused >= 1
        assert by_cue[number].speech_start_sample == first.cues[number - 1].speech_start_sample
    assert second.render_key == dub_key(edited[0]) != first.render_key
    assert sha256_file(files / "out" / "bg" / "es" / "mix.wav") != mix_before  # mixed again
    assert current_dub(prepare_dub(options_for(files))) is not None

    # A published object damaged or gone: no longer up to date.
    (files / "out" / "bg" / "es" / "subtitles.vtt").unlink()
    assert current_dub(prepare_dub(options_for(files))) is None


@needs_espeak
def test_an_unchanged_dub_is_up_to_date_without_starting_prefect(files):
    dub_programme(prepare_dub(options_for(files)), files / "work")
    published = files / "out" / "bg" / "es" / "manifest.json"
    before = published.read_bytes()
    args = ["--cues", str(files / "es.srt"), "--background", str(files / "bg.wav"), "--out", str(files / "out"),
            "--qa", "off", "--quiet"]
    # An unreachable API: had the command started a flow it would fail, not print "up to date".
    result = cli_in_fresh_process(*args, env={"PREFECT_API_URL": "http://127.0.0.1:9/api"})
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout and "prefect imported: False" in result.stdout, result.stdout
    assert "takes: 3 synthesised, 0 reused" in result.stdout  # the summary of the dub that is live
    assert published.read_bytes() == before


@pytest.mark.slow
@needs_espeak
def test_the_cli_twice_then_forced(files, prefect_api):
    args = ["--cues", str(files / "es.srt"), "--background", str(files / "bg.wav"), "--out", str(files / "out"),
            "--qa", "off", "--quiet"]
    env = {"PREFECT_API_URL": prefect_api}
    first = cli_in_fresh_process(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert "dubbed 1 language(s)" in first.stdout and "prefect imported: True" in first.stdout
    second = cli_in_fresh_process(*args, env=env)
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout and "prefect imported: False" in second.stdout
    forced = cli_in_fresh_process(*args, "--force", env=env)
    assert forced.returncode == 0, forced.stderr
    assert "up to date" not in forced.stdout and "dubbed 1 language(s)" in forced.stdout
    assert "takes: 0 synthesised, 3 reused" in forced.stdout  # forced, yet every take comes from the cache
    assert json.loads((files / "out" / "bg" / "es" / "manifest.json").read_text())["render_key"]


@needs_espeak
def test_a_dubbed_video_is_up_to_date_until_its_mux_changes(files):
    from castline.audio.encode import ffmpeg_exe

    video = files / "show.mp4"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=6",
                    "-f", "lavfi", "-i", "sine=frequency=330:sample_rate=48000:duration=6",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
                    str(video)], check=True)
    (files / "de.srt").write_text(CUES.replace("Hola", "Hallo").replace("Buenos días", "Guten Tag")
                                  .replace("Adiós", "Tschüss"), encoding="utf-8")

    def plans_for(**changes):
        return prepare_dub(DubOptions(cues=(str(files / "es.srt"), str(files / "de.srt")), video=str(video),
                                      out=str(files / "out"), voices_dir=str(REPO / "voices"),
                                      **{"qa": "off", **changes}))

    dub_programme(plans_for(), files / "work")
    current = current_dub(plans_for())
    assert current is not None and set(current) == {"es", "de", "picture"}
    assert current_dub(plans_for(video_audio_codec="opus")) is None  # the mux would change
    assert current_dub(plans_for(containers=("mkv", "mp4"))) is None
    (files / "out" / "show" / "dubbed.mkv").write_bytes(b"damaged")
    assert current_dub(plans_for()) is None
