# The two commands (README): `make run` runs the main job, `make test` runs every test.
# Each sets itself up on a fresh Debian machine: system packages, .venv, the C++ build.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
BUILD ?= build
# Clad plugins work only with the clang they were built against: clang 19 here.
CXX_COMPILER ?= clang++-19
C_COMPILER ?= clang-19
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEBIAN_PACKAGES := $(shell grep -v '^\#' envs/debian-packages.txt)
CLUSTER_PACKAGES := $(shell grep -v '^\#' envs/debian-packages-cluster.txt)

.PHONY: run test test-root test-cluster cuda-records build configure setup system-packages doctor pins lock format clean

# The main job: the workflow on the quick default config (config/config.yaml).
run: build
	$(VENV)/bin/snakemake --profile workflow/profiles/default
	$(VENV)/bin/snakemake --profile workflow/profiles/default --report results/report/report.html

test: build
	$(PY) -m pytest

# The ROOT integration's tests alone (`make test` runs them too; ROOT comes with requirements.lock).
test-root: build
	$(PY) -m pytest tests/test_root.py

# The workflow on a real SLURM (tests/test_cluster.py): a single-node cluster from Debian's slurm-wlm
# and munge, started and stopped by the tests. Missing SLURM or data fail here instead of skipping.
test-cluster: build
	@$(MAKE) -s system-packages DEBIAN_PACKAGES="$(CLUSTER_PACKAGES)"
	CLADBENCH_CLUSTER_TESTS=required $(PY) -m pytest -m cluster

# On a GPU node, with a CUDA torch in .venv: the CUDA runs the report's CUDA section shows, into
# results-archive/<gpu>/<date>/ (commit them). docs/cuda.md says what they measure.
cuda-records: build
	$(PY) -m cladbench.bench.cuda_records

doctor: setup
	$(VENV)/bin/cladbench doctor

build: configure
	cmake --build $(BUILD) -j$$(nproc)

configure: setup
	cmake -S cpp -B $(BUILD) -G Ninja -DCMAKE_CXX_COMPILER=$(CXX_COMPILER) -DCMAKE_C_COMPILER=$(C_COMPILER) \
	  -DCMAKE_PREFIX_PATH="$$($(PY) -c 'import torch; print(torch.utils.cmake_prefix_path)')" \
	  -Dpybind11_DIR="$$($(PY) -m pybind11 --cmakedir)" -DPython_EXECUTABLE=$(abspath $(PY))

setup: system-packages $(VENV)/.installed

system-packages:
	@if ! command -v dpkg >/dev/null; then echo "not Debian: install $(DEBIAN_PACKAGES) yourself"; exit 0; fi; \
	missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:" $$missing; \
	  $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

# The environment comes from requirements.lock: every package, transitive ones included, pinned with
# its hashes. requirements.txt is the top level people edit; `make lock` resolves the lock from it.
$(VENV)/.installed: requirements.lock requirements-cuda-build.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	@# The GPU engine builds (and CI build-checks it) wherever nvcc is; cuBLAS comes from PyPI if the toolkit lacks it.
	if command -v nvcc >/dev/null && [ ! -e "$$(dirname "$$(dirname "$$(readlink -f "$$(command -v nvcc)")")")/include/cublas_v2.h" ]; then \
	  $(PY) -m pip install -q -r requirements-cuda-build.txt; fi
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# requirements.lock from requirements.txt (uv's resolver, Linux x86-64, Python 3.11; torch's CPU
# wheel from pip's find-links, /opt/wheels here): run after editing requirements.txt, commit both.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q uv==0.13.9
	$(VENV)/bin/uv pip compile requirements.txt --generate-hashes --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 $$(test -d /opt/wheels && echo --find-links /opt/wheels) \
	  --custom-compile-command "make lock" -o requirements.lock

# Conda pin files for the workflow's environments (envs/<name>.linux-64.pin.txt), resolved by
# conda-lock against conda-forge: run on a machine that reaches conda channels, then commit them.
pins: setup
	$(PY) -m pip install -q conda-lock==4.0.3
	for env in envs/*.yaml; do \
	  name=$$(basename $$env .yaml); \
	  $(VENV)/bin/conda-lock lock -f $$env -p linux-64 --kind explicit --filename-template "envs/$$name.{platform}.pin.txt"; \
	done

# The repository's style, as tests/test_style.py checks it: ruff, snakefmt, clang-format (.clang-format).
format: setup
	$(VENV)/bin/ruff check --fix src tests tools
	$(VENV)/bin/ruff format src tests tools
	$(VENV)/bin/snakefmt --line-length 120 Snakefile workflow/rules
	git ls-files 'cpp/*.cpp' 'cpp/*.hpp' 'cpp/*.cu' 'cpp/*.h' 'cpp/*.c' | xargs $(VENV)/bin/clang-format -i

clean:
	rm -rf $(BUILD) src/cladbench/_core*.so
