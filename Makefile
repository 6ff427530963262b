# Two commands for a fresh clone: `make book` and `make test`. Both set up .venv when missing.
VENV       ?= .venv
PY         := $(VENV)/bin/python
# The CPU wheel on these machines; override e.g. TORCH_SPEC='torch' on a machine with CUDA.
TORCH_SPEC ?= torch==2.13.0
BUILD_FLAGS = -W -n --keep-going

.PHONY: setup book test lint unit notebooks build-smoke strip clean bench

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -r requirements.txt -e .
	touch $@

## make book: execute every chapter at the default budget and write _build/html
book: setup
	$(VENV)/bin/jupyter-book build . $(BUILD_FLAGS)
	@echo "Book written: open $(CURDIR)/_build/html/index.html"

## make test: lint, unit tests, every notebook under nbval, and the book build (smoke budget)
test: setup lint unit notebooks build-smoke

lint: setup
	$(VENV)/bin/ruff check vaelib tests tools bench notebooks
	$(PY) tools/strip_notebooks.py --check

unit: setup
	$(VENV)/bin/pytest -q -n 2 tests

notebooks: setup
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(VENV)/bin/pytest -q --nbval-lax -n 2 --dist loadfile notebooks

build-smoke: setup
	rm -rf _build/.jupyter_cache _build/html
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(VENV)/bin/jupyter-book build . $(BUILD_FLAGS)

strip:
	$(PY) tools/strip_notebooks.py

bench: setup
	$(PY) bench/train_throughput.py

clean:
	rm -rf _build
