# Card-fraud feature platform: developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON_VERSION ?= 3.11
VENV := .venv
PY := $(VENV)/bin/python
TOOLS_VENV := .venv-tools
TOOLS_BIN := $(CURDIR)/.tools/bin
NODE_TOOLS := .tools/node
ACTIONLINT_VERSION := v1.7.12
TOFU_VERSION := v1.12.6
TFLINT_VERSION := v0.64.0
TERRAFORM_DOCS_VERSION := v0.20.0
TERRAFORM_DIRS := $(sort $(wildcard infra/terraform/modules/*)) infra/terraform/bootstrap infra/terraform/envs/dev infra/terraform/envs/prod
ASL_VALIDATOR_VERSION := 4.0.0
LAKE_ROOT ?= ./lake
export SPARK_CONF_DIR := $(CURDIR)/.spark/conf
export PYTHONPATH := $(CURDIR)

.PHONY: help setup test lint format pytest clean demo bench package tfdocs docs-numbers

help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

setup: $(VENV)/.installed .spark/conf/spark-defaults.conf $(TOOLS_VENV)/.installed $(TOOLS_BIN)/actionlint $(TOOLS_BIN)/tofu $(TOOLS_BIN)/tflint $(TOOLS_BIN)/terraform-docs $(NODE_TOOLS)/.installed ## Create .venv, install pinned deps, fetch jars and tools (idempotent)
	@echo "setup complete: source $(VENV)/bin/activate"

# The project itself goes in editable (--no-deps: its dependencies are the pinned ones above), which installs the
# `cardfeat` console script (docs/cli.md) into $(VENV)/bin.
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-lock.txt pyproject.toml
	@command -v python$(PYTHON_VERSION) >/dev/null || { echo "python$(PYTHON_VERSION) is required"; exit 1; }
	test -x $(PY) || python$(PYTHON_VERSION) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c requirements-lock.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	grep -q SPARK_CONF_DIR $(VENV)/bin/activate || echo 'export SPARK_CONF_DIR="$(CURDIR)/.spark/conf"' >> $(VENV)/bin/activate
	touch $@

.spark/conf/spark-defaults.conf: spark_jobs/conf/jars.lock spark_jobs/conf/spark-defaults.conf.template scripts/fetch_jars.py | $(VENV)/.installed
	$(PY) scripts/fetch_jars.py

# checkov pins its own dependency tree, so it lives in a venv of its own.
$(TOOLS_VENV)/.installed: requirements-tools.txt
	test -x $(TOOLS_VENV)/bin/python || python$(PYTHON_VERSION) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $@

$(TOOLS_BIN)/actionlint:
	GOBIN=$(TOOLS_BIN) go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)

# OpenTofu's go.mod has a replace directive, so `go install ...@version` refuses it: build inside the module instead.
$(TOOLS_BIN)/tofu:
	go mod download github.com/opentofu/opentofu@$(TOFU_VERSION)
	cd "$$(go env GOMODCACHE)/github.com/opentofu/opentofu@$(TOFU_VERSION)" && go build -trimpath -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o $(TOOLS_BIN)/tofu ./cmd/tofu

$(TOOLS_BIN)/tflint:
	GOBIN=$(TOOLS_BIN) go install github.com/terraform-linters/tflint@$(TFLINT_VERSION)

# `go install ...@version` also asks the proxy for the module's version list (deprecation check), which the
# proxy here refuses for terraform-docs: download the pinned version and build inside it, like tofu.
$(TOOLS_BIN)/terraform-docs:
	go mod download github.com/terraform-docs/terraform-docs@$(TERRAFORM_DOCS_VERSION)
	cd "$$(go env GOMODCACHE)/github.com/terraform-docs/terraform-docs@$(TERRAFORM_DOCS_VERSION)" && go build -trimpath -o $(TOOLS_BIN)/terraform-docs .

$(NODE_TOOLS)/.installed:
	mkdir -p $(NODE_TOOLS)
	npm install --silent --no-audit --no-fund --prefix $(NODE_TOOLS) asl-validator@$(ASL_VALIDATOR_VERSION)
	touch $@

lint: ## ruff lint and format check; import-linter checks the layers of docs/architecture.md
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

format: ## Apply ruff formatting and autofixes
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

pytest: ## Run the test suite only
	$(VENV)/bin/pytest

test: lint pytest ## Lint, then run every test

bench: ## Benchmark Spark against the DuckDB reference into docs/benchmarks (BENCH_ARGS="--events 5000000 ...")
	$(VENV)/bin/cardfeat bench $(BENCH_ARGS)
	$(PY) -m devtools.doc_numbers  # README and docs quote the new results.json too

demo: ## The whole platform locally, no AWS: 45-day lake, 6 stream runs + daily, features, baseline (lake/demo/_runs/report.html)
	$(VENV)/bin/cardfeat demo --lake-root lake/demo

docs-numbers: ## Render the measured numbers of README and docs from docs/benchmarks/*.json (tests fail while one differs)
	$(PY) -m devtools.doc_numbers

package: ## Build dist/ for EMR Serverless
	$(VENV)/bin/cardfeat package

tfdocs: $(TOOLS_BIN)/terraform-docs ## Regenerate the Terraform module READMEs between their BEGIN_TF_DOCS/END_TF_DOCS markers
	@for dir in $(TERRAFORM_DIRS); do $(TOOLS_BIN)/terraform-docs -c infra/terraform/.terraform-docs.yml $$dir || exit 1; done

clean: ## Remove the local lake and caches (keeps .venv and jars)
	rm -rf lake spark-warehouse metastore_db .pytest_cache .ruff_cache
