# Tenantry — two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
export XDG_RUNTIME_DIR ?= /tmp
export PORT
# Production is the app's default; these targets are a developer's machine.
# `make test` runs with TENANTRY_ENV=test (set below).
TENANTRY_ENV ?= development
export TENANTRY_ENV

.PHONY: install peers run test test-fast e2e check lint format demo migrate bench clean help

help:
	@echo "make run    - set up and serve the app with demo data on http://localhost:$(PORT)"
	@echo "make test   - set up and run the whole test suite"
	@echo "make check  - report the database security posture"

# The virtual environment is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(BIN)/flask --app wsgi db upgrade heads

# Demo data is loaded once; `make demo` loads it again (it is idempotent).
instance/.demo-loaded: | migrate
	$(BIN)/flask --app wsgi demo
	@mkdir -p instance && touch $@

demo: migrate
	$(BIN)/flask --app wsgi demo

# One worker runs beside the web server (mail, periodic jobs); Ctrl-C stops
# both: the trap sends the worker SIGTERM, and it finishes its running jobs.
# Then the embedded PostgreSQL (no DATABASE_URL) is stopped too, unless
# another live process still uses it: pgserver alone leaves it running once
# any process that used it died without its exit handlers.
run: migrate instance/.demo-loaded
	@$(BIN)/flask --app wsgi banner
	@$(BIN)/flask --app wsgi worker & worker=$$!; \
	stop() { trap - EXIT INT TERM HUP; kill -TERM $$worker 2>/dev/null; wait $$worker 2>/dev/null; \
	  $(BIN)/python -c 'from app.database import stop_embedded_after_run as s; s()'; }; \
	trap stop EXIT INT TERM HUP; \
	$(BIN)/flask --app wsgi run --port $(PORT) --with-threads

# The OpenID Connect provider the SSO tests sign in against (Node's
# oidc-provider), installed from its lock file; without npm those tests skip,
# saying why.
PEER_OIDC := tests/peers/oidc/node_modules/.package-lock.json
$(PEER_OIDC): tests/peers/oidc/package-lock.json
	@if command -v npm >/dev/null; then cd tests/peers/oidc && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the single sign-on tests against a real provider will be skipped"; fi

peers: $(PEER_OIDC)

# The suite runs on one pytest-xdist worker per core; each worker has its own
# database (tests/db.py), SMTP server, live server and browser.
# PYTEST_WORKERS=0 runs it in this one process.
PYTEST_WORKERS ?= auto

test: install peers
	TENANTRY_ENV=test $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

test-fast: install peers
	TENANTRY_ENV=test $(BIN)/python -m pytest -n $(PYTEST_WORKERS) -m "not e2e" $(PYTEST_ARGS)

e2e: install peers
	TENANTRY_ENV=test $(BIN)/python -m pytest -n $(PYTEST_WORKERS) tests/e2e $(PYTEST_ARGS)

# ruff: lint and formatting; lint-imports: the layers contract in
# pyproject.toml (uncached: a stale cache has passed a broken contract).
lint: install
	$(BIN)/ruff check app tests bench migrations wsgi.py
	$(BIN)/ruff format --check app tests bench migrations wsgi.py
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format app tests bench migrations wsgi.py
	$(BIN)/ruff check --fix app tests bench migrations wsgi.py

check: migrate
	$(BIN)/flask --app wsgi check

clean:
	rm -rf $(VENV) instance/pgdata-test .pytest_cache
