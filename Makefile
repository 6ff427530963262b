# Two commands for a fresh clone: `make book` and `make test`. Both set up .venv when missing.
VENV       ?= .venv
PY         := $(VENV)/bin/python
# The CPU wheel on these machines; override e.g. TORCH_SPEC='torch' on a machine with CUDA.
TORCH_SPEC ?= torch==2.13.0
# --all: the budget is not a Sphinx input, so every page is rebuilt (and every chapter re-executed)
BUILD_FLAGS = -W -n --keep-going --all

.PHONY: setup settings lab book book-execute book-student test lint unit plant-bugs fashion-mnist lock drift notebooks build-smoke ci-chain browser-check browser-pages browser-lite colab-check colab-env mathjax pyodide chromium serve strip clean bench

setup: $(VENV)/.installed

# The ranges of requirements.txt are for readers (Colab brings its own versions); the book and CI
# install the exact versions of constraints.txt, a lock that `make lock` generates with pip-compile,
# so a build next year gets today's libraries. torch is left out of the lock: TORCH_SPEC installs it.
# --no-compile: pip would byte-compile every module of every wheel (torch's and SymPy's thousands) at install,
# 64 of the install's 164 s here; Python compiles the modules a program imports when it first imports them.
$(VENV)/.installed: requirements.txt pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q --no-compile "$(TORCH_SPEC)"
	$(PY) -m pip install -q --no-compile -r requirements.txt -c constraints.txt -e .
	touch $@
	$(STAMP)

## make lock: regenerate constraints.txt from requirements.txt, pyproject.toml and constraints.in
lock: setup
	$(PY) -m pip install -q pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
	  --unsafe-package torch --output-file constraints.txt requirements.txt pyproject.toml constraints.in

## make drift: the notebooks and unit tests against the newest versions requirements.txt allows (not the
## lock), in .venv-drift, torch kept at TORCH_SPEC; a failure here is a library change readers will meet
DRIFT = .venv-drift
drift:
	test -x $(DRIFT)/bin/python || python3 -m venv $(DRIFT)
	$(DRIFT)/bin/python -m pip install -q "$(TORCH_SPEC)"
	$(DRIFT)/bin/python -m pip install -q --upgrade -r requirements.txt -e .
	$(DRIFT)/bin/python -m pip list --format=freeze > _build/drift-versions.txt 2>/dev/null || true
	$(DRIFT)/bin/pytest -q -n 2 tests
	VAEBOOK_BUDGET=smoke $(DRIFT)/bin/pytest -q --nbval-lax -n 2 --dist loadfile notebooks

# The chapters' kernels read this IPython profile: log level ERROR drops the warning every kernel prints
# at start-up about local TCP without encryption (tools/book_quiet.py drops myst's config dumps).
KERNEL_PROFILE = _build/ipython/profile_default/ipython_kernel_config.py
JB = IPYTHONDIR=$(CURDIR)/_build/ipython $(VENV)/bin/jupyter-book
$(KERNEL_PROFILE):
	mkdir -p $(@D)
	echo 'c.IPKernelApp.log_level = "ERROR"  # written by the Makefile: a quiet build log' > $@

## make book: execute every chapter at the default budget and write _build/html. The environment and
## MathJax are made side by side; the chapters run two at a time, one thread each, into Jupyter Book's
## cache (tools/book_execute.py, emptied first), while Pyodide, which only the build needs, is fetched;
## the build then takes every chapter's outputs from there
book:
	$(MAKE) --no-print-directory -j2 setup mathjax fashion-mnist
	$(MAKE) --no-print-directory settings $(KERNEL_PROFILE)
	$(MAKE) --no-print-directory -j2 pyodide book-execute
	$(JB) build . $(BUILD_FLAGS)

# the chapters of `make book`, executed (a step of it, not a target to call alone)
book-execute:
	IPYTHONDIR=$(CURDIR)/_build/ipython $(PY) tools/book_execute.py
	@echo
	@echo "Book written to $(CURDIR)/_build/html"
	@echo "  open file://$(CURDIR)/_build/html/index.html in a browser, or run 'make serve' for http://127.0.0.1:$(PORT)/"

## make book-student: the book with every exercise and no solution, in _build/student/_build/html, from
## `make book`'s executed chapters (tools/book_student.py; it runs `make book` first when they are missing
## or older than the chapters' code)
book-student: setup mathjax pyodide
	$(PY) tools/book_student.py --check || $(MAKE) --no-print-directory book
	$(PY) tools/book_student.py
	$(JB) build _build/student-src --path-output _build/student $(BUILD_FLAGS)
	@echo "Student edition written to $(CURDIR)/_build/student/_build/html"

