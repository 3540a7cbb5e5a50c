# ScrapeMaster — the targets a newcomer would guess.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-fast lint format bench chaos soak sim clean install system-deps lock

# the versions of requirements.lock, so every machine runs what the tests ran against; after
# changing pyproject.toml's dependencies: make lock
$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.lock -e '.[dev]'
	touch $(STAMP)

# pins that still fit are kept; `make lock ARGS=--upgrade` moves every package to its newest
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet uv
	$(VENV)/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 --universal \
		-o requirements.lock $(ARGS)

install: $(STAMP) system-deps

system-deps:
	@bash deploy/system-deps.sh

run: install
	$(PY) deploy/local.py $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# two test processes (pytest-xdist), a test file each at a time: most tests wait on real
# processes, so two keep both cores busy; `make test TEST_WORKERS=0` runs them in one
TEST_WORKERS ?= 2

test: install lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

# the benchmarks (python -m bench --help lists every subcommand); ARGS="--save" keeps the
# figures in bench/figures/, then `$(PY) -m bench report` regenerates docs/benchmarks.md
bench: install
	$(PY) -m bench all $(ARGS)

chaos: install
	$(PY) -m bench chaos $(ARGS)

soak: install
	$(PY) -m bench soak $(ARGS)

sim: install
	$(PY) -m deploy.sim $(ARGS)

# docs/configuration.md from the settings' descriptions, then the site into build/site
.PHONY: docs
docs: $(STAMP)
	$(PY) -m shared.settings_docs
	$(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) var build *.egg-info .mypy_cache .ruff_cache bench/results
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
