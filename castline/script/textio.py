"""Read a script file as text: size and binary checks, strict UTF-8, LF line endings."""

from __future__ import annotations

import os
from pathlib import Path

from castline.core.errors import ScriptError

MAX_SCRIPT_BYTES = 5 * 1024 * 1024
"""Largest script file accepted, in bytes (a 100-minute script is ~110 KB)."""

_UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192
_MAX_CONTROL_RATIO = 0.05

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive or office document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"RIFF", "a RIFF/WAV file"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg file"),
    (b"fLaC", "a FLAC file"),
    (b"\x7fELF", "an executable"),
)

# Bytes that never occur in a hand-written script (tab, LF, VT, FF, CR and ESC excluded).
_CONTROL_BYTES = frozenset(range(0x00, 0x09)) | frozenset(range(0x0E, 0x1B)) | {
    0x1C, 0x1D, 0x1E, 0x1F, 0x7F}


def read_script_text(path: str | os.PathLike[str]) -> str:
    """Return the text of the script at ``path``, decoded as UTF-8 with LF line endings.

    Raises ``ScriptError`` (one line, naming the file) for a missing or unreadable file, a
    file over ``MAX_SCRIPT_BYTES``, a binary file, or bytes that are not UTF-8.
    """
    source = os.fspath(path)
    data = _read_bytes(Path(source), source)
    return decode_script_bytes(data, source)


def decode_script_bytes(data: bytes, source: str) -> str:
    """Decode script bytes strictly as UTF-8 (a leading BOM is dropped); CRLF/CR become LF.

    ``source`` is only used in error messages.
    """
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ScriptError("is UTF-16 encoded; save it as UTF-8", source=source)
    kind = binary_kind(data)
    if kind is not None:
        suffix = f" (looks like {kind})" if kind != "binary" else ""
        raise ScriptError(f"is a binary file, not a script{suffix}", source=source)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _line_and_column(data, exc.start)
        raise ScriptError(
            f"is not valid UTF-8: byte 0x{data[exc.start]:02X} at column {column} "
            "(save the file as UTF-8)",
            source=source, line=line) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def binary_kind(data: bytes) -> str | None:
    """A short description if ``data`` is clearly not text ("a PNG image", "binary"), else None."""
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    sample = data[:_SNIFF_BYTES]
    if b"\x00" in sample:
        return "binary"
    controls = sum(1 for byte in sample if byte in _CONTROL_BYTES)
    if sample and controls / len(sample) > _MAX_CONTROL_RATIO:
        return "binary"
    return None


def _read_bytes(path: Path, source: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SCRIPT_BYTES + 1)
    except FileNotFoundError as exc:
        raise ScriptError("no such script file", source=source) from exc
    except IsADirectoryError as exc:
        raise ScriptError("is a directory, not a script file", source=source) from exc
    except PermissionError as exc:
        raise ScriptError("cannot be read: permission denied", source=source) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ScriptError(f"cannot be read: {reason}", source=source) from exc
    if len(data) > MAX_SCRIPT_BYTES:
        raise ScriptError(
            f"is larger than {MAX_SCRIPT_BYTES // (1024 * 1024)} MB; a script is plain text",
            source=source)
    return data


def _line_and_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line (CRLF, CR and LF each end one line) and character column of ``offset``."""
    before = data[:offset]
    line = before.count(b"\n") + before.count(b"\r") - before.count(b"\r\n") + 1
    line_start = max(before.rfind(b"\n"), before.rfind(b"\r")) + 1
    return line, len(before[line_start:].decode("utf-8", errors="replace")) + 1
