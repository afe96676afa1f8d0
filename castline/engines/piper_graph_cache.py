"""Piper voices' rewritten graphs (``castline.engines.piper_graph``), made once and kept on disk.

Rewriting a voice's graph (noise fed from outside, cut at its decoder) imports the ``onnx``
package, which a process then keeps (15 MB of RSS), and parses, rewrites and serialises the voice's
weights several times over. So the graphs are written once under
``$CASTLINE_HOME/cache/piper-graphs/<key>/`` and a later process hands their files straight to
onnxruntime; the key is a hash of the voice file's SHA-256 (as in the engine's identity), onnx's version, ``NOISE_METHOD``
(how the noise is fed) and this module's format. The graphs are the same bytes either way.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from castline.core.atomic import atomic_folder
from castline.core.hashing import content_hash, file_digest
from castline.core.runtime import castline_home
from castline.engines.piper_graph import DecoderLayout

CACHE_SUBDIR = "piper-graphs"
GRAPHS_FORMAT = 1
"""Raised whenever what is stored changes, so that older graphs are not read."""
RECORD_NAME = "graphs.json"
_build_lock = threading.Lock()


@dataclass(frozen=True)
class VoiceGraphs:
    """A voice's graphs as files: ``front`` and ``decoder`` (the graph cut at its decoder, with
    its ``layout``) or, when it could not be cut, ``whole``; ``noise_inputs``: the inputs that
    take the noise, in node order. Each path is None where that graph does not exist."""

    noise_inputs: tuple[str, ...]
    whole: Path | None = None
    front: Path | None = None
    decoder: Path | None = None
    layout: DecoderLayout | None = None


def voice_graphs(model_path: Path, noise_method: str, cache_root: Path | None = None) -> VoiceGraphs | None:
    """The rewritten graphs of the Piper voice ``model_path``, read from the cache or made and
    stored there; None when they cannot be stored (the caller rewrites the graph in memory).
    ``cache_root`` defaults to ``$CASTLINE_HOME/cache/piper-graphs``; graphs whose record fails are
    made again."""
    key = content_hash({"model": file_digest(str(model_path)), "onnx": importlib.metadata.version("onnx"),
                        "noise": noise_method, "format": GRAPHS_FORMAT})
    folder = (cache_root or castline_home() / "cache" / CACHE_SUBDIR) / key
    with _build_lock:
        graphs = _read(folder)
        if graphs is None:
            shutil.rmtree(folder, ignore_errors=True)
            try:
                _write(model_path, folder)
            except OSError:
                return None
            graphs = _read(folder)
        return graphs


def _read(folder: Path) -> VoiceGraphs | None:
    try:
        record = json.loads((folder / RECORD_NAME).read_text(encoding="utf-8"))
        if record["format"] != GRAPHS_FORMAT:
            return None
        paths = {}
        for name in ("whole", "front", "decoder"):
            if record["bytes"].get(name) is None:
                paths[name] = None
                continue
            path = folder / f"{name}.onnx"
            if path.stat().st_size != record["bytes"][name]:
                return None
            paths[name] = path
        layout = record["layout"]
        return VoiceGraphs(tuple(record["noise_inputs"]), layout=None if layout is None else DecoderLayout(
            tuple(layout["decoder_inputs"]), layout["latent"], layout["decoder_output"], int(layout["hop"]),
            int(layout["reach_frames"])), **paths)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(model_path: Path, folder: Path) -> None:
    """Make the graphs into a temporary folder beside ``folder``, then rename it into place, so a
    reader sees all of them or none."""
    from castline.engines.piper_graph import explicit_noise_model, split_at_decoder

    with atomic_folder(folder) as staging:
        graph, noise_inputs = explicit_noise_model(model_path)
        split = split_at_decoder(graph)
        graphs = {"whole": graph} if split is None else {"front": split.front, "decoder": split.decoder}
        del graph
        for name, data in graphs.items():
            (staging / f"{name}.onnx").write_bytes(data)
        record = {"format": GRAPHS_FORMAT, "noise_inputs": list(noise_inputs),
                  "bytes": {name: len(data) for name, data in graphs.items()},
                  "layout": None if split is None else {**asdict(split.layout),
                                                        "decoder_inputs": list(split.layout.decoder_inputs)}}
        (staging / RECORD_NAME).write_text(json.dumps(record), encoding="utf-8")
