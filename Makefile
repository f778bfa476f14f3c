# The two commands that matter: `make run` (the demo shop) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test lint typecheck format test-sqlite test-postgres test-fast test-stripe css bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## The demo: SQLite, the Stripe emulator, a seeded catalog, on http://localhost:8000
run: $(STAMP)
	$(PY) scripts/dev.py

## As in production: granian, several processes, pages and /live/ on one port (bench/README.md)
serve: $(STAMP)
	$(PY) scripts/serve.py

## Benchmarks: the grid against a trivial view, live fan-out to 10,000 SSE clients (SQLite, PG)
bench: $(STAMP)
	$(PY) bench/run.py
	scripts/with-postgres.sh $(PY) bench/run.py

## Everything: lint, the suite on SQLite, then on a throwaway PostgreSQL (browser tests included)
test: $(STAMP) lint
	scripts/ensure-chromium.sh
	$(MAKE) test-sqlite
	$(MAKE) test-postgres

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## Types alone: mypy with django-stubs, strict on the app packages (pyproject.toml); also in lint
typecheck: $(STAMP)
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite"
	DATABASE_URL=sqlite:///$(CURDIR)/.test.sqlite3 $(PY) -m pytest $(PYTEST_ARGS)

test-postgres: $(STAMP)
	@echo "== test suite on PostgreSQL"
	scripts/with-postgres.sh $(PY) -m pytest $(PYTEST_ARGS)

## The contract tests against Stripe's test mode, not the emulator (network; `make test` runs
## them against the emulator). Needs STRIPE_SECRET_KEY=sk_test_...: skipped without, refused
## for any other key.
test-stripe: $(STAMP)
	@echo "== contract tests against Stripe's test mode"
	STRIPE_CONTRACT_TARGET=stripe DATABASE_URL=sqlite:///$(CURDIR)/.test.sqlite3 \
		$(PY) -m pytest tests/contract -p no:cacheprovider $(PYTEST_ARGS)

## Rebuild static/css/app.css with the Tailwind CLI (needs Node; the built file is committed)
css:
	npm install --no-audit --no-fund
	npm run css
	npm run vendor

clean:
	rm -rf $(VENV) staticfiles .pytest_cache
