# Two commands: `make run` (the whole system on SQLite) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test test-quick compose-env clean

$(STAMP): pyproject.toml relay_agent/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' -e ./relay_agent
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py bootstrap_demo
	$(BIN)/honcho start -f Procfile

test: $(STAMP)
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

test-quick: $(STAMP)
	$(BIN)/pytest -n auto -m "not e2e" $(PYTEST_ARGS)

compose-env:  # fresh random secrets for compose.yaml
	@test ! -e .env || { echo ".env exists; remove it first"; exit 1; }
	@$(PYTHON) -c 'import base64, os, secrets; k = lambda: base64.b64encode(os.urandom(32)).decode(); 	print(f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}
SECRET_KEY={secrets.token_urlsafe(50)}
CREDENTIAL_KEYS=k1:{k()}
TRANSPORT_KEYS=t1:{k()}")' > .env
	@chmod 600 .env && echo "wrote .env"

clean:
	rm -rf $(VENV) var
