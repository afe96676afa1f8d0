"""``castline serve``, ``submit`` and ``status``: castline as a service on a Prefect server.

All three need a Prefect server that outlives them (``prefect server start``) named by
``PREFECT_API_URL``: a temporary embedded server would vanish with the process that started it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from urllib.parse import urlparse

from castline.core.errors import CastlineError
from castline_cli.render_options import add_render_options, render_options

FINAL_OK = {"COMPLETED"}
FINAL_BAD = {"FAILED", "CRASHED", "CANCELLED"}


def add_remote_commands(commands) -> None:

    serve = commands.add_parser("serve", help="serve castline's deployments (renders, and an inbox on a schedule)")
    serve.add_argument("--inbox", help="folder or s3:// prefix to scan for new scripts")
    serve.add_argument("--cron", default="*/15 * * * *", help='inbox schedule (default: "*/15 * * * *")')
    serve.add_argument("--out", default="output", help="store for the inbox's episodes (default: output)")
    serve.add_argument("--concurrency", type=int, default=2, help="inbox scripts rendered at once (default 2)")
    serve.add_argument("--workers", type=int, default=2, help="synthesis workers inside each render (default 2)")
    serve.add_argument("--preset", help="delivery preset for inbox renders (default: each script's)")
    serve.add_argument("--format", default="wav", help="formats for inbox renders (default: wav)")
    serve.add_argument("--voices-dir", help="voice profiles for inbox renders")
    serve.add_argument("--qa", default="warn", choices=["off", "warn", "strict"], help="QA policy for inbox renders")
    serve.add_argument("--max-attempts", type=int, default=3, help="renders tried per script content (default 3)")
    serve.add_argument("--limit", type=int, default=4, help="flow runs this process executes at once (default 4)")
    serve.set_defaults(handler=_serve)

    submit = commands.add_parser("submit", help="submit a render to a served castline (prints the run id)")
    submit.add_argument("script", help="script file or s3:// URI (the serving machine must be able to read it)")
    add_render_options(submit)
    submit.set_defaults(handler=_submit)

    status = commands.add_parser("status", help="state of a submitted run; the manifest URI once it is done")
    status.add_argument("run_id", help="the id that submit printed")
    status.add_argument("--wait", action="store_true", help="wait until the run ends")
    status.add_argument("--timeout", type=float, default=3600, help="with --wait: give up after this many seconds")
    status.set_defaults(handler=_status)


def _need_server(command: str) -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise CastlineError(f"castline {command} needs a running Prefect server: start one with "
                            "`prefect server start` and set PREFECT_API_URL (e.g. http://127.0.0.1:4200/api)")


def _serve(args: argparse.Namespace) -> int:
    from castline.render.options import RenderOptions
    from castline.core.runtime import configure_prefect_environment

    _need_server("serve")
    formats = tuple(part.strip().lower() for part in args.format.split(",") if part.strip())
    RenderOptions(script="-", formats=formats, preset=args.preset, workers=args.workers)  # validates the flags
    if not 1 <= args.concurrency <= 8:
        raise ValueError(f"--concurrency: must be 1..8, got {args.concurrency}")
    inbox = None
    if args.inbox:
        from castline.storage import open_store

        open_store(args.inbox), open_store(args.out)  # a bad location fails here, not at 3 a.m.
        inbox = {"inbox": _absolute(args.inbox), "out": _absolute(args.out), "concurrency": args.concurrency,
                 "max_attempts": args.max_attempts, "preset": args.preset, "formats": list(formats),
                 "voices_dir": _absolute(args.voices_dir) if args.voices_dir else None, "workers": args.workers,
                 "qa": {"policy": args.qa}}
        _check_cron(args.cron)
    # Prefect's runner webserver (off unless PREFECT_RUNNER_SERVER_ENABLE) stays on loopback unless told.
    os.environ.setdefault("PREFECT_RUNNER_SERVER_HOST", "127.0.0.1")
    configure_prefect_environment(console_level="INFO")
    from castline_flows.deployments import serve_castline

    with _api_errors():
        serve_castline(inbox=inbox, cron=args.cron if inbox else None, limit=args.limit)
    return 0


def _submit(args: argparse.Namespace) -> int:
    import dataclasses

    from castline.core.hashing import content_hash, sha256_file
    from castline.render.plan import prepare_render
    from castline.core.runtime import configure_prefect_environment

    _need_server("submit")
    from castline.render.inputs import local_inputs

    options = render_options(args)
    with local_inputs(options) as local_options:
        prepare_render(local_options)  # the same validation as render: a bad script fails here, in one line
        script_sha256 = sha256_file(local_options.script)
    # The serving process has another working folder: local paths travel absolute.
    remote = dataclasses.replace(options, script=_absolute(options.script), out=_absolute(options.out),
                                 voices_dir=_absolute(options.voices_dir) if options.voices_dir else None,
                                 lexicons=tuple(_absolute(path) for path in options.lexicons),
                                 show_lexicons=tuple(_absolute(path) for path in options.show_lexicons),
                                 meta=tuple(_absolute_meta(item) for item in options.meta))
    parameters = {"options": dataclasses.asdict(remote)}
    # The same script content with the same options is one run, however often it is submitted.
    key = content_hash({"script_sha256": script_sha256, "parameters": parameters})
    configure_prefect_environment()
    from prefect.deployments import run_deployment

    from castline_flows.deployments import RENDER_DEPLOYMENT_PATH

    try:
        with _api_errors():
            run = run_deployment(RENDER_DEPLOYMENT_PATH, parameters=parameters, timeout=0, idempotency_key=key,
                                 as_subflow=False)
    except Exception as error:  # the API's own errors: name the deployment, never a traceback
        if type(error).__name__ == "ObjectNotFound":
            raise CastlineError(f"no deployment '{RENDER_DEPLOYMENT_PATH}' on {os.environ['PREFECT_API_URL']}: "
                                "start `castline serve` first") from error
        raise
    print(run.id)
    return 0


def _status(args: argparse.Namespace) -> int:
    from uuid import UUID

    from castline.core.runtime import configure_prefect_environment

    _need_server("status")
    try:
        run_id = UUID(args.run_id)
    except ValueError:
        raise CastlineError(f"'{args.run_id}' is not a run id (castline submit prints one)") from None
    configure_prefect_environment()
    deadline = time.monotonic() + args.timeout
    while True:
        with _api_errors():
            state, manifests = _read_run(run_id)
        if not args.wait or state in FINAL_OK | FINAL_BAD or time.monotonic() > deadline:
            break
        time.sleep(2)
    print(f"state: {state.lower()}")
    for uri in manifests:
        print(f"manifest: {uri}")
    return 1 if state in FINAL_BAD else 0


def _read_run(run_id) -> tuple[str, list[str]]:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from castline_flows.render_episode import MANIFEST_ARTIFACT

    with get_client(sync_client=True) as client:
        try:
            run = client.read_flow_run(run_id)
        except ObjectNotFound:
            raise CastlineError(f"no run {run_id} on {os.environ['PREFECT_API_URL']}") from None
        # Prefect 3.8.8's sync read_artifacts sends null task_runs (rejected by its server) or, given a
        # filter, joins on task runs (dropping flow-level artifacts): ask the endpoint directly.
        response = client.request("POST", "/artifacts/filter", json={
            "artifacts": {"key": {"any_": [MANIFEST_ARTIFACT]}, "flow_run_id": {"any_": [str(run_id)]}},
            "sort": "CREATED_DESC", "limit": 10, "offset": 0})
        artifacts = response.json()
    state = run.state_type.value if run.state_type else "UNKNOWN"
    manifests = [artifact["data"] for artifact in artifacts if artifact.get("data")] if state in FINAL_OK else []
    return state, [_link(data) for data in manifests[:1]]


def _link(data: str) -> str:
    # Link artifacts store markdown: "[manifest.json](URI)".
    return data[data.index("(") + 1:data.rindex(")")] if data.startswith("[") and "(" in data else data


@contextlib.contextmanager
def _api_errors():
    """A server that refuses castline's credentials answers in one line (never the auth string)."""
    try:
        yield
    except Exception as error:
        response = getattr(error, "response", None)
        code = getattr(response, "status_code", None)
        if code not in (401, 403):
            raise
        sent = "a wrong PREFECT_API_AUTH_STRING" if os.environ.get("PREFECT_API_AUTH_STRING") else \
            "no PREFECT_API_AUTH_STRING"
        raise CastlineError(f"the Prefect server at {os.environ.get('PREFECT_API_URL')} refused castline "
                            f"(HTTP {code}, {sent}): set PREFECT_API_AUTH_STRING to the server's "
                            "PREFECT_SERVER_API_AUTH_STRING (see docs/service.md)") from None


def _absolute_meta(item: str) -> str:
    """``--meta`` values that name files (``show=``, ``cover=``) travel absolute too."""
    key, _, value = item.partition("=")
    names_file = key.strip() in ("show", "cover") and value and "://" not in value
    return f"{key}={_absolute(value)}" if names_file else item


def _absolute(location: str) -> str:
    """Local paths become absolute (the serving process has another working folder); URIs stay."""
    if urlparse(location).scheme in ("s3", "file"):
        return location
    return str(Path(location).expanduser().resolve())


def _check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=cron)
    except ValueError:
        raise CastlineError(f"--cron: '{cron}' is not a cron expression (e.g. \"*/15 * * * *\")") from None
