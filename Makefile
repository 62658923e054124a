# The two commands of the README's quick start, plus benchmarks.
# Only Python 3.11 (and Debian's packages) are assumed: each target makes its own venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test test-faults bench check venv clean messages

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements.txt | $(VENV)/bin/python
	$(PIP) install -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	touch $(VENV)/.runtime $@

venv: $(VENV)/.runtime

## make run: migrate, set up the demo and run portal, task cluster and both sandboxes
## (DEBUG on for this embedded demo only, unless DEBUG is set: Django's debug pages; off everywhere else)
run: $(VENV)/.runtime
	DEBUG=$${DEBUG:-true} $(PY) manage.py runportal

## make test: lint and format check (ruff, pyproject.toml), Django's checks, the missing-migrations
## check, the whole test suite on SQLite and, beside it, the order, quota, rate-budget and
## worker-process tests on a private PostgreSQL server
test: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	bash tests/run.sh $(PY)

## make test-faults: the fault suite (tests/faults): PostgreSQL, Redis (Debian's redis-server), both
## sandboxes, two web hosts (gunicorn) and two cluster hosts as processes on loopback, each case a
## fault (a host killed, Redis or PostgreSQL restarted, Hogia down, 429s, duplicate and fuzzed
## webhooks) ending with its count of orders; the table goes to test-artifacts/faults.md
test-faults: $(VENV)/.dev
	$(PY) -m pytest -c tests/faults/pytest.ini tests/faults

## make messages: the catalogues after the portal's texts changed: new strings into locale/*/django.po
## (translate the Swedish ones, then run it again), and the compiled .mo files, which are committed
## so that `make run` needs no gettext. Needs GNU gettext. tests/portal/test_translations.py runs
## the same makemessages.
messages: $(VENV)/.runtime
	$(PY) manage.py makemessages -l sv -l en --ignore=tests --ignore=node_modules --ignore=data \
		--ignore=staticfiles --add-location=file --no-obsolete
	$(PY) manage.py compilemessages -l sv -l en --ignore=.venv

## make bench: every benchmark, each ending with one line of JSON
bench: $(VENV)/.runtime
	$(PY) manage.py benchmark all

clean:
	rm -rf $(VENV)
