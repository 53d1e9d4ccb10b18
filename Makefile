# Persona Engine: `make run` serves the app, `make test` runs ruff and the whole suite.
# Both need only python3, make and, for the tests, Debian chromium + chromium-driver (browser
# tests) and postgresql (database sources on a throwaway server); `make test` installs those
# with apt-get when run as root.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMEDRIVER ?= /usr/bin/chromedriver
CHROMIUM ?= /usr/lib/chromium/chromium

.DEFAULT_GOAL := help
.PHONY: help venv browser postgres run test lint bench clean distclean

help:
	@echo "make run        serve the app on http://127.0.0.1:8050 (creates .venv first)"
	@echo "make test       ruff + the whole pytest suite, browser tests included"
	@echo "make lint       ruff only"
	@echo "make bench      benchmarks (python -m benchmarks)"
	@echo "make clean      remove instance/ and caches; make distclean also removes .venv"

venv: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The stamp is newer than both requirement files once they are installed; editing either one
# reinstalls. The interpreter is order-only: its symlink's date says nothing about packages.
$(STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

browser:
	@if [ -x "$(CHROMEDRIVER)" ] && [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing chromium and chromium-driver for the browser tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver; \
	else \
		echo "The browser tests need headless Chromium and its driver; missing:" >&2; \
		for f in "$(CHROMIUM)" "$(CHROMEDRIVER)"; do [ -x "$$f" ] || echo "  $$f" >&2; done; \
		echo "Install them as root (Debian/Ubuntu):" >&2; \
		echo "  sudo apt-get update && sudo apt-get install -y chromium chromium-driver" >&2; \
		exit 1; \
	fi

# The tests start their own PostgreSQL server (tests/unit/conftest.py): they need initdb,
# pg_ctl and postgres on PATH or in /usr/lib/postgresql/*/bin, where Debian's package puts them
# (the package also creates the postgres user the server runs as when the tests run as root).
postgres:
	@if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then exit 0; fi; \
	for d in /usr/lib/postgresql/*/bin; do \
		[ -x "$$d/initdb" ] && [ -x "$$d/pg_ctl" ] && [ -x "$$d/postgres" ] && exit 0; \
	done; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing postgresql for the database-source tests"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends postgresql; \
	else \
		echo "The database-source tests need the PostgreSQL server (initdb, pg_ctl, postgres)" >&2; \
		echo "on PATH or in /usr/lib/postgresql/*/bin. Install it as root (Debian/Ubuntu):" >&2; \
		echo "  sudo apt-get update && sudo apt-get install -y postgresql" >&2; \
		exit 1; \
	fi

run: venv
	$(BIN)/python app.py

test: venv browser postgres
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .

bench: venv
	$(BIN)/python -m benchmarks

clean:
	rm -rf instance .pytest_cache .ruff_cache benchmarks/out
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
