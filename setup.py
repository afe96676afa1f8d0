"""Package layout only; everything else is in pyproject.toml.

The repository keeps its layers in top-level folders: ``castline/`` (library), ``tasks/``,
``flows/`` and ``cli/``. The three orchestration folders install as ``castline_tasks``,
``castline_flows`` and ``castline_cli`` so they never collide with another distribution's
top-level ``tasks`` or ``flows`` package. pyproject.toml cannot express a package-dir mapping
next to package discovery, hence this file.
"""

from setuptools import find_packages, setup

LAYERS = {"castline_tasks": "tasks", "castline_flows": "flows", "castline_cli": "cli"}

setup(packages=find_packages(include=["castline", "castline.*"]) + list(LAYERS), package_dir=LAYERS)
