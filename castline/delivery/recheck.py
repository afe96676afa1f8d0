"""Re-check a published episode from its manifest: ``castline qa OUTPUT``."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from castline.audio.chunkfile import read_chunk
from castline.audio.encode import CODECS, measure_file
from castline.core.errors import CastlineError
from castline.qa.chunk_check import ChunkCheck, Take, check_takes
from castline.qa.records import EpisodeQA
from castline.qa.settings import QASettings
from castline.qa.signal_checks import WORDS_PER_MINUTE_BAND

RECHECK_BLOCK = 16
"""Chunks read and heard at a time: memory stays bounded however long the episode."""


def recheck_episode(output: str | Path, settings: QASettings) -> tuple[EpisodeQA, Path]:
    """Hear every chunk of the episode in ``output`` (its folder or its manifest.json) again, re-measure
    every delivered file, and write a fresh qa.json / report.html beside the manifest.

    Needs only what the store holds (manifest, chunk audio, episode files), not the script."""
    from castline.render.chunking import Boundary
    from castline.dsp.presets import PRESETS
    from castline.qa.episode import EpisodeFacts, episode_qa
    from castline.qa.report import write_report
    from castline.render.plan import ChunkJob
    from castline.storage import open_store

    manifest_path = Path(output)
    if manifest_path.is_dir():
        manifest_path = manifest_path / "manifest.json"
    if not manifest_path.is_file():
        raise CastlineError("no manifest.json here (give an episode folder or its manifest)", source=str(output))
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        jobs = tuple(ChunkJob(index=c["index"], turn=c["turn"], position=c["position"], speaker=c["speaker"],
                              voice_id=c["voice"], engine=c["engine"], text=c["text"], boundary=Boundary(c["boundary"]),
                              pause_before_ms=None, seed=c["seed"], key=c["hash"], source_line=None)
                     for c in manifest["chunks"])
        facts = EpisodeFacts(manifest["episode"], manifest["language"], PRESETS[manifest["preset"]["name"]],
                             settings, jobs)
    except (ValueError, KeyError, TypeError) as error:
        raise CastlineError(f"not a castline manifest ({error})", source=str(manifest_path)) from error
    from castline.dsp.loudness import measure_loudness

    checks: list[ChunkCheck | None] = []
    chunk_lufs: list[float | None] = []
    bands = {voice["id"]: tuple(voice["words_per_minute"]) for voice in manifest.get("voices", ())
             if voice.get("words_per_minute")}
    for start in range(0, len(jobs), RECHECK_BLOCK):
        # A block of chunks in memory at a time, heard together (packed Whisper windows).
        takes, rates = [], []
        for chunk, job in zip(manifest["chunks"][start:start + RECHECK_BLOCK], jobs[start:start + RECHECK_BLOCK]):
            audio, rate = read_chunk(_local(chunk["uri"]))
            chunk_lufs.append(measure_loudness(audio, rate).integrated_lufs)
            takes.append(Take(audio, job.text, job.engine, job.seed, bands.get(job.voice_id, WORDS_PER_MINUTE_BAND)))
            rates.append(rate)
        block: list[ChunkCheck | None] = [None] * len(takes)
        for rate in sorted(set(rates)):
            members = [i for i, r in enumerate(rates) if r == rate]
            for i, check in zip(members, check_takes([takes[i] for i in members], rate, language=facts.language,
                                                     settings=settings)):
                block[i] = check
        checks.extend(block)
    folder = _release_folder(manifest_path, manifest)
    files = [_measured(item) for item in manifest["files"]]
    wav = next((item for item in manifest["files"] if item["format"] == "wav"), None)
    master = _local(wav["uri"]) if wav else None
    if master is None or not master.is_file():
        raise CastlineError("episode.wav is missing: QA reads the WAV master", source=str(folder))
    qa = episode_qa(facts, checks, [(c["start_sample"], c["end_sample"]) for c in manifest["chunks"]],
                    chunk_lufs, master, files, policy=settings.policy)
    store = open_store(folder)
    with tempfile.TemporaryDirectory(prefix="castline-qa-") as work:
        report = write_report(qa, master, work)
        for path in (report.qa_json, report.loudness_png, report.waveform_png, report.report_html):
            store.put_file(path, Path(path).name)
    return qa, folder / "report.html"


def _release_folder(manifest_path: Path, manifest: dict) -> Path:
    """Where the manifest's files live: its release folder (a new report goes beside them)."""
    release = manifest.get("release")
    if release and manifest_path.parent.joinpath("releases", release).is_dir():
        return manifest_path.parent / "releases" / release
    return manifest_path.parent


def _local(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise CastlineError(f"only local episodes can be re-checked here (got {uri})")
    return Path(url2pathname(parsed.path))


def _measured(item: dict):
    from castline.audio.encode import EncodedFile

    path = _local(item["uri"])
    rate = CODECS[item["format"]].sample_rate or item["measured_sample_rate"]
    return EncodedFile(item["format"], str(path), measure_file(path, rate, 1), 1, ())
