# Marketplace Sync: `make run` starts the whole stack, `make test` runs every test.
# Both set up everything they need first (virtualenv, packages, generated code).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# uv.lock pins every dependency with its hashes; `make lock` refreshes it after pyproject.toml
# changes, and setup refuses a lock that pyproject.toml no longer agrees with.
LOCK_HASH := $(shell cat pyproject.toml uv.lock | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(LOCK_HASH)
UV_VERSION := $(shell sed -n 's/^ *"uv==\([^"]*\)".*/\1/p' pyproject.toml)
# uv finds the Pythons given to it; it never downloads one.
export UV_PYTHON_DOWNLOADS := never
# `make test-pythons` runs the unit and storage tests (all but the integration tests) on the
# other supported Pythons too.
OTHER_PYTHONS := 3.12 3.13
EVERY_PYTHON_TESTS := tests --ignore=tests/integration
python_for = $(or $(firstword $(wildcard $(HOME)/.pyenv/versions/$(1).*/bin/python$(1))),python$(1))

# $(call uv_in,VENV,PYTHON): a virtualenv made by PYTHON, holding uv (from pip, the one time
# pip is used).
uv_in = { command -v $(2) >/dev/null || { echo "$(2) is required"; exit 1; }; } \
	&& { test -x $(1)/bin/python || $(2) -m venv $(1); } \
	&& { test -x $(1)/bin/uv || $(1)/bin/python -m pip install -qq --disable-pip-version-check \
		uv==$(UV_VERSION); }
# $(call venv_from_lock,VENV,PYTHON): then exactly the packages of uv.lock, the project editable.
venv_from_lock = $(call uv_in,$(1),$(2)) \
	&& { $(1)/bin/uv lock --check --quiet \
		|| { echo "uv.lock does not match pyproject.toml: run make lock"; exit 1; }; } \
	&& UV_PROJECT_ENVIRONMENT=$(1) $(1)/bin/uv sync --quiet --frozen --extra local --extra dev

.PHONY: run test test-pythons lint lock proto buf buf-baseline migrate table bench clean

$(STAMP): pyproject.toml uv.lock
	@$(call venv_from_lock,$(VENV),$(PYTHON))
	@rm -f $(VENV)/.installed-* && touch $@

## lock: resolve pyproject.toml's dependencies into uv.lock again (after changing any of them)
lock:
	@$(call uv_in,$(VENV),$(PYTHON)) && $(BIN)/uv lock

## run: set up, then start PostgreSQL, DynamoDB (moto), the sandbox marketplace, the services and Envoy
run: $(STAMP)
	@$(BIN)/python -m dev.stack

## test: set up, then lint, type-check and run the whole suite
test: $(STAMP)
	@$(BIN)/ruff check --quiet .
	@$(BIN)/mypy
	@$(BIN)/pytest

## test-pythons: the unit and storage tests on Python 3.12 and 3.13 too, each in .venv-X.Y
# Temporary files in build/: pytest's rotation in /tmp could remove a running session's, and
# checkov skips files under a hidden directory such as .venv-3.12/.
test-pythons: $(OTHER_PYTHONS:%=.venv-%/.installed-$(LOCK_HASH))
	@mkdir -p build && for version in $(OTHER_PYTHONS); do echo "Python $$version:"; \
		.venv-$$version/bin/pytest -p no:cacheprovider --basetemp=build/pytest-$$version \
		$(EVERY_PYTHON_TESTS) || exit 1; done

.venv-%/.installed-$(LOCK_HASH): pyproject.toml uv.lock
	@$(call venv_from_lock,.venv-$*,$(call python_for,$*))
	@rm -f .venv-$*/.installed-* && touch $@

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy

## proto: regenerate the Python stubs, Envoy's descriptor set, the OpenAPI document and the
##        Kubernetes gateway config
proto: $(STAMP)
	@$(BIN)/python protos/generate.py
	@$(BIN)/python protos/openapi.py
	@PYTHON=$(BIN)/python deploy/k8s/render-gateway.sh

.PHONY: openapi swagger-ui
## openapi: regenerate gateway/docs/openapi.json from Envoy's descriptor set (`make proto` does too)
openapi: $(STAMP)
	@$(BIN)/python protos/openapi.py

## swagger-ui: vendor Swagger UI (npm swagger-ui-dist) into gateway/docs, compressed, for /docs
SWAGGER_UI_VERSION := 5.35.0
swagger-ui:
	@npm install --prefix .tools --no-audit --no-fund swagger-ui-dist@$(SWAGGER_UI_VERSION)
	@for file in swagger-ui-bundle.js swagger-ui.css; do \
		gzip -9n < .tools/node_modules/swagger-ui-dist/$$file > gateway/docs/$$file.gz; done

## buf: lint the protos and check them against the last release's (protos/buf-baseline.binpb)
buf: $(STAMP)
	@$(BIN)/python protos/buf.py lint && $(BIN)/python protos/buf.py breaking

## buf-baseline: when cutting a release, make the committed protos the API later ones must keep
buf-baseline: $(STAMP)
	@$(BIN)/python protos/buf.py baseline

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
	rm -rf $(VENV) $(OTHER_PYTHONS:%=.venv-%) .pytest_cache .ruff_cache .mypy_cache
