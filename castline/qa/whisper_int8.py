"""Whisper models kept on disk as CTranslate2 runs them at int8, so that loading one only reads it.

CTranslate2 loads a float16 Whisper at ``compute_type="int8"`` by quantising its weights in memory:
the float16 file, float32 copies and the int8 result meet, and RSS rises for about half a second
by 273 MB for Whisper base (165 MB for tiny.en), against 100 MB (67 MB) when the file is int8
already. A render loads Whisper while its other worker thread is synthesising, so that moment
can be the render's highest.

So the bundled models are quantised once, exactly as CTranslate2 quantises them on load, and kept
under ``$CASTLINE_HOME/cache/whisper-int8/<key>/``: every linear and embedding weight int8 with
its per-row scale, everything else as the source stores it. The encoder's two convolutions stay
float16: CTranslate2 does not quantise them on load, and quantising them changes the encoder's
output. The copy computes the same numbers, bit for bit (``tests/test_whisper_int8.py``).

CTranslate2's Python package describes a model (``ctranslate2.specs``), quantises it and writes
``model.bin``, but has no reader; ``read_model_bin`` is that reader, the inverse of
``ModelSpec._serialize``. Quantising and writing use CTranslate2's own code (private methods,
so the version is pinned and the test above guards them).
"""

from __future__ import annotations

import json
import shutil
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from castline.core.atomic import atomic_folder
from castline.core.hashing import content_hash
from castline.core.runtime import castline_home

CACHE_SUBDIR = "whisper-int8"
INT8_FORMAT = 1
"""Raised whenever what is stored changes, so that older copies are not read."""
COMPANION_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
RECORD_NAME = "int8.json"
BINARY_VERSION = 6
"""The ``model.bin`` layout read here (CTranslate2 4.x writes version 6)."""
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
"""CTranslate2's ``DataType`` ids (``include/ctranslate2/types.h``); 5, bfloat16, has no numpy type."""
_build_lock = threading.Lock()


@dataclass(frozen=True)
class ModelBin:
    """The contents of a CTranslate2 ``model.bin``: the spec's name and revision, its variables
    by scoped name (``encoder/layer_0/ffn/linear_0/weight``), and aliases (name → variable name)."""

    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str]


