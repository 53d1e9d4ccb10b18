# Persona Engine: `make run` serves the app, `make test` runs ruff and the whole suite.
# Both need only python3, make and (for the browser tests) Debian chromium + chromium-driver.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMEDRIVER ?= /usr/bin/chromedriver
CHROMIUM ?= /usr/lib/chromium/chromium

.DEFAULT_GOAL := help
.PHONY: help venv browser run test lint bench clean distclean

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

run: venv
	$(BIN)/python app.py

test: venv browser
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
