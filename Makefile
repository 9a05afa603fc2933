VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip

.PHONY: install run migrate test test-kafka lint fmt typecheck bench bench-smoke

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

# Type and lint checks first, so the last line printed is pytest's summary. Needs only
# Python: PostgreSQL is embedded, the broker is tansu (CASEBOOK_TEST_DATABASE_URL adds an
# external server for the storage tests).
test: install
	$(VENV)/bin/mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m 'not apache_kafka'

# The Apache Kafka tier: the same pipeline tests on a real broker (KRaft) and a
# three-broker cluster, resolved from Maven Central once and run on the machine's Java.
test-kafka: install
	@command -v java >/dev/null && command -v mvn >/dev/null || { \
	    echo 'make test-kafka needs Java 17+ and Maven: apt-get install openjdk-17-jdk-headless maven' >&2; \
	    exit 1; }
	$(PY) -m entrypoints.apache_kafka --resolve-only
	$(PY) -m pytest -m apache_kafka

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

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
	$(PY) -m bench.bundle

# Every bench at a tiny size (embedded PostgreSQL and tansu, seconds each): fails when a
# bench is broken; its figures mean nothing. See bench/README.md.
bench-smoke: install
	$(PY) bench/clock.py --smoke
	$(PY) -m bench.write --smoke
	$(PY) -m bench.relay --smoke
	$(PY) -m bench.projection --smoke
	$(PY) -m bench.audit --smoke
	$(PY) -m bench.bundle --smoke
