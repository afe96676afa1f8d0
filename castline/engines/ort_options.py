"""onnxruntime session options shared by the ONNX engines (hibari, piper)."""

from __future__ import annotations

from pathlib import Path


def session_options(threads: int = 1):
    """``onnxruntime.SessionOptions`` with ``threads`` intra- and inter-op threads, quiet logs, and
    no CPU memory arena (nor the memory patterns planned for fixed shapes).

    Every sentence is a new input length, and the arena keeps the largest working set it has
    ever held, fragmented, so it grows with the programme: 60 demo-script lines took a piper
    session from 411 to 573 MB with it and from 275 to 244 MB without, hibari from 237 to 290 MB
    and from 220 to 238 MB (process RSS). The audio is the same: the arena decides where tensors
    live, not what is computed. One intra-op thread: each calling worker thread runs its own call,
    in parallel with the others' (measured: piper RTF 0.066 with 1 thread vs 0.14 with 2 on 2 cores).
    """
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.log_severity_level = 3
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return options


def session_from_bytes(graph: bytes, threads: int = 1):
    """A CPU ``InferenceSession`` for a serialised ONNX graph, with ``session_options(threads)``.

    onnxruntime's Python class keeps the bytes it was given for as long as the session lives (to
    rebuild the session if its providers are changed, which castline never does), although the
    session holds its own copy of the weights: for piper's voice that was 54 MB held twice. The
    reference is dropped here; nothing else reads it."""
    import onnxruntime

    session = onnxruntime.InferenceSession(graph, sess_options=session_options(threads),
                                           providers=["CPUExecutionProvider"])
    if getattr(session, "_model_bytes", None) is graph:
        session._model_bytes = None
    return session


def session_from_path(graph: Path, threads: int = 1):
    """A CPU ``InferenceSession`` for the ONNX graph in file ``graph``, with
    ``session_options(threads)``; onnxruntime reads the file itself (no copy of it in Python)."""
    import onnxruntime

    return onnxruntime.InferenceSession(str(graph), sess_options=session_options(threads),
                                        providers=["CPUExecutionProvider"])
