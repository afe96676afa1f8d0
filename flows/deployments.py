"""Deployments castline serves: renders submitted through the API, and the scheduled inbox.

``castline serve`` serves both from one long-running process (``prefect.serve``), which polls
the Prefect API for runs and executes them as local subprocesses. For the production route
with a work pool and workers, see ``prefect.yaml`` and docs/service.md.
"""

from __future__ import annotations

from typing import Any

RENDER_DEPLOYMENT = "castline-render"
INBOX_DEPLOYMENT = "castline-inbox"
RENDER_DEPLOYMENT_PATH = f"render-episode/{RENDER_DEPLOYMENT}"
INBOX_DEPLOYMENT_PATH = f"process-inbox/{INBOX_DEPLOYMENT}"


def serve_castline(*, inbox: dict[str, Any] | None, cron: str | None, limit: int) -> None:
    """Serve the render deployment and, when ``inbox`` parameters are given, the inbox on ``cron``.

    Blocks until interrupted. ``limit``: flow runs executed at once by this process."""
    from prefect import serve

    from castline_flows.process_inbox import process_inbox
    from castline_flows.render_episode import render_episode

    deployments = [render_episode.to_deployment(
        name=RENDER_DEPLOYMENT, description="Render one script (castline submit)")]
    if inbox is not None:
        deployments.append(process_inbox.to_deployment(
            name=INBOX_DEPLOYMENT, cron=cron, parameters=inbox,
            description=f"Render new scripts from {inbox['inbox']} ({cron})"))
    serve(*deployments, limit=limit, print_starting_message=True)
