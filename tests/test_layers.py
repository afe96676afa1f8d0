"""The layers point one way, checked on every import statement anywhere in a file.

library (``castline/``) → tasks (``tasks/``) → flows (``flows/``) → command line (``cli/``).
Inside the library, stage packages are ranked; a module imports only its own stage or stages
ranked below it, so data flows one way: script and voices → engines → qa → render → delivery → dub.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYER_FOLDERS = {"castline": "castline", "castline_tasks": "tasks", "castline_flows": "flows", "castline_cli": "cli"}
ORCHESTRATION = ("prefect", "prefect_dask")
# What each layer may import, besides itself and third-party libraries.
ALLOWED = {
    "castline": {"castline"},
    "castline_tasks": {"castline", "castline_tasks", *ORCHESTRATION},
    "castline_flows": {"castline", "castline_tasks", "castline_flows", *ORCHESTRATION},
    "castline_cli": {"castline", "castline_tasks", "castline_flows", "castline_cli", *ORCHESTRATION},
}
GUARDED = set(LAYER_FOLDERS) | set(ORCHESTRATION)
STAGE_RANK = {
    "core": 0,
    "storage": 1, "audio": 1, "dsp": 1,
    "script": 2, "voices": 2,
    "engines": 3,
    "qa": 4,
    "render": 5,
    "delivery": 6,
    "dub": 7, "inbox": 7,
}


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """Every absolute module named by an import statement, with its line: top level or nested."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("__import__",) and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module" and node.args \
                and isinstance(node.args[0], ast.Constant):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def layer_violations(path: Path, layer: str, stage: str | None, repo: Path = REPO) -> list[str]:
    problems = []
    for line, module in imported_modules(ast.parse(path.read_text(), str(path))):
        top = module.split(".")[0]
        if top in GUARDED and top not in ALLOWED[layer]:
            problems.append(f"{path.relative_to(repo)}:{line}: the {layer} layer imports {module}")
        if layer == "castline" and stage is not None and top == "castline":
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else None
            if target in STAGE_RANK and STAGE_RANK[target] > STAGE_RANK[stage]:
                problems.append(f"{path.relative_to(repo)}:{line}: stage {stage} imports the higher stage {module}")
    return problems


def all_violations(repo: Path = REPO) -> list[str]:
    problems = []
    for layer, folder in LAYER_FOLDERS.items():
        for path in sorted((repo / folder).rglob("*.py")):
            relative = path.relative_to(repo / folder).parts
            stage = relative[0] if layer == "castline" and len(relative) > 1 else None
            if layer == "castline" and len(relative) == 1:
                stage = "core"
            problems += layer_violations(path, layer, stage, repo)
    return problems


def test_every_import_points_down():
    assert all_violations() == []


def test_every_library_stage_has_a_rank():
    stages = {p.name for p in (REPO / "castline").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert stages <= set(STAGE_RANK), f"rank these stages in STAGE_RANK: {sorted(stages - set(STAGE_RANK))}"


@pytest.mark.parametrize("planted, expected", [
    ("castline/delivery/_planted.py", "imports prefect"),
    ("castline/qa/_planted.py", "imports castline_flows"),
    ("tasks/_planted.py", "imports castline_flows"),
    ("castline/engines/_planted.py", "higher stage castline.render"),
])
def test_a_planted_violation_is_caught(tmp_path, planted, expected):
    for folder in LAYER_FOLDERS.values():
        shutil.copytree(REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    body = {
        "imports prefect": "def later():\n    from prefect import flow\n",
        "imports castline_flows": "def later():\n    import castline_flows.render_episode\n",
        "higher stage castline.render": "def later():\n    from castline.render.plan import RenderPlan\n",
    }[expected]
    (tmp_path / planted).write_text(body)
    problems = all_violations(tmp_path)
    assert len(problems) == 1 and expected in problems[0] and "_planted.py:2" in problems[0]
