# One command per job: `make test` is what CI runs; `make demo` shows the pipeline end to end.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
SAM := $(TOOLS)/bin/sam
export AWS_DEFAULT_REGION ?= us-east-1
# The SAM CLI must not try to phone home from CI or an offline laptop.
export SAM_CLI_TELEMETRY := 0

.PHONY: install test lint typecheck template-check pytest demo bench clean

$(VENV)/.installed: pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements-dev.txt -e .
	touch $@

# SAM CLI pins older boto3/click, so it lives in its own virtualenv.
$(TOOLS)/.installed:
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install -q --disable-pip-version-check aws-sam-cli==1.170.0
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

template-check: install $(TOOLS)/.installed
	$(SAM) validate --lint --template template.yaml
	$(SAM) validate --template template.yaml --region $(AWS_DEFAULT_REGION)
	$(VENV)/bin/cfn-lint template.yaml

# pytest starts (and stops) its own throwaway Postgres unless TEST_DATABASE_URL is set.
pytest: install
	$(PY) -m pytest -q

test: lint typecheck template-check pytest

demo: install
	$(VENV)/bin/bat-backfill demo

bench: install
	$(PY) bench/parse.py
	$(PY) bench/selector.py
	$(PY) bench/queue.py
	$(PY) bench/pipeline.py
	$(PY) bench/coldstart.py
	$(PY) bench/backlog.py

clean:
	rm -rf $(VENV) $(TOOLS) .demo .aws-sam .pytest_cache .mypy_cache .ruff_cache
