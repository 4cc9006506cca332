# Two commands: `make run` (the whole system on SQLite) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: run test test-quick clean

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

clean:
	rm -rf $(VENV) var
