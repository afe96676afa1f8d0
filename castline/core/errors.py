"""User-facing errors: one line naming the file, line or field."""

from __future__ import annotations


class CastlineError(Exception):
    """A problem the user can fix (bad input, missing voice, bad option).

    The CLI prints ``str(error)`` as one line and exits non-zero, never a traceback.
    """

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.source = source
        self.line = line
        self.field = field
        super().__init__(self.format())

    def format(self) -> str:
        where = ""
        if self.source:
            where = self.source
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        elif self.line is not None:
            where = f"line {self.line}: "
        what = f"{self.field}: " if self.field else ""
        return " ".join(f"{where}{what}{self.message}".split())


class ScriptError(CastlineError):
    """The script file cannot be used as written."""


class VoiceError(CastlineError):
    """A voice profile is missing, invalid or not usable here."""


class EngineError(CastlineError):
    """An engine is unknown, not installed, or failed on an input."""


class StorageError(CastlineError):
    """A storage location is invalid or an object cannot be read or written."""


class DeliveryError(CastlineError):
    """An encoded file cannot be brought inside its delivery spec."""


class DubError(CastlineError):
    """A cue file, cast or dubbing setting cannot be used as written (names the file and line)."""
