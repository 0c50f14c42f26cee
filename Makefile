# surgecast: two commands set everything up.
#   make run   create .venv, install, start the service on its embedded defaults
#   make test  install dev extras and system packages the tests use, run the whole suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test install install-dev system-deps lint bench clean

$(VENV)/bin/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "surgecast needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q -e '.[dev,postgres]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	mkdir -p var
	$(VENV)/bin/surgecast run

system-deps:
	bash scripts/system-deps.sh

test: install-dev system-deps
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .

bench: install
	$(PY) benchmarks/bench_tick.py

clean:
	rm -rf $(VENV) var .pytest_cache
