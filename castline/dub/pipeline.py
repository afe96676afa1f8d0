"""One language's dub as plain calls (no Prefect): voice → mix → encode → publish. The flow
runs the same steps as tasks; tests and the benchmark call this."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from castline.dub.mix import deliver_format, mix_language
from castline.dub.plan import LanguagePlan
from castline.dub.publish import publish_language
from castline.dub.voicing import voice_language
from castline.engines.pool import release_all
from castline.storage import ObjectInfo, open_store


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def artifact_key(programme: str, language: str) -> str:
    """The Prefect artifact key of a language's timing table (lowercase letters, digits, dashes)."""
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", f"dub-timing-{programme}-{language}".lower())).strip("-")


def dub_language(plan: LanguagePlan, work_dir: str | Path) -> ObjectInfo:
    """Dub one language into ``plan.options.out``; returns the published manifest."""
    started = now_utc()
    store = open_store(plan.options.out)
    voiced = voice_language(plan, store, work_dir)
    release_all()
    mixed = mix_language(plan, voiced, work_dir)
    encoded = [deliver_format(plan, mixed, fmt, work_dir) for fmt in plan.options.formats]
    return publish_language(store, plan, voiced, mixed, encoded, started, now_utc())
