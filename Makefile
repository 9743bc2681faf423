# Two commands on a fresh machine (Python 3.11, pip, make): `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Precompile .pyc at install: imports stay fast even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1
VENV := .venv
BIN := $(VENV)/bin
STATE := .lakehouse
DEMO_DATA := $(STATE)/demo-data
DEMO_CLIENTS ?= 20000
DEMO_DIRTY_RATE ?= 0.02
DEMO_SEED ?= 42

.PHONY: help install demo test lint dbt-check browser java pytest docs dashboard objectstore-stop clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(BIN)/lakehouse: pyproject.toml uv.lock
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --extra spark
	@touch $@

install: $(BIN)/lakehouse ## Create .venv from uv.lock (installs uv with pip if missing)

demo: install ## Start the object store, generate data, run the pipeline, serve the dashboard
	$(BIN)/lakehouse objectstore start
	@if [ -f $(DEMO_DATA)/generation_manifest.json ]; then \
		echo "reusing the demo data set in $(DEMO_DATA)"; \
	else \
		$(BIN)/lakehouse generate --out $(DEMO_DATA) --clients $(DEMO_CLIENTS) \
			--seed $(DEMO_SEED) --dirty-rate $(DEMO_DIRTY_RATE); \
	fi
	$(BIN)/lakehouse run --sources $(DEMO_DATA)
	$(BIN)/lakehouse where
	$(BIN)/lakehouse dashboard

test: install lint dbt-check pytest ## Lint, dbt build on a generated data set, then pytest

lint: install ## ruff and sqlfluff (dbt templater)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	LAKE_DIR=$$(mktemp -d) $(BIN)/sqlfluff lint models macros tests/reconciliation

dbt-check: install ## dbt build on a small generated dirty data set, then the project-structure checks
	@set -e; lake=$$(mktemp -d); src=$$(mktemp -d); tgt=$$(mktemp -d); \
	trap 'rm -rf "$$lake" "$$src" "$$tgt"' EXIT; \
	$(BIN)/lakehouse generate --out $$src --clients 2000 --seed 7 --end-date 2025-06-30 \
		--dirty-rate 0.05 --batches 2; \
	LAKE_DIR=$$lake $(BIN)/lakehouse ingest $$src; \
	export LAKE_DIR=$$lake DBT_TARGET_PATH=$$tgt; \
	$(BIN)/dbt build --vars '{as_of_date: "2025-06-30"}'; \
	$(BIN)/dbt docs generate --vars '{as_of_date: "2025-06-30"}'; \
	scripts/check_project_structure.sh $$tgt

# The browser tests drive Debian's chromium through Playwright (never `playwright install`).
CHROMIUM := /usr/bin/chromium

browser: ## Install Debian's chromium for the browser tests when it is missing (apt-get)
	@if [ ! -x $(CHROMIUM) ]; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends chromium; \
	fi

# The Spark target (tests/test_spark_parity.py) runs PySpark in-process on a Java 17 runtime.
java: ## Install Debian's Java 17 runtime for the Spark target when `java` is missing (apt-get)
	@if ! command -v java >/dev/null 2>&1; then \
		sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$sudo apt-get update && \
		$$sudo env DEBIAN_FRONTEND=noninteractive \
			apt-get install -y --no-install-recommends openjdk-17-jre-headless; \
	fi

# Two workers (pytest-xdist): most tests wait on subprocesses and servers, so the suite's wall time
# drops by about a third on two cores. PYTEST_WORKERS=0 runs it in this process, in file order.
PYTEST_WORKERS ?= 2

pytest: install browser java ## The pytest suites (browser and Spark tests included)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --no-loadscope-reorder

docs: install ## Generate and serve the dbt docs (lineage) on 127.0.0.1:8080
	$(BIN)/lakehouse docs

dashboard: install ## Serve the dashboard on 127.0.0.1:8501
	$(BIN)/lakehouse dashboard

objectstore-stop: ## Stop the embedded object store
	$(BIN)/lakehouse objectstore stop

clean: ## Remove build output (keeps the lake and the venv)
	rm -rf target logs .pytest_cache .ruff_cache