def read_model_bin(path: Path) -> ModelBin:
    """Read a ``model.bin`` written by CTranslate2 (layout ``BINARY_VERSION``). The arrays are
    read-only views of a memory map of the file. ``ValueError`` on any other layout."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    offset = 0

    def number(fmt: str) -> int:
        nonlocal offset
        (value,) = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return value

    def take(size: int) -> np.ndarray:
        nonlocal offset
        if offset + size > data.size:
            raise ValueError(f"{path}: model.bin ends early")
        offset += size
        return data[offset - size:offset]

    def string() -> str:
        return bytes(take(number("H"))[:-1]).decode("utf-8")  # the size counts a trailing NUL

    try:
        version = number("I")
        if version != BINARY_VERSION:
            raise ValueError(f"{path}: model.bin layout {version}, expected {BINARY_VERSION}")
        spec_name, revision = string(), number("I")
        variables = {}
        for _ in range(number("I")):
            name = string()
            shape = tuple(number("I") for _ in range(number("B")))
            type_id, size = number("B"), number("I")
            if type_id not in _DTYPES:
                raise ValueError(f"{path}: variable {name} has data type {type_id}, not readable here")
            dtype = np.dtype(_DTYPES[type_id])
            if size != dtype.itemsize * int(np.prod(shape, dtype=np.int64)):
                raise ValueError(f"{path}: variable {name} has {size} bytes for shape {shape}")
            variables[name] = take(size).view(dtype).reshape(shape)
        aliases = {}
        for _ in range(number("I")):
            alias = string()
            aliases[alias] = string()
    except struct.error as error:
        raise ValueError(f"{path}: model.bin ends early") from error
    if offset != data.size:
        raise ValueError(f"{path}: {data.size - offset} bytes after the model")
    return ModelBin(spec_name, revision, variables, aliases)


def stored_int8_copy(source_sha256: str, cache_root: Path | None = None) -> Path | None:
    """The int8 copy of the model whose ``model.bin`` has SHA-256 ``source_sha256``, when a whole
    one is stored (``int8_model_dir`` makes it); None otherwise."""
    folder = _copy_folder(source_sha256, cache_root)
    return folder if _copy_is_whole(folder) else None


def int8_model_dir(source_dir: Path, source_sha256: str, cache_root: Path | None = None) -> Path:
    """The int8 copy of the CTranslate2 Whisper model in ``source_dir`` (see the module), made the
    first time and kept. ``source_sha256``: the SHA-256 of ``source_dir/model.bin``, which the
    caller already knows (the key; the file is not hashed again here).

    ``cache_root``: where copies are kept (default ``$CASTLINE_HOME/cache/whisper-int8``). A copy
    that fails its record is made again; when none can be made or written, ``source_dir`` is
    returned: it computes the same numbers, only its load takes more memory."""
    folder = _copy_folder(source_sha256, cache_root)
    with _build_lock:
        if _copy_is_whole(folder):
            return folder
        shutil.rmtree(folder, ignore_errors=True)
        try:
            _write_copy(Path(source_dir), folder)
        except (OSError, ValueError, KeyError, AttributeError, IndexError, TypeError):  # unwritable, or unexpected
            return Path(source_dir)
    return folder if _copy_is_whole(folder) else Path(source_dir)


def _copy_folder(source_sha256: str, cache_root: Path | None) -> Path:
    import ctranslate2

    key = content_hash({"source": source_sha256, "format": INT8_FORMAT, "ctranslate2": ctranslate2.__version__})
    return (cache_root or castline_home() / "cache" / CACHE_SUBDIR) / key


def _copy_is_whole(folder: Path) -> bool:
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
        return all((folder / name).stat().st_size == size for name, size in record["bytes"].items())
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        return False


def _write_copy(source_dir: Path, folder: Path) -> None:
    """Quantise into a temporary folder beside ``folder``, then rename it into place, so a reader
    sees a whole copy or none."""
    with atomic_folder(folder) as staging:
        spec = _int8_spec(source_dir)
        spec._serialize(str(staging / "model.bin"))
        del spec
        for name in COMPANION_FILES:
            shutil.copyfile(source_dir / name, staging / name)
        sizes = {name: (staging / name).stat().st_size for name in ("model.bin", *COMPANION_FILES)}
        (staging / RECORD_NAME).write_text(json.dumps({"format": INT8_FORMAT, "bytes": sizes}), encoding="utf-8")


def _int8_spec(source_dir: Path):
    """The source model as a ``WhisperSpec``, its linear and embedding weights quantised to int8."""
    from ctranslate2.specs.whisper_spec import WhisperSpec

    model = read_model_bin(source_dir / "model.bin")
    if model.spec_name != "WhisperSpec":
        raise ValueError(f"{source_dir}: a {model.spec_name}, not a Whisper model")
    variables = model.variables
    spec = WhisperSpec(_layer_count(variables, "encoder"), int(variables["encoder/num_heads"]),
                       _layer_count(variables, "decoder"), int(variables["decoder/num_heads"]))
    for name, value in [*variables.items(), *((alias, variables[target]) for alias, target in model.aliases.items())]:
        node, attribute = _spec_node(spec, name)
        if not hasattr(node, attribute):
            raise ValueError(f"{source_dir}: variable {name} has no place in this CTranslate2's WhisperSpec")
        setattr(node, attribute, value[()] if value.ndim == 0 else value)
    tokens = (source_dir / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    spec.register_vocabulary(tokens[:-1] if tokens[-1] == "" else tokens)  # only checked against the embeddings
    spec.validate()
    spec._alias_variables()
    # Float 2-D weights only: what CTranslate2 quantises on load (the convolutions' are 3-D).
    spec._quantize("int8", variable_filter=lambda name: name in variables and variables[name].ndim == 2
                   and variables[name].dtype.kind == "f")
    return spec


def _layer_count(variables: dict[str, np.ndarray], stack: str) -> int:
    indexes = {name.split("/")[1][len("layer_"):] for name in variables if name.startswith(f"{stack}/layer_")}
    return 1 + max(int(index) for index in indexes if index.isdigit())


def _spec_node(spec, name: str):
    """The spec object holding variable ``name`` and the attribute's name there; ``linear_1`` is
    element 1 of the spec's list ``linear``."""
    *scopes, attribute = name.split("/")
    node = spec
    for scope in scopes:
        stem, _, index = scope.rpartition("_")
        node = getattr(node, stem)[int(index)] if not hasattr(node, scope) and index.isdigit() else getattr(node, scope)
    return node, attribute
