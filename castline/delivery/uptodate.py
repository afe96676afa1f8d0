"""Is the published episode already what this plan would produce? Then nothing needs to run.

``prepare_episode`` is the one place a render is planned and checked (``PreparedRender``): the
command line calls it before Prefect starts and hands the result to the flow in the same process;
a flow run started any other way (a deployment, the inbox) calls it itself."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from castline import __version__
from castline.core.errors import StorageError
from castline.core.hashing import content_hash
from castline.delivery.episode_meta import episode_metadata, render_key_material
from castline.delivery.manifest import ManifestIndex
from castline.delivery.releases import manifest_key
from castline.render.options import RenderOptions
from castline.render.plan import RenderPlan, prepare_render
from castline.render.stitch import StitchSettings
from castline.storage import Store, open_store


def render_key(plan: RenderPlan, settings: StitchSettings) -> str:
    """Content hash of everything that shapes the published files: chunk keys and joins, episode
    metadata, chapters, speaker names, preset, formats, stitch settings and castline's version."""
    episode = plan.episode
    return content_hash({
        "castline": __version__,
        "jobs": [[job.key, job.turn, job.position, job.speaker, job.boundary.value, job.pause_before_ms, job.text]
                 for job in plan.jobs],
        "meta": asdict(episode.meta),
        "chapters": [{name: value for name, value in asdict(chapter).items() if value is not None}
                     for chapter in episode.chapters],
        "cast": [asdict(entry) for entry in episode.cast],
        "voices": [voice.profile_hash for voice in plan.voices],
        "preset": plan.preset.to_manifest(),
        "formats": sorted(plan.options.formats),
        "stitch": asdict(settings),
        "qa": [plan.options.qa.policy, plan.options.qa.fingerprint()],
        # Tags, cover and feed metadata (absent without any, so keys made before them still hold).
        **({"metadata": metadata} if (metadata := render_key_material(episode_metadata(plan))) else {}),
        **({"package": plan.options.package} if plan.options.package else {}),
    })


def current_manifest_uri(store: Store, plan: RenderPlan, key: str) -> str | None:
    """The live manifest's URI if it carries ``key`` and every file it lists is intact
    (present, same SHA-256 and size); otherwise None."""
    location = manifest_key(plan.episode.meta.episode_id)
    if not store.exists(location):
        return None
    try:
        index = ManifestIndex.from_json(store.get_bytes(location))
        if index.render_key != key:
            return None
        for item in index.objects():
            stored = store.info(item.key)
            if stored.sha256 != item.sha256 or stored.bytes != item.bytes:
                return None
    except (ValueError, KeyError, TypeError, StorageError):
        return None
    return store.uri_for(location)


@dataclass(frozen=True)
class PreparedRender:
    """A render planned and checked, ready to run: done once per run, before anything is rendered.

    ``options``: as given (script and voices may be ``s3://`` URIs); ``plan``: planned from local
    copies of them (``plan.options`` holds those paths, valid while the caller keeps
    ``castline.render.inputs.local_inputs`` open); ``key``: the render key; ``current``: the live
    manifest's URI when the published episode already is this render (always None with ``force``).
    """

    options: RenderOptions
    plan: RenderPlan
    key: str
    current: str | None


def prepare_episode(options: RenderOptions, local_options: RenderOptions) -> PreparedRender:
    """Plan ``local_options`` (validating every input) and check whether the store already holds
    the result. ``local_options`` is ``options`` with local copies of its inputs (``local_inputs``)."""
    plan = prepare_render(local_options)
    key = render_key(plan, StitchSettings.with_pauses(options.pauses_ms))
    current = None if options.force else current_manifest_uri(open_store(options.out), plan, key)
    return PreparedRender(options=options, plan=plan, key=key, current=current)