# The budget and device, checked before a build: a bad VAEBOOK_BUDGET is one line, not a Sphinx traceback.
settings: setup
	@$(PY) -c "import sys; from vaelib import config; sys.exit(config.check_settings())"

## make lab: open the chapters in JupyterLab on this machine (installs jupyterlab into .venv the first time)
lab: setup
	@$(PY) -c "import jupyterlab" 2>/dev/null || $(PY) -m pip install -q jupyterlab
	$(VENV)/bin/jupyter lab notebooks

## make serve: serve the built book on this machine only
PORT ?= 8000
serve:
	@test -f _build/html/index.html || { echo "no book yet: run 'make book' first"; exit 1; }
	@echo "Serving $(CURDIR)/_build/html at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(PY) -m http.server --bind 127.0.0.1 --directory _build/html $(PORT)

## make test: the book's environment, the Colab-like one and MathJax made side by side; lint; then side by
## side: the unit tests and the planted-bug audit, and the chain: every chapter under nbval in a Colab-like
## kernel, the book built at the smoke budget from those executions, and the reader's check of every page
## in headless Chromium (the in-page runs of two chapters; `make browser-check` runs all)
# On 2 cores: the two environments are each one pip process, so they go together; then every job
# single-threaded (VAEBOOK_THREADS=1: two torch threads per process on a busy 2-core machine were measured
# 5-30x slower than one), the chain at normal priority, the unit tests and the audit below everything else
# (tools/lowprio.py: a session of their own at autogroup nice 19, since `nice` alone does not rank one
# session's processes against another's, and every Jupyter kernel is a session), so they take the CPU
# the chain leaves. Each chapter executes once: nbval's outputs are the book's (tests_book/nbval_capture.py);
# `make book` and `make build-smoke` execute the chapters themselves, with the locked versions.
NICE = $(abspath $(PY)) $(CURDIR)/tools/lowprio.py --
# each of make test's stages prints the time it ended, so a CI log says where the minutes went
STAMP = @echo "[$$(date +%T)] $@ done"
CI_LITE_PAGES = notebooks/01_elbo.html,notebooks/06_beta_vae_kkt.html
test:
	@echo "[$$(date +%T)] make test started"
	$(MAKE) --no-print-directory -j3 setup colab-env mathjax
	$(MAKE) --no-print-directory lint
	VAEBOOK_THREADS=1 PLANT_WORKERS=1 $(MAKE) --no-print-directory -j4 -O \
	  UNIT_RUN="$(NICE)" PLANT_RUN="$(NICE)" unit plant-bugs ci-chain

# CI's longest chain: nbval in the Colab-like kernel (two notebooks at a time), keeping the executed
# notebooks; the smoke build from them; then the pages and the in-page runs side by side
COLAB_EXECUTED = $(CURDIR)/_build/colab-executed
ci-chain: setup mathjax pyodide chromium $(KERNEL_PROFILE)
	$(MAKE) --no-print-directory COLAB_JOBS=2 COLAB_ARGS="--save-executed $(COLAB_EXECUTED)" colab-check
	$(MAKE) --no-print-directory BOOK_EXECUTED="$(COLAB_EXECUTED)" build-smoke
	BOOK_LITE_PAGES="$(CI_LITE_PAGES)" $(MAKE) --no-print-directory -j2 -O browser-pages browser-lite

