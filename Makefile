# The two commands a new machine needs:  make demo   and   make test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_NOW ?= 2014-11-26T18:00:00-05:00

.PHONY: demo test test-quick lint typecheck install clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "forescale needs Python >= 3.11")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python venv missing: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

## make demo: set up and run the main job on the bundled default (no cloud account needed)
demo: $(STAMP)
	@tmp=$$(mktemp -d -t forescale-demo.XXXXXX) && \
	  cp -R config/examples/demo/. "$$tmp"/ && \
	  echo "demo copied to $$tmp (the repository is not touched)" && \
	  $(BIN)/forescale plan --config "$$tmp/forescale.yaml" --now $(DEMO_NOW) && \
	  echo "same plan as HTML with a plot: $(BIN)/forescale plan --config $$tmp/forescale.yaml --now $(DEMO_NOW) --format html -o report.html"

## make test: set up and pass the whole suite (lint, types, all tests)
test: $(STAMP) lint typecheck
	VENV=$(VENV) scripts/test-setup.sh
	$(BIN)/python -m pytest -q -p no:cacheprovider

## quick loop while working: no Prophet fits, no servers
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not external_service"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
