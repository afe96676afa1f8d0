"""Render inputs that may live in object storage: local copies of the script and voices folder."""

from __future__ import annotations

import dataclasses
from contextlib import ExitStack, contextmanager
from typing import Iterator

from castline.render.options import RenderOptions
from castline.storage.inputs import fetch_input


@contextmanager
def local_inputs(options: RenderOptions) -> Iterator[RenderOptions]:
    """``options`` with ``script`` and ``voices_dir`` as local paths for the ``with`` block.

    Local paths pass through untouched; ``s3://`` ones are downloaded (and deleted afterwards)."""
    with ExitStack() as stack:
        script = stack.enter_context(fetch_input(options.script))
        voices = stack.enter_context(fetch_input(options.voices_dir)) if options.voices_dir else None
        yield dataclasses.replace(options, script=str(script), voices_dir=str(voices) if voices else None)
