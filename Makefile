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

# These machines keep a CPU build of torch 2.13.0 in /opt/wheels (pip's 2.13.0 from the
# registry would pull gigabytes of CUDA packages); use it when it is there.
FIND_LINKS := $(if $(wildcard /opt/wheels),--find-links /opt/wheels,)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(FIND_LINKS) -c constraints.txt -e '.[piper,clone,dask,s3,test]'
	@# This environment sets PYTHONDONTWRITEBYTECODE=1: compile once here, or every
	@# process recompiles Prefect at start-up (measured: doubles its start time).
	@# torch ships one Python 3.12-only test helper (py312_intrinsics.py); skip it.
	$(PY) -m compileall -q -j 0 -x 'py312_intrinsics' $(VENV)/lib > /dev/null
	touch $@

# espeak-ng (an OS package, not on PyPI): the offline fallback voice for dubbing languages that
# have no neural voice here. Installed when missing and we are root with apt-get (CI: a fresh
# Debian machine, as root); otherwise a note, and the tests that need it are skipped.
.PHONY: system-deps
system-deps:
	@command -v espeak-ng >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q espeak-ng >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q espeak-ng >/dev/null; }; \
	  else echo "note: espeak-ng is not installed (apt-get install espeak-ng): castline dub needs it for languages with no voice profile"; fi; }

install: $(STAMP) system-deps

demo: install
	$(VENV)/bin/castline render scripts_in/demo.yaml --out output --format wav,mp3

test: install
	$(PY) -m pytest

clean:
	rm -rf $(VENV) output .pytest_cache .hypothesis
