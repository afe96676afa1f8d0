"""Tasks for rendering an episode. Each body is a library call or two; audio stays in files."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from castline.dsp.compliance import noise_floor_problem
from castline.audio.encode import EncodedFile, deliver
from castline.core.errors import CastlineError, DeliveryError
from castline.delivery.audiobook import AudiobookPackage
from castline.delivery.episode_meta import episode_audiobook, tag_writer
from castline.delivery.manifest import RenderStats
from castline.delivery.master import MasterResult, master
from castline.render.options import RenderOptions
from castline.delivery.publish import Published, publish_episode
from castline.qa.episode import enforce, episode_qa
from castline.qa.records import EpisodeQA
from castline.qa.report import chunk_table, summary_markdown, write_report
from castline.render.plan import ChunkJob, RenderPlan, WindowJob, episode_facts
from castline.render.stitch import StitchResult, StitchSettings, stitch
from castline.storage import open_store
from castline.render.synthesis import ChunkRecord, synthesise_batch
from castline.delivery.uptodate import PreparedRender, prepare_episode
from castline.render.windows import synthesise_windows

# Caching is by content hash in the store (castline.render.synthesis), which survives machines and
# Prefect databases; Prefect's own result cache would duplicate it, so it is off (NONE).


def retry_unless_user_error(task, task_run, state) -> bool:
    """Task retries are for faults that may pass (a crashed engine, a dropped connection that
    botocore's own 8 attempts did not outlast is *not* one of them: it arrives as a StorageError).
    A ``CastlineError`` (bad credentials, missing bucket, bad input) fails at once."""
    try:
        state.result()
    except CastlineError:
        return False
    except Exception:  # noqa: BLE001 - anything else may pass: retry
        return True
    return True


@task(name="plan-render", cache_policy=NONE)
def plan_render(options: RenderOptions, local_options: RenderOptions) -> PreparedRender:
    """Plan the render and check whether the store already holds it (``prepare_episode``)."""
    prepared = prepare_episode(options, local_options)
    plan = prepared.plan
    get_run_logger().info("planned %d chunks for %d turns of '%s'", len(plan.jobs), len(plan.episode.turns),
                          plan.episode.meta.episode_id)
    return prepared


@task(name="tidy-store", cache_policy=NONE)
def tidy_store(out: str) -> int:
    """Remove what killed writes left in the store (temporary files, stale multipart uploads)."""
    removed = open_store(out).cleanup_incomplete_uploads()
    if removed:
        get_run_logger().info("removed %d leftovers of killed writes from %s", removed, out)
    return removed


@task(name="synthesise-chunks", cache_policy=NONE, retries=1, retry_delay_seconds=2,
      retry_condition_fn=retry_unless_user_error)
def synthesise_chunks(jobs: Sequence[ChunkJob], plan: RenderPlan) -> list[ChunkRecord]:
    return synthesise_batch(jobs, plan, open_store(plan.options.out))


@task(name="synthesise-windows", cache_policy=NONE, retries=1, retry_delay_seconds=2,
      retry_condition_fn=retry_unless_user_error)
def synthesise_window_batch(windows: Sequence[WindowJob], plan: RenderPlan) -> list[ChunkRecord]:
    return synthesise_windows(windows, plan, open_store(plan.options.out))


@task(name="stitch", cache_policy=NONE)
def stitch_chunks(plan: RenderPlan, records: Sequence[ChunkRecord], settings: StitchSettings,
                  work_dir: str) -> StitchResult:
    return stitch(plan.jobs, records, open_store(plan.options.out), Path(work_dir) / "stitched.wav", settings)


@task(name="master", cache_policy=NONE)
def master_programme(plan: RenderPlan, stitched: StitchResult, work_dir: str) -> MasterResult:
    mastered = master(stitched.path, stitched.reading, plan.preset, Path(work_dir) / "master.wav")
    problem = noise_floor_problem(mastered.noise_floor_dbfs, plan.preset)
    if problem:
        raise DeliveryError(f"master misses preset '{plan.preset.name}': {problem}")
    return mastered


@task(name="encode", cache_policy=NONE)
def encode_format(plan: RenderPlan, stitched: StitchResult, mastered: MasterResult, fmt: str,
                  work_dir: str) -> EncodedFile:
    folder = Path(work_dir)

    def remaster(gain_offset_db: float, ceiling_dbtp: float) -> Path:
        path = folder / f"master-for-{fmt}.wav"
        master(stitched.path, stitched.reading, plan.preset, path, ceiling_dbtp=ceiling_dbtp,
               gain_offset_db=gain_offset_db)
        return path

    return deliver(mastered.path, mastered.reading, fmt, folder / f"episode.{fmt}", plan.preset,
                   mastered.ceiling_dbtp, remaster,
                   after_encode=tag_writer(plan, stitched, mastered.reading.duration_samples, fmt))


@task(name="episode-qa", cache_policy=NONE)
def check_episode(plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult, mastered: MasterResult,
                  encoded: Sequence[EncodedFile], work_dir: str) -> tuple[EpisodeQA, list[Path]]:
    placements = {placement.index: placement for placement in stitched.placements}
    qa = episode_qa(episode_facts(plan), [record.check for record in records],
                    [(placements[job.index].start_sample, placements[job.index].end_sample) for job in plan.jobs],
                    [record.integrated_lufs for record in records], mastered.path, encoded,
                    policy=plan.options.qa.policy)
    files = write_report(qa, mastered.path, Path(work_dir) / "qa")
    create_table_artifact(key="qa-chunks", table=chunk_table(qa), description=f"QA verdict: {qa.verdict}")
    create_markdown_artifact(key="qa-summary", markdown=summary_markdown(qa))
    get_run_logger().info("QA verdict %s: %d of %d chunks passed, %d retried", qa.verdict, qa.passed_count,
                          len(qa.chunks), qa.retried_count)
    enforce(qa)
    return qa, [files.qa_json, files.report_html, files.loudness_png, files.waveform_png]


@task(name="publish", cache_policy=NONE, retries=2, retry_delay_seconds=2,
      retry_condition_fn=retry_unless_user_error)
def publish(plan: RenderPlan, records: Sequence[ChunkRecord], stitched: StitchResult, mastered: MasterResult,
            encoded: Sequence[EncodedFile], stats: RenderStats, script_sha256: str,
            qa: EpisodeQA | None = None, qa_files: Sequence[Path] = (),
            book: AudiobookPackage | None = None) -> Published:
    return publish_episode(open_store(plan.options.out), plan, records, stitched, mastered, encoded, stats,
                           script_sha256, qa_files, qa, book)


@task(name="audiobook", cache_policy=NONE)
def package_book(plan: RenderPlan, stitched: StitchResult, mastered: MasterResult, work_dir: str) -> AudiobookPackage:
    return episode_audiobook(plan, stitched, mastered.path, mastered.reading.duration_samples,
                             Path(work_dir) / "audiobook")
