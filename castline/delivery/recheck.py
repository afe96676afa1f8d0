"""Re-check a published episode from its manifest: ``castline qa OUTPUT``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

from castline.audio.chunkfile import read_chunk
from castline.audio.encode import CODECS, EncodedFile, measure_file
from castline.core.errors import CastlineError
from castline.delivery.manifest import EpisodeManifest, FileEntry
from castline.qa.episode import ChunkFacts, EpisodeFacts
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
    from castline.dsp.loudness import measure_loudness
    from castline.qa.episode import episode_qa
    from castline.qa.report import write_report
    from castline.storage import open_store

    manifest_path = Path(output)
    if manifest_path.is_dir():
        manifest_path = manifest_path / "manifest.json"
    if not manifest_path.is_file():
        raise CastlineError("no manifest.json here (give an episode folder or its manifest)", source=str(output))
    try:
        manifest = EpisodeManifest.from_json(manifest_path.read_bytes())
        facts = episode_facts(manifest, settings)
    except (ValueError, KeyError, TypeError) as error:
        raise CastlineError(f"not a castline manifest ({error})", source=str(manifest_path)) from error

    checks: list[ChunkCheck | None] = []
    chunk_lufs: list[float | None] = []
    bands = {voice.id: tuple(voice.words_per_minute) for voice in manifest.voices if voice.words_per_minute}
    for start in range(0, len(manifest.chunks), RECHECK_BLOCK):
        # A block of chunks in memory at a time, heard together (packed Whisper windows).
        takes, rates = [], []
        for chunk in manifest.chunks[start:start + RECHECK_BLOCK]:
            audio, rate = read_chunk(_local(chunk.uri))
            chunk_lufs.append(measure_loudness(audio, rate).integrated_lufs)
            takes.append(Take(audio, chunk.heard_text, chunk.engine, chunk.seed, bands.get(chunk.voice, WORDS_PER_MINUTE_BAND)))
            rates.append(rate)
        block: list[ChunkCheck | None] = [None] * len(takes)
        for rate in sorted(set(rates)):
            members = [i for i, r in enumerate(rates) if r == rate]
            for i, check in zip(members, check_takes([takes[i] for i in members], rate, language=facts.language,
                                                     settings=settings)):
                block[i] = check
        checks.extend(block)
    folder = _release_folder(manifest_path, manifest)
    files = [_measured(item) for item in manifest.files]
    wav = manifest.file("wav")
    master = _local(wav.uri) if wav else None
    if master is None or not master.is_file():
        raise CastlineError("episode.wav is missing: QA reads the WAV master", source=str(folder))
    qa = episode_qa(facts, checks, [(chunk.start_sample, chunk.end_sample) for chunk in manifest.chunks],
                    chunk_lufs, master, files, policy=settings.policy)
    store = open_store(folder)
    with tempfile.TemporaryDirectory(prefix="castline-qa-") as work:
        report = write_report(qa, master, work)
        for path in (report.qa_json, report.loudness_png, report.waveform_png, report.report_html):
            store.put_file(path, Path(path).name)
    return qa, folder / "report.html"


def episode_facts(manifest: EpisodeManifest, settings: QASettings) -> EpisodeFacts:
    """What episode QA needs, from a published manifest (no script or plan needed)."""
    from castline.dsp.presets import PRESETS

    jobs = tuple(ChunkFacts(index=chunk.index, turn=chunk.turn, speaker=chunk.speaker, voice_id=chunk.voice,
                            engine=chunk.engine, text=chunk.heard_text) for chunk in manifest.chunks)
    return EpisodeFacts(manifest.episode, manifest.language, PRESETS[manifest.preset_name], settings, jobs)


def _release_folder(manifest_path: Path, manifest: EpisodeManifest) -> Path:
    """Where the manifest's files live: its release folder (a new report goes beside them)."""
    release = manifest.release
    if release and manifest_path.parent.joinpath("releases", release).is_dir():
        return manifest_path.parent / "releases" / release
    return manifest_path.parent


def _local(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme not in ("", "file"):
        raise CastlineError(f"only local episodes can be re-checked here (got {uri})")
    return Path(url2pathname(parsed.path))


def _measured(item: FileEntry) -> EncodedFile:
    path = _local(item.uri)
    rate = CODECS[item.format].sample_rate or item.measured_sample_rate
    return EncodedFile(item.format, str(path), measure_file(path, rate, 1), 1, ())
