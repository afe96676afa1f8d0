"""Two languages in parallel through the Prefect flow, with the timing table as an artifact."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pytest
import soundfile

from castline.dub.options import DubOptions
from castline.engines.espeak import espeak_binary
from castline.core.progress import listening

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(espeak_binary() is None, reason="espeak-ng is not installed (apt-get install "
                                                                 "espeak-ng; `make install` does it as root)")]

SPANISH = "1\n00:00:00,500 --> 00:00:02,500\nANA: Buenos días.\n\n2\n00:00:03,000 --> 00:00:05,000\nLUIS: ¿Qué tal?\n"
GERMAN = "WEBVTT\n\n00:00.500 --> 00:02.500\n<v Anna>Guten Morgen.\n\n00:03.000 --> 00:05.000\n<v Lukas>Wie geht's?\n"


def test_two_languages_in_parallel_through_the_flow(prefect_api, tmp_path, voices_dir):
    import httpx

    from castline_flows.dub_programme import run_dub

    rate = 44_100
    background = tmp_path / "show.flac"
    soundfile.write(str(background), (0.05 * np.random.default_rng(1).standard_normal((6 * rate, 2))).astype(np.float32),
                    rate, subtype="PCM_24")
    (tmp_path / "show.es.srt").write_text(SPANISH, encoding="utf-8")
    (tmp_path / "show.de.vtt").write_text(GERMAN, encoding="utf-8")
    events: list[tuple[str, int, float]] = []

    def record(event):
        if event.stage.startswith("dub-voice:"):
            events.append((event.stage.split(":")[1], threading.get_ident(), time.perf_counter()))

    options = DubOptions(cues=(str(tmp_path / "show.es.srt"), str(tmp_path / "show.de.vtt")),
                         background=str(background), out=str(tmp_path / "out"), voices_dir=str(voices_dir))
    with listening(record):
        uris = run_dub(options)
    assert set(uris) == {"es", "de"}
    for language, uri in uris.items():
        manifest = json.loads(Path(url2pathname(urlparse(uri).path)).read_text(encoding="utf-8"))
        assert manifest["programme"] == "show" and manifest["language"] == language
        assert manifest["duration_samples"] == 6 * rate and manifest["sample_rate"] == rate
        assert len(manifest["cues"]) == 2 and manifest["cues"][0]["slot_start_sample"] == rate // 2
    # The two languages were voiced on different worker threads, at overlapping times.
    threads = {language: {ident for lang, ident, _ in events if lang == language} for language in ("es", "de")}
    assert threads["es"] and threads["de"] and not threads["es"] & threads["de"]
    spans = {language: (min(t for lang, _, t in events if lang == language),
                        max(t for lang, _, t in events if lang == language)) for language in ("es", "de")}
    assert spans["es"][0] < spans["de"][1] and spans["de"][0] < spans["es"][1]
    for language in ("es", "de"):
        found = httpx.post(f"{prefect_api}/artifacts/filter", timeout=30,
                           json={"artifacts": {"key": {"any_": [f"dub-timing-show-{language}"]}}, "limit": 1}).json()
        assert len(found) == 1 and found[0]["type"] == "table"
        assert "speech_ms" in str(found[0]["data"]) and "overrun_ms" in str(found[0]["data"])
