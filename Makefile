# kurabe — two commands on a fresh machine:
#   make run    set up (first time only) and open the app on the embedded model
#   make test   set up (first time only) and run lint, types and the tests
#
# llama-cpp-python compiles from source on first setup (about 5 minutes on 2 cores), through
# backends/llama_build.py, which also says why in its docstring:
#   - The build is portable: GGML_NATIVE=OFF with AVX2, FMA, F16C and BMI2 (x86-64-v3). llama.cpp's
#     default (-march=native) crashed with SIGILL on this project's machines: a VM whose CPU flags
#     advertise AMX ran `tilezero` in ggml's AMX path and died, and pip's cache carries such a
#     wheel to the next machine. Measured on the embedded Gemma (bench/bench_build.py): the
#     portable build is within a few percent of the native one (see the README).
#   - Not GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS: it compiles the CPU backend once per variant
#     (about a dozen; several times the setup time on 2 cores), and its run-time scoring
#     (ggml-cpu/arch/x86/cpu-feats.cpp, "FIXME: this does not check for OS support") reads CPUID
#     alone, so on that VM it would still choose the AMX variant and crash.
#   - The wheel is kept in kurabe's own cache (~/.cache/kurabe-build), keyed by version and flags
#     (and the CPU, for a native build), never pip's, whose key ignores the flags.
#   - A smoke check ends the setup: a subprocess loads the embedded model and generates a few
#     tokens; a crash is one line (CPU features, the rebuild command) and uninstalls the build.
# The native build, for whoever wants it: CMAKE_ARGS="-DGGML_NATIVE=ON" make setup (after make clean)
# For an NVIDIA GPU: CMAKE_ARGS="-DGGML_CUDA=on" make setup (after make clean)

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kurabe-installed
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: setup run test lint typecheck pytest bench llama-tools clean

$(STAMP): pyproject.toml backends/llama_build.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m backends.llama_build install
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m backends.llama_build check
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

# llama.cpp's own llama-server and llama-bench, the references bench/ measures against (about
# 5 minutes each; LLAMA_TOOLS_ARGS=--native for the native build that bench_build.py compares).
llama-tools: setup
	$(PY) -m backends.llama_build tools $(LLAMA_TOOLS_ARGS)

bench: setup
	$(PY) bench/bench_llama.py
	$(PY) bench/bench_build.py
	$(PY) bench/bench_checks.py
	$(PY) bench/bench_tui.py
	$(PY) bench/bench_store_scale.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
