# Quick start: `make demo` then `make test`. Everything installs into .venv.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.tfcnn-installed
TORCH_PIN := torch==2.13.0

.PHONY: install demo test bench bench-large lint docs docs-serve notebook clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, from the local wheel, so the package's torch range is already met; then
# the package with every extra and the PEP 735 `dev` group (tests, lint, docs, build),
# which needs pip >= 25.1.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check 'pip>=25.1'
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH_PIN)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[all]' --group dev
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

# The documentation site (mkdocs.yml): built with warnings as errors into build/site.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# On 127.0.0.1:8001 (tfcnn serve uses 8000); DOCS_ADDR=host:port to move it.
DOCS_ADDR ?= 127.0.0.1:8001
docs-serve: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --dev-addr $(DOCS_ADDR)

# docs/tutorial.ipynb executed end to end on a reduced setting (TFCNN_TUTORIAL_EPOCHS).
notebook: $(STAMP)
	TFCNN_TUTORIAL_EPOCHS=$${TFCNN_TUTORIAL_EPOCHS:-2} $(BIN)/python scripts/run_notebook.py docs/tutorial.ipynb

clean:
	rm -rf $(VENV) build dist site src/*.egg-info .pytest_cache .ruff_cache
