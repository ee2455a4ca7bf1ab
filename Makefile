# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# Tests run against real services; these are the local defaults, override them from the environment.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/neurofed
TEST_REDIS_URL ?= redis://127.0.0.1:6379/9

.PHONY: demo test venv browser services clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Debian's chromium drives the browser tests; Playwright's own browser download cannot be used.
browser:
	@command -v chromium >/dev/null || { \
		echo "Installing Debian's chromium for the browser tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

services:
	@bash .ci/services

demo: venv
	@bash bin/demo

# A native crash (TensorFlow, LiteRT) kills pytest with a signal and no summary: name the test it was in.
TEST_PROGRESS := var/test-progress
test: venv browser services
	@mkdir -p var && rm -f $(TEST_PROGRESS)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)} \
		NEUROFED_TEST_PROGRESS_FILE=$(CURDIR)/$(TEST_PROGRESS) $(PY) -m pytest $(PYTEST_ARGS) || { \
		status=$$?; \
		if [ $$status -gt 128 ]; then \
			echo "pytest was killed by signal $$((status - 128)) while running $$(cat $(TEST_PROGRESS) 2>/dev/null)"; fi; \
		exit $$status; }

# var/ holds the development database and, where MEDIA_ROOT was left at its default, every stored scan.
clean:
	@if [ -z "$(FORCE)" ] && [ -n "$$(find var/media -type f -print -quit 2>/dev/null)" ]; then \
		echo "var/media holds stored scans: make clean leaves var/ alone (FORCE=1 make clean removes them too)."; \
		exit 1; fi
	rm -rf $(VENV) var
