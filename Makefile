# medseg: `make demo` and `make test` do all set-up on a fresh machine.
#
# CI and this repository's dev machines install the CPU build of torch via
# .ci/constraints-cpu.txt (an unpinned torch resolves to a multi-GB CUDA build).
# On a GPU machine:  make demo PIP_CONSTRAINT=   (setup.cfg keeps a normal torch>= range).

PYTHON ?= python3
VENV ?= .venv
PIP_CONSTRAINT ?= .ci/constraints-cpu.txt
DEMO_OUT ?= medseg-demo
PYTEST_ARGS ?= -n 2

BIN := $(VENV)/bin
CONSTRAINT_FLAG := $(if $(PIP_CONSTRAINT),-c $(PIP_CONSTRAINT),)
DEPS := setup.cfg pyproject.toml $(PIP_CONSTRAINT)

.PHONY: demo test lint install install-test clean

demo: $(VENV)/.installed
	$(BIN)/medseg demo --out $(DEMO_OUT)

test: $(VENV)/.installed-test
	$(BIN)/ruff check medseg tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy medseg
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check medseg tests benchmarks
	$(BIN)/ruff format --check medseg tests benchmarks
	$(BIN)/lint-imports
	$(BIN)/mypy medseg

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python $(DEPS)
	$(BIN)/python -m pip install --disable-pip-version-check -q $(CONSTRAINT_FLAG) -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python $(DEPS)
	$(BIN)/python -m pip install --disable-pip-version-check -q $(CONSTRAINT_FLAG) -e '.[test]'
	touch $@ $(VENV)/.installed

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .import_linter_cache .mypy_cache *.egg-info
