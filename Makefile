# Quick start: `make demo` then `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tfcnn-installed
TORCH_PIN := torch==2.13.0

.PHONY: install demo test bench bench-large lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, from the local wheel, so the package's torch range is already met.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tfcnn demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Every benchmark script: run.py (training, scoring) and any benchmarks/bench_*.py.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py
	@for f in $(wildcard benchmarks/bench_*.py); do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# The genome-scale run: tfcnn scan of 1,600 TFs x 20,000 genes (synthetic 20,000 x 1,000).
bench-large: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py --large

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
