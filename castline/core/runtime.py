"""Process settings for running flows: where Prefect keeps its state, and no telemetry."""

from __future__ import annotations

import os
from pathlib import Path


def castline_home() -> Path:
    """``$CASTLINE_HOME``, default ``~/.castline``: Prefect's database and logs live under it."""
    return Path(os.environ.get("CASTLINE_HOME", Path.home() / ".castline")).expanduser()


def configure_prefect_environment(*, console_level: str = "CRITICAL") -> None:
    """Set Prefect's environment before Prefect is imported. User settings always win.

    - ``PREFECT_HOME`` → ``$CASTLINE_HOME/prefect`` (the embedded server's SQLite database).
    - Telemetry off (``DO_NOT_TRACK``, ``PREFECT_SERVER_ANALYTICS_ENABLED``).
    - Prefect's console output at ``console_level`` (CRITICAL from the CLI: it prints its own lines).
    - A longer start-up timeout for the temporary server (a cold start can pass 20 s on 2 busy cores).
    - If ``PREFECT_API_URL`` is set, Prefect uses that server instead of a temporary one.
    """
    os.environ.setdefault("PREFECT_HOME", str(castline_home() / "prefect"))
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "castline")
    # The CLI reports failures itself, in one line; Prefect's console handlers would add their own
    # tracebacks. Everything still reaches the Prefect API (and its UI).
    for handler in ("CONSOLE", "CONSOLE_FLOW_RUNS", "CONSOLE_TASK_RUNS"):
        os.environ[f"PREFECT_LOGGING_HANDLERS_{handler}_LEVEL"] = console_level
    # onnxruntime and hibari write caches under ~/.cache unless told otherwise.
    os.environ.setdefault("XDG_CACHE_HOME", str(castline_home() / "cache"))
