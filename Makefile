# kurabe — two commands on a fresh machine:
#   make run    set up (first time only) and open the app on the embedded model
#   make test   set up (first time only) and run lint, types and the tests
#
# llama-cpp-python compiles from source on first setup (about 7 minutes on 2 cores). pip keeps
# the built wheel in its cache and the venv keeps the install, so later runs skip the build.
# For an NVIDIA GPU: CMAKE_ARGS="-DGGML_CUDA=on" make setup

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kurabe-installed
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

run: setup
	$(VENV)/bin/kurabe $(ARGS)

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: setup
	$(VENV)/bin/mypy

pytest: setup
	$(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: setup
	$(PY) bench/bench_llama.py
	$(PY) bench/bench_checks.py
	$(PY) bench/bench_tui.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
