# surgecast: two commands set everything up.
#   make run   create .venv, install, start the service on its embedded defaults
#   make test  install dev extras and system packages the tests use, run the whole suite

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test install install-dev system-deps lint bench screenshot clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "surgecast needs Python >= 3.11; set PYTHON=python3.11 or newer")'
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { echo "$(PYTHON) cannot create virtual environments: install python3-venv (apt-get install python3-venv)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); exit 1; }
	$(PIP) install -q --upgrade pip || { rm -rf $(VENV); exit 1; }

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

test: system-deps install-dev
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(VENV)/bin/ruff check .

# the README's dashboard screenshot: a demo store, API and dashboard on 127.0.0.1, headless chromium
screenshot: system-deps install-dev
	$(PY) -m dashboard.demo --out docs/dashboard-overview.png

bench: install
	$(PY) benchmarks/bench_tick.py

clean:
	rm -rf $(VENV) var .pytest_cache
