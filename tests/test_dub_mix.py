"""Real engines end to end through the library (no Prefect): every fit case on espeak-ng speech,
sample-exact onsets in the dialogue stem, ducking depth measured on the mix, exact mix length."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
import soundfile

from castline.dub.options import DubOptions, DuckSettings, FitSettings
from castline.dub.pipeline import dub_language
from castline.dub.plan import prepare_dub
from castline.dub.voicing import voice_language
from castline.engines.espeak import espeak_binary
from castline.core.errors import DubError
from castline.storage import open_store

needs_espeak = pytest.mark.skipif(espeak_binary() is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng; `make install` "
                                         "does it when run as root)")
RATE = 48_000
SECONDS = 16
DEPTH_DB = 12.0


def _clock(ms: int) -> str:
    return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _srt(cues: list[tuple[int, int, str]]) -> str:
    return "\n".join(f"{n}\n{_clock(a)} --> {_clock(b)}\n{text}\n" for n, (a, b, text) in enumerate(cues, 1))


def _background(path: Path, seconds: float = SECONDS, channels: int = 2) -> Path:
    rng = np.random.default_rng(7)
    count = int(seconds * RATE)
    noise = 0.03 * rng.standard_normal((count, channels))
    hum = 0.05 * np.sin(2 * np.pi * 90 * np.arange(count) / RATE)[:, None]
    soundfile.write(str(path), (noise + hum).astype(np.float32), RATE, subtype="FLOAT")
    return path


def _path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory, voices_dir):
    """English (hibari + piper from the voices folder) and Spanish (espeak-ng fallback) over one background."""
    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("dub")
    background = _background(folder / "programme.wav")
    (folder / "en.srt").write_text(_srt([
        (1000, 3500, "ANA: Good evening, and welcome back."),
        (4200, 6500, "LUIS: Thanks. It is good to be here."),
        (9000, 11500, "- ANA: Ready?\n- LUIS: Always."),
    ]), encoding="utf-8")
    (folder / "es.srt").write_text("\ufeff" + _srt([
        (1000, 3500, "<i>ANA: Buenas noches, y bienvenidos.</i>"),
        (4200, 6500, "LUIS: Gracias. Me alegro de estar aquí."),
        (9000, 11500, "- ANA: ¿Lista?\n- LUIS: Siempre."),
    ]).replace("\n", "\r\n"), encoding="utf-8")
    options = DubOptions(cues=(str(folder / "en.srt"), str(folder / "es.srt")), background=str(background),
                         out=str(folder / "out"), voices_dir=str(voices_dir), duck=DuckSettings(depth_db=DEPTH_DB),
                         formats=("wav", "mp3"))
    results = {}
    for plan in prepare_dub(options):
        info = dub_language(plan, folder / "work")
        results[plan.language] = json.loads(_path(info.uri).read_text(encoding="utf-8"))
    return folder, results


def test_outputs_and_manifest_contract(dubbed):
    folder, results = dubbed
    assert set(results) == {"en", "es"}
    for language, manifest in results.items():
        out = folder / "out" / "programme" / language
        assert sorted(p.name for p in out.iterdir()) == ["dialogue.wav", "manifest.json", "mix.mp3", "mix.wav",
                                                           "subtitles.srt", "subtitles.vtt"]
        assert manifest["schema"] == "castline.dub/1" and manifest["language"] == language
        assert {f["format"] for f in manifest["files"]} == {"wav", "mp3"}
        for entry in manifest["cues"]:
            for key in ("index", "speaker", "text", "slot_start_sample", "slot_end_sample", "speech_start_sample",
                        "speech_end_sample", "stretch", "borrowed_ms", "overrun_ms"):
                assert key in entry
        assert [c["speaker"] for c in manifest["cues"]] == ["ANA", "LUIS", "ANA", "LUIS"]
        assert abs(manifest["files"][0]["integrated_lufs"] - (-23.0)) <= 0.5
        assert manifest["files"][0]["true_peak_dbtp"] <= -1.0
    assert {v["engine"] for v in results["en"]["voices"]} == {"hibari", "piper"}
    assert {v["engine"] for v in results["es"]["voices"]} == {"espeak"}
    assert any("espeak-ng fallback" in warning for warning in results["es"]["warnings"])


def test_mix_has_exactly_the_background_length(dubbed):
    folder, results = dubbed
    background = soundfile.info(str(folder / "programme.wav"))
    for language, manifest in results.items():
        mix = soundfile.info(str(folder / "out" / "programme" / language / "mix.wav"))
        dialogue = soundfile.info(str(folder / "out" / "programme" / language / "dialogue.wav"))
        assert mix.frames == dialogue.frames == background.frames == manifest["duration_samples"]
        assert mix.samplerate == background.samplerate and mix.channels == background.channels


def test_every_speech_onset_is_at_its_slot_within_1_ms_in_the_dialogue_stem(dubbed):
    folder, results = dubbed
    tolerance = RATE // 1000
    for language, manifest in results.items():
        stem, _ = soundfile.read(str(folder / "out" / "programme" / language / "dialogue.wav"), dtype="float32")
        previous_end = 0
        for cue in manifest["cues"]:
            slot = cue["slot_start_sample"]
            assert cue["speech_start_sample"] >= slot  # never before its slot
            window = stem[slot - tolerance:slot + RATE // 5]
            onset = slot - tolerance + int(np.flatnonzero(np.abs(window) > 1e-3)[0])
            assert abs(onset - slot) <= tolerance, (language, cue["index"], onset - slot)
            # Nothing at all between the previous speech and this slot.
            assert np.max(np.abs(stem[previous_end:slot])) == 0.0
            previous_end = cue["speech_end_sample"]


def test_ducking_depth_measured_on_the_mix(dubbed):
    folder, results = dubbed
    for language, manifest in results.items():
        out = folder / "out" / "programme" / language
        mix, _ = soundfile.read(str(out / "mix.wav"), dtype="float64")
        stem, _ = soundfile.read(str(out / "dialogue.wav"), dtype="float64")
        background = mix - stem[:, None]  # the stem is at the mix's gain: what is left is the ducked background
        under = np.zeros(len(stem), bool)
        near = np.zeros(len(stem), bool)
        for cue in manifest["cues"]:
            under[cue["speech_start_sample"]:cue["speech_end_sample"]] = True
            near[max(0, cue["speech_start_sample"] - RATE // 2):cue["speech_end_sample"] + RATE] = True

        def level(mask):
            return 10 * np.log10(np.mean(background[mask] ** 2))

        depth = level(under) - level(~near)
        assert abs(depth + DEPTH_DB) < 0.5, (language, depth)


def test_subtitles_are_retimed_to_the_speech(dubbed):
    folder, results = dubbed
    manifest = results["es"]
    srt = (folder / "out" / "programme" / "es" / "subtitles.srt").read_text(encoding="utf-8")
    blocks = [block.splitlines() for block in srt.strip().split("\n\n")]
    assert len(blocks) == len(manifest["cues"])
    for block, cue in zip(blocks, manifest["cues"]):
        start = round(cue["speech_start_sample"] * 1000 / RATE)
        end = round(cue["speech_end_sample"] * 1000 / RATE)
        assert block[1] == f"{_clock(start)} --> {_clock(end)}"
        assert block[2] == f"{cue['speaker']}: {cue['text']}"
    vtt = (folder / "out" / "programme" / "es" / "subtitles.vtt").read_text(encoding="utf-8")
    assert vtt.startswith("WEBVTT") and "<v ANA>Buenas noches, y bienvenidos." in vtt


# -- every fit case on real speech ---------------------------------------------------------------

TEXTS = {
    "fits": "Hola.",
    "rate": "Esta frase necesita un poco más de prisa.",
    "stretch": "Esta otra frase necesita bastante más prisa que la anterior.",
    "gap": "Y esta frase es demasiado larga para su hueco, así que toma prestado el silencio siguiente.",
    "overrun": "Esta última frase es muchísimo más larga que su hueco, y no cabe de ninguna manera en él, "
               "ni acelerando, ni estirando, ni tomando prestado el silencio.",
}
# Slot length as a fraction of the natural length, and the gap after the slot (ms).
DESIGN = {"fits": (1.4, 3000), "rate": (1 / 1.12, 3000), "stretch": (1 / 1.45, 0), "gap": (1 / 1.85, 3000),
          "overrun": (1 / 3.0, 300)}


@pytest.fixture(scope="module")
def natural_ms(voices_dir):
    if espeak_binary() is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    from castline.audio.resample import resample
    from castline.dub.cast import espeak_fallback_voice
    from castline.dub.trim import trimmed
    from castline.engines.espeak import EspeakEngine

    engine = EspeakEngine()
    voice = espeak_fallback_voice("es")
    lengths = {}
    for case, text in TEXTS.items():
        [audio] = engine.synthesize([text], voice, [0])
        lengths[case] = trimmed(resample(resample(audio, 22_050, 24_000), 24_000, RATE), RATE).size * 1000 // RATE
    return lengths


def _fit_plan(folder: Path, natural: dict[str, int], voices_dir, policy: str):
    cues, at = [], 500
    for case in TEXTS:
        fraction, gap = DESIGN[case]
        slot = int(natural[case] * fraction)
        cues.append((at, at + slot, f"NARRADOR: {TEXTS[case]}"))
        at += slot + gap
    (folder / "es.srt").write_text(_srt(cues), encoding="utf-8")
    _background(folder / "bg.wav", seconds=at / 1000 + 2, channels=1)
    options = DubOptions(cues=(str(folder / "es.srt"),), background=str(folder / "bg.wav"), out=str(folder / "out"),
                         voices_dir=str(voices_dir), fit=FitSettings(policy=policy))
    [plan] = prepare_dub(options)
    return plan


@needs_espeak
def test_each_fit_case_on_real_speech(tmp_path, natural_ms, voices_dir):
    plan = _fit_plan(tmp_path, natural_ms, voices_dir, "allow-overlap")
    voiced = voice_language(plan, open_store(plan.options.out), tmp_path / "work")
    fits = {case: item.fit for case, item in zip(TEXTS, voiced.units)}
    assert fits["fits"].outcome == "fits" and fits["fits"].steps == ()
    assert fits["rate"].outcome == "rate" and fits["rate"].rate > 1.0 and fits["rate"].stretch == 1.0
    assert fits["stretch"].outcome == "stretch" and fits["stretch"].rate == 1.3 and fits["stretch"].stretch > 1.0
    assert fits["gap"].outcome == "borrow" and fits["gap"].borrowed_samples > 0 and not fits["gap"].overrun_samples
    assert fits["overrun"].outcome == "overlap" and fits["overrun"].overrun_samples > 0
    for case, item in zip(TEXTS, voiced.units):
        unit = item.unit
        assert item.speech_start_sample == unit.slot_start_sample
        if case != "overrun":
            # Inside its slot, or borrowing no closer than min_gap_ms (80) to the next slot.
            assert item.speech_end_sample <= max(unit.slot_end_sample, unit.limit_sample - RATE * 80 // 1000)
        assert item.speech_end_sample - item.speech_start_sample == item.fit.speech_samples


@needs_espeak
def test_overrun_policies_truncate_and_fail(tmp_path, natural_ms, voices_dir):
    plan = _fit_plan(tmp_path, natural_ms, voices_dir, "truncate")
    store = open_store(plan.options.out)
    voiced = voice_language(plan, store, tmp_path / "work")
    last = voiced.units[-1]
    assert last.fit.truncated and last.fit.outcome == "truncate" and last.fit.overrun_samples > 0
    assert last.speech_end_sample <= last.unit.slot_end_sample + last.fit.borrowed_samples
    again = voice_language(plan, store, tmp_path / "work-again")  # every take now comes from the store
    assert sum(item.takes_rendered for item in again.units) == 0 and again.units[-1].fit == last.fit
    failing = replace(plan, options=replace(plan.options, fit=FitSettings(policy="fail")))
    with pytest.raises(DubError) as caught:
        voice_language(failing, store, tmp_path / "work2")
    message = str(caught.value)
    assert "1 cue(s) do not fit" in message and "cue 5 (line 18) by" in message and "ms" in message
    assert str(tmp_path / "es.srt") in message and "\n" not in message
