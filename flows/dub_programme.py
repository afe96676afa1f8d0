"""Flow: cue sheets in (one per language), dubbed mixes out, every language in parallel."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from typing import Any

from prefect import flow, get_run_logger
from prefect.task_runners import ThreadPoolTaskRunner

from castline.dub.options import DubOptions, DuckSettings, FitSettings
from castline.dub.pipeline import now_utc
from castline.engines.base import EngineOptions
from castline.engines.pool import release_all
from castline_tasks.dub import encode_dub, mix_dub, plan_dub, publish_dub, voice_cues


@flow(name="dub-programme", task_runner=ThreadPoolTaskRunner(max_workers=4))
def dub_programme(cues: list[str], languages: list[str] | None = None, background: str | None = None,
                  cast: str | None = None, out: str = "output", programme: str | None = None,
                  preset: str = "ebu-r128", formats: list[str] | None = None, fit: dict[str, Any] | None = None,
                  duck: dict[str, Any] | None = None, dialogue_lufs: float = -23.0,
                  match_dialogue: str | None = None, voices_dir: str | None = None, seed: int = 0,
                  engine_options: dict[str, Any] | None = None) -> dict[str, str]:
    """Dub ``cues`` over ``background``; returns each language's manifest URI.

    Languages run side by side (voice → mix → encode → publish as chained tasks per language);
    the task runner's ``max_workers`` bounds how many tasks run at once (``run_dub`` sizes it).
    """
    logger = get_run_logger()
    options = DubOptions(cues=tuple(cues), languages=tuple(languages or ()), background=background, cast=cast,
                         out=out, programme=programme, preset=preset, formats=tuple(formats or ["wav"]),
                         fit=FitSettings(**(fit or {})), duck=DuckSettings(**(duck or {})),
                         dialogue_lufs=dialogue_lufs, match_dialogue=match_dialogue, voices_dir=voices_dir,
                         seed=seed, engine_options=EngineOptions(**(engine_options or {})))
    plans = plan_dub(options)
    started = now_utc()
    work_dir = tempfile.mkdtemp(prefix="castline-dub-")
    try:
        voiced = {plan.language: voice_cues.submit(plan, work_dir) for plan in plans}
        chains = {}
        for plan in plans:
            mixed = mix_dub.submit(plan, voiced[plan.language], work_dir)
            encoded = [encode_dub.submit(plan, mixed, fmt, work_dir) for fmt in options.formats]
            published = publish_dub.submit(plan, voiced[plan.language], mixed, encoded, started)
            chains[plan.language] = [voiced[plan.language], mixed, *encoded, published]
        for future in voiced.values():
            future.wait()
        release_all()
        # Each step's result in order, so a failure surfaces as its own error (a later step of
        # that language never runs: asking for its result would only say it is still pending).
        uris = {language: [future.result() for future in chain][-1].uri for language, chain in chains.items()}
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    for language, uri in uris.items():
        logger.info("published %s: %s", language, uri)
    return uris


def run_dub(options: DubOptions) -> dict[str, str]:
    """Run the flow with enough workers for every language at once; returns manifest URIs by language."""
    runner = ThreadPoolTaskRunner(max_workers=max(2, 2 * len(options.cues)))
    return dub_programme.with_options(task_runner=runner)(
        cues=list(options.cues), languages=list(options.languages) or None, background=options.background,
        cast=options.cast, out=options.out, programme=options.programme, preset=options.preset,
        formats=list(options.formats), fit=dataclasses.asdict(options.fit), duck=dataclasses.asdict(options.duck),
        dialogue_lufs=options.dialogue_lufs, match_dialogue=options.match_dialogue, voices_dir=options.voices_dir,
        seed=options.seed, engine_options=dataclasses.asdict(options.engine_options))
