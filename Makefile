# Two entry points (see README): `make demo` and `make test`. Both build .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.castline-installed

# Prefect: no telemetry, ever.
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: demo test install clean

# These machines keep a CPU build of torch 2.13.0 in /opt/wheels (the registry's 2.13.0 would pull
# gigabytes of CUDA packages); use it when it is there, and pin that exact build so no installer can
# prefer the registry's.
WHEELS ?= /opt/wheels
TORCH_CPU_WHEEL := $(firstword $(wildcard $(WHEELS)/torch-2.13.0+cpu-*.whl))
FIND_LINKS := $(if $(wildcard $(WHEELS)),--find-links $(WHEELS),)
TORCH_PIN := $(VENV)/torch-build.txt

# The installer: uv (pinned in constraints.txt, installed from PyPI into the venv by pip), which
# downloads and installs the ~190 pinned packages in parallel. `make INSTALLER=pip` keeps the pip route.
INSTALLER ?= uv
UV := $(VENV)/bin/uv
EXTRAS := piper,clone,dask,s3,test
# uv reads neither pip's configuration nor its certificates: point it at the system's CA bundle
# (what pip is given as `cert` here), not only its own bundled roots.
export UV_NATIVE_TLS := 1
export UV_LINK_MODE := copy
# Bytecode, compiled once: this environment sets PYTHONDONTWRITEBYTECODE=1, under which every
# process recompiles what it imports (Prefect alone: doubles its start time). Every Python process
# make runs (install, demo, tests) writes the bytecode of what it imports instead, so each module is
# compiled once, when first used, rather than all ~19,000 files up front (~70 CPU-s on 2 cores).
# `make compile` compiles everything now (skipping torch's one Python 3.12-only test helper, pip,
# and the ~2,500 files of transformers models castline never loads).
unexport PYTHONDONTWRITEBYTECODE
COMPILE_SKIP := py312_intrinsics|/site-packages/pip/|/transformers/models/(?!(auto|encoder_decoder|llama|qwen2|vibevoice|vibevoice_acoustic_tokenizer|pocket_tts|pocket_tts_audio_tokenizer)/)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
ifeq ($(INSTALLER),uv)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt uv
	@echo "$(if $(TORCH_CPU_WHEEL),torch==2.13.0+cpu,)" > $(TORCH_PIN)
	$(UV) pip install --quiet --python $(PY) $(FIND_LINKS) -c constraints.txt -c $(TORCH_PIN) -e '.[$(EXTRAS)]'
else
	$(PY) -m pip install --quiet --disable-pip-version-check $(FIND_LINKS) -c constraints.txt -e '.[$(EXTRAS)]'
endif
	@# castline's own modules (the editable install runs them from this checkout): a second.
	$(PY) -m compileall -q -j 0 castline cli flows tasks > /dev/null
	touch $@

.PHONY: compile
compile: $(STAMP)
	$(PY) -m compileall -q -j 0 -x '$(COMPILE_SKIP)' $(VENV)/lib castline cli flows tasks > /dev/null

# OS packages, not on PyPI: espeak-ng (the offline fallback voice for dubbing languages that have
# no neural voice here) and Apertium with its English-Spanish pair (the offline translator for
# `castline dub --translate-from`). Installed when missing and we are root with apt-get (CI: a fresh
# Debian machine, as root); otherwise a note, and the tests that need them are skipped.
SYSTEM_PACKAGES := espeak-ng apertium apertium-eng-spa
.PHONY: system-deps
system-deps:
	@missing="$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done)"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q $$missing >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q $$missing >/dev/null; }; \
	  else echo "note: not installed: $$missing (apt-get install $$missing): castline dub uses espeak-ng for languages with no voice profile, apertium for --translate-from"; fi; }

install: $(STAMP) system-deps

demo: install
	$(VENV)/bin/castline render scripts_in/demo.yaml --out output --format wav,mp3

# Parallel on every core (at most 4 workers); each file's tests stay on one worker, so a file's
# module-scoped fixtures are built once. `make test PYTEST_ARGS=-n0` runs them in one process.
PYTEST_ARGS ?= -n auto --maxprocesses 4 --dist loadfile --durations=15
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) output .pytest_cache .hypothesis
	find castline cli flows tasks -name __pycache__ -type d -prune -exec rm -rf {} +
