# IoTFlow: `make run` starts the platform, `make test` runs the whole suite.
# Both set up everything they need first (virtualenv, requirements, services).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint format venv vendor bench fuzz clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@deploy/scripts/ensure-python.sh "$(PYTHON)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 2>/dev/null || true
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# Browser libraries (package.json) from npm, copied into static/vendor/ (not committed).
static/vendor/.built: package.json package-lock.json deploy/scripts/build-vendor.mjs
	@source deploy/scripts/services.sh && ensure_package npm npm
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	@touch $@

vendor: static/vendor/.built

run: venv vendor
	@deploy/scripts/run.sh

test: venv lint vendor
	@deploy/scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The API fuzz of `make test`, longer and with new random input each run (scale with FUZZ_MAX_EXAMPLES,
# per generation mode and operation, and FUZZ_STATEFUL_SCENARIOS).
fuzz: venv
	FUZZ_RANDOM=1 FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-50} FUZZ_STATEFUL_SCENARIOS=$${FUZZ_STATEFUL_SCENARIOS:-300} \
		deploy/scripts/test.sh tests/security/test_fuzz.py --timeout=3600 -p no:cacheprovider

# Benchmarks need wrk, Mosquitto and Redis besides PostgreSQL (docs/performance.md).
bench: venv
	@source deploy/scripts/services.sh && ensure_package wrk wrk && ensure_package mosquitto mosquitto \
		&& ensure_package redis-server redis-server
	$(PY) bench/run.py --runs $${BENCH_RUNS:-1}

clean:
	rm -rf $(VENV) var/staticfiles var/prometheus node_modules static/vendor
