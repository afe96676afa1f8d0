"""One language's dub as plain calls (no Prefect): voice → mix → encode → publish. The flow
runs the same steps as tasks; tests and the benchmark call this."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from castline.dub.mix import deliver_format, mix_language
from castline.dub.picture import deliver_picture
from castline.dub.plan import LanguagePlan
from castline.dub.publish import publish_language
from castline.dub.takes_qa import enforce, hear_language, publish_qa
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
    voiced, heard = hear_takes(plan, voiced, store, work_dir)
    if heard is not None:
        enforce([heard])
        publish_qa(store, plan, heard)
    return finish_language(plan, voiced, work_dir, started)


def hear_takes(plan: LanguagePlan, voiced, store, work_dir: str | Path):
    """QA every take when ``options.qa`` is on (``castline.dub.takes_qa``); ``(voiced, None)`` when off."""
    if plan.options.qa == "off":
        return voiced, None
    from castline.qa.asr import release_transcribers
    from castline.qa.settings import QASettings

    try:
        return hear_language(plan, voiced, store, work_dir, QASettings(policy=plan.options.qa))
    finally:
        release_transcribers()


def dub_programme(plans: tuple[LanguagePlan, ...], work_dir: str | Path) -> dict[str, ObjectInfo]:
    """Every language, then the dubbed video (plain calls, no Prefect): voices and QA for all
    languages first, so ``--qa strict`` publishes nothing when any take still fails."""
    started = now_utc()
    heard_all = []
    for plan in plans:
        store = open_store(plan.options.out)
        voiced = voice_language(plan, store, work_dir)
        release_all()
        voiced, heard = hear_takes(plan, voiced, store, work_dir)
        heard_all.append((plan, voiced, heard))
    enforce([heard for _, _, heard in heard_all if heard is not None])
    published = {}
    for plan, voiced, heard in heard_all:
        if heard is not None:
            publish_qa(open_store(plan.options.out), plan, heard)
        published[plan.language] = finish_language(plan, voiced, work_dir, started)
    if plans and plans[0].picture is not None:
        published["picture"] = deliver_picture(plans, work_dir).record
    return published


def finish_language(plan: LanguagePlan, voiced, work_dir: str | Path, started: str) -> ObjectInfo:
    """Mix, encode and publish one voiced language."""
    store = open_store(plan.options.out)
    mixed = mix_language(plan, voiced, work_dir)
    encoded = [deliver_format(plan, mixed, fmt, work_dir) for fmt in plan.options.formats]
    return publish_language(store, plan, voiced, mixed, encoded, started, now_utc())
