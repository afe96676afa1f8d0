"""Flow: cue sheets in (one per language), dubbed mixes out, every language in parallel."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from typing import Sequence

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from castline.dub.options import DubOptions
from castline.dub.pipeline import now_utc
from castline.dub.plan import LanguagePlan
from castline.engines.pool import release_all
from castline.dub.takes_qa import enforce
from castline_tasks.dub import (encode_dub, hear_dub, mix_dub, mux_dubbed_video, plan_dub, publish_dub, publish_dub_qa,
                                voice_cues)


@flow(name="dub-programme", task_runner=ThreadPoolTaskRunner(max_workers=4))
def dub_programme(options: DubOptions, prepared: str | None = None) -> dict[str, str]:
    """Dub ``options.cues`` over ``options.background``; returns each language's manifest URI (and,
    with ``video``, the dubbed video's record under "picture").

    ``options`` is the one typed value a dub takes (Prefect validates it and stores it as JSON).
    The command line plans every language before Prefect starts (bad input fails in one line) and
    hands its plans over through ``run_dub``: ``prepared`` is the id under which ``run_dub`` holds
    them in this process, so the flow does not plan again; without one the flow plans itself.

    With ``qa`` on, every language's takes are heard (and failing ones re-rendered) before any
    language is mixed, so ``qa="strict"`` publishes nothing while a take fails.

    Languages run side by side (voice → mix → encode → publish as chained tasks per language);
    the task runner's ``max_workers`` bounds how many tasks run at once (``run_dub`` sizes it).
    """
    logger = get_run_logger()
    handed_over = _PREPARED.get(prepared) if prepared else None
    plans = (handed_over[1] if handed_over is not None and handed_over[0] == options
             else plan_dub(options))
    started = now_utc()
    work_dir = tempfile.mkdtemp(prefix="castline-dub-")
    try:
        voiced = {plan.language: voice_cues.submit(plan, work_dir) for plan in plans}
        ready, qa_files = dict(voiced), {}
        if options.qa != "off":
            heard = {plan.language: hear_dub.submit(plan, voiced[plan.language], work_dir) for plan in plans}
            # The voicing result first: a voicing failure (e.g. --overrun fail) surfaces as itself.
            results = {language: (voiced[language].result(), future.result())[1] for language, future in heard.items()}
            enforce([result for _, result in results.values() if result is not None])
            ready = {language: kept for language, (kept, _) in results.items()}
            qa_files = {plan.language: publish_dub_qa.submit(plan, results[plan.language][1]) for plan in plans}
        chains = {}
        for plan in plans:
            mixed = mix_dub.submit(plan, ready[plan.language], work_dir)
            encoded = [encode_dub.submit(plan, mixed, fmt, work_dir) for fmt in options.formats]
            published = publish_dub.submit(plan, ready[plan.language], mixed, encoded, started)
            extra = [qa_files[plan.language]] if plan.language in qa_files else []
            chains[plan.language] = [voiced[plan.language], *extra, mixed, *encoded, published]
        for future in voiced.values():
            future.wait()
        release_all()
        # Each step's result in order, so a failure surfaces as its own error (a later step of
        # that language never runs: asking for its result would only say it is still pending).
        uris = {language: [future.result() for future in chain][-1].uri for language, chain in chains.items()}
        if plans[0].picture is not None:
            uris["picture"] = mux_dubbed_video(plans, work_dir).uri
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for language, uri in uris.items():
        logger.info("published %s: %s", language, uri)
    return uris


_PREPARED: dict[str, tuple[DubOptions, tuple[LanguagePlan, ...]]] = {}
"""Plans ``run_dub`` hands to the flow it starts in this process, by id (see ``dub_programme``)."""


def run_dub(options: DubOptions, plans: Sequence[LanguagePlan] | None = None) -> dict[str, str]:
    """Run the flow with enough workers for every language at once; returns manifest URIs by language.

    ``plans``: ``prepare_dub(options)`` as the caller already made it (the flow then does not plan again)."""
    runner = ThreadPoolTaskRunner(max_workers=max(2, 2 * len(options.cues)))
    handle = None
    if plans is not None:
        handle = uuid.uuid4().hex
        _PREPARED[handle] = (options, tuple(plans))
    try:
        return dub_programme.with_options(task_runner=runner)(options=options, prepared=handle)
    finally:
        if handle is not None:
            _PREPARED.pop(handle, None)
