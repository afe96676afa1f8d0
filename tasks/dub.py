"""Tasks for dubbing a programme. Each body is a library call or two; audio stays in files."""

from __future__ import annotations

from typing import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NONE

from castline.dub.manifest import fit_summary, timing_table
from castline.dub.mix import MixResult, deliver_format, mix_language
from castline.dub.options import DubOptions
from castline.dub.pipeline import artifact_key, hear_takes, now_utc
from castline.dub.picture import deliver_picture
from castline.dub.takes_qa import LanguageQA, publish_qa
from castline.dub.plan import LanguagePlan, prepare_dub
from castline.dub.publish import publish_language
from castline.dub.voicing import VoicedLanguage, voice_language
from castline.audio.encode import EncodedFile
from castline.core.errors import CastlineError
from castline.storage import ObjectInfo, open_store

# Engine takes are cached by content hash in the store (castline.dub.voicing); Prefect's own
# result cache would duplicate that, so it is off (NONE), as in tasks/render.py.


@task(name="plan-dub", cache_policy=NONE)
def plan_dub(options: DubOptions) -> tuple[LanguagePlan, ...]:
    plans = prepare_dub(options)
    get_run_logger().info("planned %s", ", ".join(f"{plan.language}: {len(plan.units)} cues" for plan in plans))
    return plans


def _retry_unless_user_error(task, task_run, state) -> bool:
    """Retry a failed engine call once; never a refusal the user must act on (e.g. --overrun fail)."""
    try:
        state.result()
    except CastlineError:
        return False
    except Exception:
        return True
    return True


@task(name="voice-cues", cache_policy=NONE, retries=1, retry_delay_seconds=2,
      retry_condition_fn=_retry_unless_user_error)
def voice_cues(plan: LanguagePlan, work_dir: str) -> VoicedLanguage:
    return voice_language(plan, open_store(plan.options.out), work_dir)


@task(name="mix-dub", cache_policy=NONE)
def mix_dub(plan: LanguagePlan, voiced: VoicedLanguage, work_dir: str) -> MixResult:
    return mix_language(plan, voiced, work_dir)


@task(name="encode-dub", cache_policy=NONE)
def encode_dub(plan: LanguagePlan, mixed: MixResult, fmt: str, work_dir: str) -> EncodedFile:
    return deliver_format(plan, mixed, fmt, work_dir)


@task(name="publish-dub", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def publish_dub(plan: LanguagePlan, voiced: VoicedLanguage, mixed: MixResult, encoded: Sequence[EncodedFile],
                started_at: str) -> ObjectInfo:
    manifest = publish_language(open_store(plan.options.out), plan, voiced, mixed, encoded, started_at, now_utc())
    summary = fit_summary(voiced)
    create_table_artifact(key=artifact_key(plan.programme, plan.language),
                          table=timing_table(voiced, plan.sample_rate),
                          description=f"{plan.programme} [{plan.language}]: {summary.cues} cues, "
                                      f"{summary.stretched} stretched, {summary.borrowed} borrowed, "
                                      f"{summary.overrun} overrun — {manifest.uri}")
    return manifest


@task(name="hear-dub-takes", cache_policy=NONE)
def hear_dub(plan: LanguagePlan, voiced: VoicedLanguage, work_dir: str) -> tuple[VoicedLanguage, LanguageQA | None]:
    """Whisper hears every take (``--qa warn|strict``); failing takes are rendered again."""
    return hear_takes(plan, voiced, open_store(plan.options.out), work_dir)


@task(name="publish-dub-qa", cache_policy=NONE, retries=2, retry_delay_seconds=2)
def publish_dub_qa(plan: LanguagePlan, heard: LanguageQA) -> ObjectInfo:
    return publish_qa(open_store(plan.options.out), plan, heard)[0]


@task(name="mux-dubbed-video", cache_policy=NONE)
def mux_dubbed_video(plans: Sequence[LanguagePlan], work_dir: str) -> ObjectInfo:
    """The dubbed video (``dubbed.mkv``/``.mp4``) from every published language; its record."""
    return deliver_picture(plans, work_dir).record
