# One command per job: `make test` is what CI runs; `make demo` shows the pipeline end to end.
# `make` alone lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/bin/sam
CHECKOV_VENV := .checkov
export AWS_DEFAULT_REGION ?= us-east-1
# The SAM CLI must not try to phone home from CI or an offline laptop.
export SAM_CLI_TELEMETRY := 0

.PHONY: help install test unit lint fmt typecheck template-check security-check pytest schema build demo \
	invoke bench clean

help: ## list the targets
	@grep -E '^[a-z.-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

$(VENV)/.installed: pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
	touch $@

# SAM CLI pins older boto3/click, so it lives in its own virtualenv.
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0
	touch $@

# checkov pins an older boto3 than both the runtime and the SAM CLI: a virtualenv of its own.
$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --disable-pip-version-check -r requirements-checkov.txt
	touch $@

install: $(VENV)/.installed ## the project virtualenv (.venv) with everything the tests need

lint: install ## ruff: lint and formatting, checked
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: install ## ruff: fix what can be fixed, format everything
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

typecheck: install ## mypy --strict: the package, tools, functions, tests and benchmarks
	$(VENV)/bin/mypy

template-check: install $(TOOLS)/.installed ## sam validate (with --lint) and cfn-lint
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(VENV)/bin/cfn-lint template.yaml
	$(MAKE) --no-print-directory security-check

# Offline: no platform download, no update check. Fails on any failed check and on any
# Metadata skip without a comment (bat_backfill_tools.checkov_gate).
security-check: install $(CHECKOV_VENV)/.installed ## checkov on the template; every skip must give a reason
	BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(CHECKOV_VENV)/bin/checkov \
		-f template.yaml --framework cloudformation --skip-download --compact -o json \
		> .checkov/report.json || true
	$(PY) -m bat_backfill_tools.checkov_gate .checkov/report.json

# pytest starts (and stops) its own throwaway Postgres unless TEST_DATABASE_URL is set.
pytest: install ## the whole test suite
	$(PY) -m pytest -q

unit: install ## the fast tests: pure code, no database, no AWS (a few seconds)
	$(PY) -m pytest -q tests/unit

test: lint typecheck template-check pytest ## everything CI runs

schema: install ## rewrite db/schema.sql from the migrations (a throwaway Postgres)
	$(PY) -m bat_backfill_tools.schema --write

build: $(TOOLS)/.installed ## sam build (no Docker: the layer is built with pip --platform)
	$(SAM) build --template template.yaml

demo: install ## repair a sample broken database end to end on this machine
	$(VENV)/bin/bat-backfill demo

# The Docker-free twin of `sam local invoke`: make invoke FN=orchestrator EVENT=events/x.json
invoke: install ## run one function's handler here: FN=<function> EVENT=<events/*.json>
	$(VENV)/bin/bat-backfill invoke $(FN) --event $(EVENT)

bench: install ## every benchmark; each prints its figures
	$(PY) bench/parse.py
	$(PY) bench/selector.py
	$(PY) bench/queue.py
	$(PY) bench/pipeline.py
	$(PY) bench/coldstart.py
	$(PY) bench/backlog.py

clean: ## remove the virtualenvs and everything generated
	rm -rf $(VENV) $(TOOLS) $(CHECKOV_VENV) .demo .aws-sam .pytest_cache .mypy_cache .ruff_cache
