"""What the engines that run transformers checkpoints (VibeVoice, Pocket TTS) share: where a
model runs and in which precision, and what identifies a checkpoint in cache keys.

Nothing here imports torch or transformers at import time; ``device_and_dtype`` imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import threading
from pathlib import Path
from typing import Callable, Iterable, Sequence

from castline.core.errors import EngineError

DTYPES = ("float32", "bfloat16", "float16")
FULL_HASH_LIMIT_BYTES = 16 << 20
"""Files up to this size (configs, tokenizers, chat templates) are hashed whole."""
EDGE_HASH_BYTES = 1 << 20
"""Of larger files (weights) the first and last MiB are hashed, with the size."""


def device_and_dtype(device: str, dtype: str, engine: str) -> tuple[str, str]:
    """Resolve ``--device`` and ``--dtype`` for ``engine`` to a device string and a torch dtype name.

    ``auto`` device: CUDA when there is a GPU, else CPU. ``auto`` dtype: bfloat16 on a CUDA
    device that supports it (``torch.cuda.is_bf16_supported()``), float16 on any other CUDA
    device, float32 on CPU. An explicit dtype the device cannot run (bfloat16 on a GPU without
    it, float16 on CPU, anything a quick probe fails on) is a one-line ``EngineError``.
    """
    import torch

    if dtype != "auto" and dtype not in DTYPES:
        raise EngineError(f"unknown dtype '{dtype}' for {engine} (auto, {', '.join(DTYPES)})")
    has_cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
    if device == "cuda" or device.startswith("cuda:"):
        if not has_cuda:
            build = "" if torch.version.cuda else " (this torch is a CPU build)"
            raise EngineError(f"--device {device}: CUDA is not available here{build}")
        index = device.partition(":")[2]
        if device != "cuda" and not (index.isdigit() and int(index) < torch.cuda.device_count()):
            raise EngineError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        bfloat16 = torch.cuda.is_bf16_supported()
        if dtype == "auto":
            return device, "bfloat16" if bfloat16 else "float16"
        if dtype == "bfloat16" and not bfloat16:
            raise EngineError(f"device '{device}' does not support bfloat16 (use --dtype float16 or float32)")
    elif device == "cpu":
        if dtype == "auto":
            return device, "float32"
        if dtype == "float16":
            raise EngineError("float16 needs a CUDA device; on CPU use --dtype float32 (or bfloat16)")
    else:
        raise EngineError(f"unknown device '{device}' for {engine} (auto, cpu, cuda, cuda:N)")
    if not _dtype_works(torch, getattr(torch, dtype), device):
        raise EngineError(f"--dtype {dtype} is not supported on {device} here")
    return device, dtype


def _dtype_works(torch, dtype, device: str) -> bool:
    """Whether a convolution and a matrix product run in ``dtype`` on ``device`` (older CPU
    builds lack some half-precision kernels)."""
    try:
        signal = torch.ones(1, 2, 8, dtype=dtype, device=device)
        torch.nn.functional.conv1d(signal, torch.ones(2, 2, 3, dtype=dtype, device=device))
        torch.ones(4, 4, dtype=dtype, device=device) @ torch.ones(4, 4, dtype=dtype, device=device)
        return True
    except (RuntimeError, TypeError, NotImplementedError):
        return False


def package_version(package: str) -> str:
    """An installed distribution's version, or "missing"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def hub_identity(repo_id: str) -> str:
    """``hub:<id>``, plus ``@<commit>`` of the locally cached snapshot the id resolves to (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(repo_id, "config.json")
    except Exception:
        return f"hub:{repo_id}"
    return f"hub:{repo_id}" + (f"@{Path(cached).parent.name[:12]}" if isinstance(cached, str) else "")


Part = tuple[str, Path, frozenset[str]]
"""One folder of a checkpoint: a tag, the folder, top-level names in it to leave out."""


def directory_identity(parts: Sequence[Part], *, prefix: str = "dir",
                       contents: Callable[[Path], bytes] | None = None) -> str:
    """``<prefix>:`` + a short hash of a checkpoint's content, never its location: per folder of
    ``parts``, every file's relative name and size, the contents of files up to 16 MiB
    (``contents(path)`` when given, e.g. a config with a recorded path taken out; its length
    stands for the file's size) and the first and last MiB of larger ones (weights), with
    their size. Hidden files are skipped. Cached per process by the
    files' names, sizes and modification times, so a second call reads nothing."""
    listings = tuple((tag, str(folder.resolve()), _listing(folder, excluded)) for tag, folder, excluded in parts)
    key = (prefix, getattr(contents, "__qualname__", None), listings)
    with _DIGESTS_LOCK:
        cached = _DIGESTS.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for tag, root, listing in listings:
        if tag:
            digest.update(f"{tag}\0".encode())
        for name, size, _ in listing:
            path = Path(root) / name
            if size <= FULL_HASH_LIMIT_BYTES:
                data = contents(path) if contents is not None else path.read_bytes()
                digest.update(f"{name}\0{len(data)}\0".encode())
                digest.update(data)
                continue
            digest.update(f"{name}\0{size}\0".encode())
            with open(path, "rb") as handle:
                digest.update(handle.read(EDGE_HASH_BYTES))
                handle.seek(size - EDGE_HASH_BYTES)
                digest.update(handle.read(EDGE_HASH_BYTES))
    result = f"{prefix}:{digest.hexdigest()[:16]}"
    with _DIGESTS_LOCK:
        _DIGESTS[key] = result
    return result


def _listing(folder: Path, excluded: Iterable[str]) -> tuple[tuple[str, int, int], ...]:
    excluded = set(excluded)
    files = []
    for path in folder.rglob("*"):
        parts = path.relative_to(folder).parts
        if parts[0] in excluded or any(part.startswith(".") for part in parts) or not path.is_file():
            continue
        stat = path.stat()
        files.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    return tuple(sorted(files))


_DIGESTS: dict[tuple, str] = {}
_DIGESTS_LOCK = threading.Lock()
