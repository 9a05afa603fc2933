VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install run test lint fmt typecheck bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

# The write side and its API are not built yet: for now the system is the SLA clock.
run: install
	$(VENV)/bin/casebook sla deadline --category billing --severity B \
		--opened 2025-01-24T17:00:00+08:00 --explain

# Type and lint checks first, so the last line printed is pytest's summary.
test: install
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/clock.py
