VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install run migrate test lint fmt typecheck bench

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -d $(VENV) || python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[dev]'
	touch $@

# The whole system on this machine: embedded PostgreSQL under ./var, migrations, a demo
# organisation, demo API keys printed once, the API on http://127.0.0.1:8000 until Ctrl-C.
run: install
	$(VENV)/bin/casebook run

# Apply pending SQL migrations to the configured database (CASEBOOK_DATABASE_URL, or embedded).
migrate: install
	$(VENV)/bin/casebook migrate

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
	$(PY) -m bench.write
	$(PY) -m bench.relay
	$(PY) -m bench.projection
	$(PY) -m bench.audit
