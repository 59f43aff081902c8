# Courier: `make run` starts it (`make run PORT=8123` on another port), `make test` runs the whole suite.
# Both install what they need.
PYTHON ?= python3
# Empty: COURIER_PORT from the environment or .env, else 8000 (etlsite/settings.py).
PORT ?=
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: run test install install-test demo serve lint clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $@

$(VENV)/.installed-test: requirements-test.txt $(VENV)/.installed
	$(PY) -m pip install -q -r requirements-test.txt
	touch $@

install: $(VENV)/.installed
	scripts/system-packages.sh run

install-test: $(VENV)/.installed-test
	scripts/system-packages.sh test

demo: install
	scripts/ensure-env.sh
	$(PY) manage.py migrate --noinput -v0
	$(PY) manage.py ensure_admin
	$(PY) manage.py load_demo

run: demo
	$(if $(PORT),COURIER_PORT=$(PORT) )scripts/serve.sh

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .

test: install-test lint
	DJANGO_ALLOW_ASYNC_UNSAFE=true $(PY) -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) var .pytest_cache
