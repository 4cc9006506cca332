# Two commands: `make run` (the whole system on SQLite) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
PORT ?= 8000

.PHONY: run test test-all test-quick lint-imports lock audit compose-env clean

$(STAMP): pyproject.toml relay_agent/pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[test]' -e ./relay_agent
	touch $(STAMP)

# `make run PORT=8123` serves the hub on another port. The processes read RELAYHUB_PORT, since honcho
# gives each one a PORT of its own; umask 077 keeps var/ and everything written there private.
run: $(STAMP)
	@$(BIN)/python deploy/check_port.py $(PORT)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_demo --port $(PORT)
	umask 077 && RELAYHUB_PORT=$(PORT) $(BIN)/honcho start -f Procfile

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

# Everything, as CI runs it: starts PostgreSQL and Redis on 127.0.0.1 (installed already), then SQLite and PostgreSQL.
test-all: $(STAMP)
	./deploy/start_test_services.sh
	REDIS_URL=redis://127.0.0.1:6379/0 $(MAKE) test
	REDIS_URL=redis://127.0.0.1:6379/0 DATABASE_URL=postgres://relayhub:relayhub@127.0.0.1:5432/relayhub $(MAKE) test

test-quick: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/pytest -n auto -m "not e2e" $(PYTEST_ARGS)

lint-imports: $(STAMP)  # the layering contracts in pyproject.toml (README, "Architecture")
	$(BIN)/lint-imports

lock:  # re-pin every dependency after changing pyproject.toml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet -e '.[test]' -e ./relay_agent
	.lock-venv/bin/pip freeze --exclude-editable | grep -v '^-e' > requirements.lock
	rm -rf .lock-venv

audit: $(STAMP)  # what .ci/run checks besides the tests
	DJANGO_SETTINGS_MODULE=relayhub.settings_production SECRET_KEY=$$(head -c48 /dev/urandom | base64) \
	CREDENTIAL_KEYS=k1:$$(head -c32 /dev/urandom | base64) TRANSPORT_KEYS=t1:$$(head -c32 /dev/urandom | base64) \
	ALLOWED_HOSTS=hub.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/bandit -q -r relayhub assignments commands credentials configpush fleet runbooks notifications audit agentupdates relay_agent/relay_agent -x '*/migrations/*'
	$(BIN)/pip-audit -r requirements.lock --no-deps --progress-spinner off

compose-env:  # fresh random secrets for compose.yaml
	@test ! -e .env || { echo ".env exists; remove it first"; exit 1; }
	@umask 077 && $(PYTHON) deploy/make_env.py > .env && echo "wrote .env"

clean:
	rm -rf $(VENV) var

.PHONY: bench bench-quick

bench: $(STAMP)  # SPEC §9 benchmark: starts its own PostgreSQL, Redis, hubs, agents, sshd; appends bench/RESULTS.md
	$(BIN)/python -m bench.run

bench-quick: $(STAMP)  # every bench scenario at small sizes (< 2 min); fails only if a scenario crashes
	$(BIN)/python -m bench.run --quick