lint: setup
	$(VENV)/bin/ruff check vaelib tests tests_book tools bench notebooks book
	$(VENV)/bin/ruff format --check notebooks book
	$(NBSTRIPOUT) --verify notebooks/*.ipynb book/*.ipynb || { echo "Notebooks must be committed stripped: run 'make strip'"; exit 1; }

unit: setup fashion-mnist
	$(UNIT_RUN) $(VENV)/bin/pytest -q -n 2 tests
	$(STAMP)

## make plant-bugs: plant known bugs in a copy of vaelib, one at a time, and check that the tests catch each
plant-bugs: setup
	$(PLANT_RUN) $(PY) tools/plant_bugs.py
	$(STAMP)

# Debian's dataset-fashion-mnist: the 28x28 images of chapter 00 and of the `full` budget without a
# download, and the real files its tests read (skipped, not failed, where apt cannot install it; chapter
# 00 then downloads them, or falls back to the 8x8 digits and says so)
fashion-mnist:
	@test -d /usr/share/datasets/fashion-mnist || { apt-get update -q >/dev/null \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null; } \
	  || echo "dataset-fashion-mnist could not be installed: its tests on the real files will be skipped, chapter 00 downloads the files or uses the digits"

## make notebooks: every chapter under nbval in the book's own environment (CI runs nbval in the
## Colab-like kernel instead: colab-check)
notebooks: setup
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(VENV)/bin/pytest -q --nbval-lax -n $${NB_WORKERS:-2} --dist loadfile notebooks

## make build-smoke: the book at the smoke budget, its chapters executed as `make book` executes them
## (tools/book_execute.py, BOOK_WORKERS at a time, default 2), then built from the cache; with
## BOOK_EXECUTED=<folder>, the chapters found there are taken as executed (make test's chain)
build-smoke: setup mathjax pyodide $(KERNEL_PROFILE)
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(MAKE) --no-print-directory settings
	rm -rf _build/html
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} IPYTHONDIR=$(CURDIR)/_build/ipython $(PY) tools/book_execute.py --workers $${BOOK_WORKERS:-2} \
	  $(if $(BOOK_EXECUTED),--executed "$(BOOK_EXECUTED)")
	@echo "[$$(date +%T)] $@: chapters executed"
	VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(JB) build . $(BUILD_FLAGS)
	$(STAMP)

## browser-check: every page of _build/html (or BOOK_HTML) in headless Chromium, and the math fixture book;
## screenshots in _build/screenshots
BROWSER_PAGES = tests_book/test_html.py tests_book/test_math_fixture.py tests_book/test_explorer.py
browser-check: setup mathjax chromium
	$(VENV)/bin/pytest -q -p no:cacheprovider $(BROWSER_PAGES) tests_book/test_lite.py
# the two halves of browser-check: every page, the math fixture and the explorer; the in-page runs
browser-pages: setup mathjax chromium
	$(VENV)/bin/pytest -q -p no:cacheprovider $(BROWSER_PAGES)
	$(STAMP)
browser-lite: setup mathjax chromium
	$(VENV)/bin/pytest -q -p no:cacheprovider tests_book/test_lite.py
	$(STAMP)

## colab-check: every chapter under nbval in a kernel whose environment holds only Colab's packages + vaelib
## (_build/venv-colab, made the first time)
COLAB = cd "$${TMPDIR:-/tmp}" && VAEBOOK_THREADS=$${VAEBOOK_THREADS:-1} TORCH_SPEC='$(TORCH_SPEC)' VAEBOOK_BUDGET=$${VAEBOOK_BUDGET:-smoke} $(COLAB_RUN) $(abspath $(PY)) $(CURDIR)/tests_book/colab_like.py $(COLAB_ARGS)
colab-check: setup
	$(COLAB)
	$(STAMP)
# made with the system's python3 (colab_like.py needs only the standard library for it), so it can be made
# while `setup` makes .venv
colab-env:
	cd "$${TMPDIR:-/tmp}" && TORCH_SPEC='$(TORCH_SPEC)' python3 $(CURDIR)/tests_book/colab_like.py --setup-only
	$(STAMP)

# MathJax 3 from npm, served with the book (tools/book_mathjax.py) so its math renders offline.
MATHJAX_JS := _build/mathjax-site/mathjax/tex-mml-chtml.js
mathjax: $(MATHJAX_JS)
$(MATHJAX_JS):
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q npm; }
	npm install --silent --no-audit --no-fund --prefix _build/mathjax-npm mathjax@3
	rm -rf _build/mathjax-site && mkdir -p _build/mathjax-site
	cp -r _build/mathjax-npm/node_modules/mathjax/es5 _build/mathjax-site/mathjax
	test -s $@

# Pyodide for the derivation chapters' in-browser runs (tools/book_lite.py), served with the book: the
# core from npm, the wheels the kernel and SymPy need from PyPI, its lock's hashes set to those wheels'.
LITE_MJS := _build/lite-dir/static/pyodide/pyodide.mjs
pyodide: $(LITE_MJS)
$(LITE_MJS): tools/lite_pyodide.py constraints.txt | setup $(MATHJAX_JS)
	command -v npm >/dev/null || { apt-get update -q && apt-get install -y -q npm; }
	$(PY) tools/lite_pyodide.py _build/lite-dir
	test -s $@

# Debian's headless-capable Chromium for browser-check (skipped when one is on PATH).
chromium:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || command -v google-chrome >/dev/null \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# The chapters are committed without outputs: nbstripout strips outputs, execution counts, the cells'
# `execution` and the notebook's `widgets` metadata (both among its defaults, named here for clarity),
# and writes nothing to a notebook that is already clean. --keep-id keeps the committed cell ids
# (nbstripout renumbers them 0, 1, ... otherwise). The same arguments as .pre-commit-config.yaml.
NBSTRIPOUT = $(VENV)/bin/nbstripout --keep-id --extra-keys "metadata.widgets cell.metadata.execution"
strip: setup
	$(NBSTRIPOUT) notebooks/*.ipynb book/*.ipynb

bench: setup
	$(PY) bench/train_throughput.py
	$(PY) bench/fit_many_throughput.py

clean:
	rm -rf _build
