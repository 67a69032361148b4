# Everything from a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CONSTRAINTS := $(VENV)/constraints.txt
APT_PACKAGES := espeak-ng sox libsndfile1 chromium
DEMO_INPUT ?= examples/ami_excerpt
DEMO_RUN   ?= demo-run

.PHONY: install demo test test-slow bench lint clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || \
	  echo "warning: could not install$$missing (tests that need them will skip)"; \
	fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# CPU torch first (a local wheel), then pin it so no dependency pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	echo "torch==2.13.0" > $(CONSTRAINTS)
	$(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[test]"
	touch $@

demo: install
	$(BIN)/cpqa build $(DEMO_INPUT) -o $(DEMO_RUN)
	$(BIN)/cpqa status $(DEMO_RUN)
	@echo "Demo results in $(DEMO_RUN)/ — try: $(BIN)/cpqa inspect $(DEMO_RUN) --stage transcribe -n 3"

test: install
	$(BIN)/pytest

test-slow: install
	$(BIN)/pytest -m slow

bench: install
	$(BIN)/python -m benchmarks.run

lint: install
	$(BIN)/pip install -q -c $(CONSTRAINTS) ruff
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_RUN) .pytest_cache
