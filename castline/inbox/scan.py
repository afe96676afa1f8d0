"""An inbox of scripts (a folder or an S3 prefix): which to render, and what became of each.

Scripts are identified by the SHA-256 of their content, not their name: the same content is
rendered once however often it is copied or renamed, and an edited script is new work (its
unchanged chunks still come from the chunk cache). What became of each content hash is a small
JSON record in the *output* store, ``_cache/inbox/<sha256>.json``, so the inbox itself may be
read-only and several schedulers pointed at the same output agree on what is done.

A failure caused by the script itself (a ``CastlineError``: bad YAML, unknown voice…) is
permanent: the same content is not tried again. Any other failure (storage outage, killed
worker) is retried on later scans, up to ``max_attempts`` in all.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath

from castline.core.errors import StorageError
from castline.storage import Store

SCRIPT_SUFFIXES = (".yaml", ".yml", ".txt")
STATUS_PREFIX = "_cache/inbox"


@dataclass(frozen=True)
class InboxScript:
    """One script in the inbox: its key there, URI and content SHA-256."""

    key: str
    uri: str
    sha256: str


@dataclass(frozen=True)
class InboxRecord:
    """What happened to one script content. ``status``: ``done`` or ``failed``; ``permanent``: a
    failure the script itself caused (not retried); ``attempts``: renders tried so far."""

    sha256: str
    script: str
    status: str
    attempts: int
    permanent: bool = False
    error: str = ""
    manifest: str = ""
    finished_at: str = ""


def scan_inbox(inbox: Store) -> list[InboxScript]:
    """Every script in the inbox (by suffix), sorted by key; castline's own records are skipped."""
    scripts = []
    for key in inbox.list():
        if key.startswith("_cache/") or PurePosixPath(key).suffix.lower() not in SCRIPT_SUFFIXES:
            continue
        info = inbox.info(key)
        scripts.append(InboxScript(key=key, uri=info.uri, sha256=info.sha256))
    return scripts


def status_key(sha256: str) -> str:
    return f"{STATUS_PREFIX}/{sha256}.json"


def read_record(out: Store, sha256: str) -> InboxRecord | None:
    """The record for a script content, or None if it was never tried."""
    try:
        data = json.loads(out.get_bytes(status_key(sha256)))
        return InboxRecord(**data)
    except StorageError:
        return None
    except (ValueError, TypeError):
        return None  # an unreadable record is treated as never tried


def due(out: Store, scripts: list[InboxScript], max_attempts: int) -> list[InboxScript]:
    """Scripts to render now: never tried, or failed for a passing reason with attempts left.

    The same content found under two names is rendered once (the first key)."""
    chosen: dict[str, InboxScript] = {}
    for script in scripts:
        if script.sha256 in chosen:
            continue
        record = read_record(out, script.sha256)
        if record is None or (record.status == "failed" and not record.permanent and record.attempts < max_attempts):
            chosen[script.sha256] = script
    return list(chosen.values())


def write_record(out: Store, script: InboxScript, *, succeeded: bool, manifest: str = "", error: str = "",
                 permanent: bool = False) -> InboxRecord:
    """Record the outcome of one render attempt (the attempt count carries over)."""
    previous = read_record(out, script.sha256)
    record = InboxRecord(sha256=script.sha256, script=script.uri, status="done" if succeeded else "failed",
                         attempts=(previous.attempts if previous else 0) + 1, permanent=permanent,
                         error=error, manifest=manifest,
                         finished_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    out.put_bytes((json.dumps(asdict(record), indent=2) + "\n").encode("utf-8"), status_key(script.sha256))
    return record
