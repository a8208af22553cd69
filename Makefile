# Two commands: `make run` sets up and serves the demo; `make test` runs every test.
VENV    ?= .venv
PYTHON  ?= python3
PIP      = $(VENV)/bin/pip
FANGAN   = $(VENV)/bin/fangan
HOST    ?= 127.0.0.1
PORT    ?= 5000

.PHONY: run test install install-test system-deps system-deps-test translations lint docs lock clean

## run: set everything up (virtualenv, packages, fonts, database, demo district, admin) and serve
run: install system-deps translations
	@# Served over plain http on this machine, so the session cookie cannot be Secure-only here.
	FANGAN_SECURE_COOKIES=0 $(FANGAN) setup --url http://$(HOST):$(PORT)
	FANGAN_SECURE_COOKIES=0 $(FANGAN) run --host $(HOST) --port $(PORT)

# Awkward instants the date-dependent tests run at again (tests/support/clock.py): the first working day of a
# year the built-in calendar does not know, and 00:30 on the 1st in Beijing (still the previous day in UTC).
OTHER_DATES ?= 2027-01-04T09:00:00+08:00 2026-12-01T00:30:00+08:00

## test: install test extras (chromium, PostgreSQL), lint, and run the suite on SQLite and PostgreSQL
test: install-test system-deps-test translations
	$(VENV)/bin/ruff check server tests bench
	$(VENV)/bin/lint-imports --no-logo --no-cache
	$(FANGAN) docs --check
	$(VENV)/bin/python -m pytest
	@for now in $(OTHER_DATES); do \
	  echo "== the suite again at $$now (SQLite, without the browser)"; \
	  FANGAN_TEST_NOW=$$now FANGAN_TEST_BACKENDS=sqlite $(VENV)/bin/python -m pytest -q -m "not browser" \
	    tests/unit tests/integration || exit 1; \
	done

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml constraints.txt
	$(PIP) install -q -c constraints.txt -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

system-deps:
	scripts/system-deps.sh run

system-deps-test:
	scripts/system-deps.sh test

translations: $(VENV)/.installed
	$(VENV)/bin/pybabel compile -f -d server/translations

## extract UI strings into the catalogue (then translate server/translations/*/LC_MESSAGES/messages.po)
messages: $(VENV)/.installed
	$(VENV)/bin/pybabel extract -w 120 -F babel.cfg -k _l -k lazy_gettext -k N_ -k _noun:1c,2 -o server/translations/messages.pot server themes
	$(VENV)/bin/pybabel update -w 120 --no-fuzzy-matching -i server/translations/messages.pot -d server/translations

docs: $(VENV)/.installed
	$(FANGAN) docs

## lock: refresh constraints.txt from the current virtualenv
lock:
	$(PIP) freeze --exclude-editable | grep -v '^-e' > constraints.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
