# Qiming — the two commands of the quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
EXTRAS ?= dev,nats,dm,opengauss,modeling

.PHONY: demo test lint protos protos-check venv native clean load-collect bench

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Re-install when pyproject.toml changes (an editable install also builds the collector's C extension in place).
$(VENV)/.installed-base: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install --quiet -e .
	touch $@

# The C extension again when its source changes: built in place if this machine can, else none (not a stale one).
$(VENV)/.native: svc_collect/_fastcheck.c hatch_build.py | $(VENV)/.installed-base
	$(PY) hatch_build.py --if-possible
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(VENV)/bin/activate
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	touch $@ $(VENV)/.installed-base

venv: $(VENV)/.installed-dev

## Build the collector's C extension in place (svc_collect/_fastcheck.c; docs/collect.md, "The event check in C").
native: | $(VENV)/.installed-base
	$(PY) hatch_build.py
	touch $(VENV)/.native

## Start the suite on SQLite, run a scenario over real gRPC, print what happened, stop.
demo: $(VENV)/.installed-base $(VENV)/.native
	$(VENV)/bin/qiming demo

## The whole test suite (PostgreSQL and NATS tests fail instead of skipping under CI=true).
test: $(VENV)/.installed-dev $(VENV)/.native
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check .
	cd protos && ../$(VENV)/bin/buf lint

## Regenerate svc_common/pb from protos/ (commit the result).
protos: $(VENV)/.installed-dev
	$(PY) scripts/gen_protos.py

protos-check: $(VENV)/.installed-dev
	$(PY) scripts/gen_protos.py --check

## Throughput against the transport and storage ceilings, in one run (results: docs/benchmarks.md).
BENCH_EVENTS ?= 200000
bench: $(VENV)/.installed-dev
	$(PY) loadtests/bench_collect.py --events $(BENCH_EVENTS) --json loadtests/reports/bench_collect.json
	$(MAKE) bench-modeling
	$(MAKE) bench-profile
	$(MAKE) bench-campaign

clean:
	rm -rf $(VENV) .pytest_cache qiming-data svc_collect/_fastcheck*.so svc_collect/._fastcheck*

## Locust load test of svc_collect ingest: start a collector (SQLite; QIMING_COLLECT_DATABASE_URL for PostgreSQL),
## send EVENTS events in batches of BATCH, check the log holds exactly the acknowledged ones, write
## loadtests/reports/collect_ingest_b$(BATCH)*. LOAD_ARGS="--host HOST:PORT" runs against a running collector.
BATCH  ?= 1000
EVENTS ?= 1000000
USERS  ?= 8
LOAD_ARGS ?=
load-collect: $(VENV)/.installed-base
	@$(PY) -c "import locust" 2>/dev/null || $(PIP) install --quiet -e ".[load]"
	$(PY) loadtests/run_collect_ingest.py --batch-size $(BATCH) --events $(EVENTS) --users $(USERS) $(LOAD_ARGS)

## svc_modeling benchmarks over real gRPC beside the raw library (training ratio, 1M-customer scoring, what-if).
.PHONY: bench-modeling
bench-modeling: $(VENV)/.installed-dev
	$(PY) loadtests/bench_modeling.py $(BENCH_ARGS)

## svc_profile benchmarks: lookup by any id, log consumption, event → $segment_entered latency, full recompute
## (results: docs/benchmarks.md, "svc_profile"). PROFILES=1000000 for the full-size lookup run.
.PHONY: bench-profile
PROFILES ?= 100000
bench-profile: $(VENV)/.installed-dev
	$(PY) loadtests/bench_profile.py --profiles $(PROFILES) $(if $(POSTGRES),--postgres $(POSTGRES),)
## svc_campaign trigger latency (event → message in the outbox) at 5,000 events/s: the engine alone, then with
## svc_collect in the loop (two processes). Results: docs/benchmarks.md, "svc_campaign".
CAMPAIGN_RATE ?= 5000
CAMPAIGN_SECONDS ?= 20
.PHONY: bench-campaign
bench-campaign: $(VENV)/.installed-base
	$(PY) loadtests/bench_campaign.py --engine-only --rate $(CAMPAIGN_RATE) --seconds $(CAMPAIGN_SECONDS) --json loadtests/reports/bench_campaign_engine.json
	$(PY) loadtests/bench_campaign.py --rate $(CAMPAIGN_RATE) --seconds $(CAMPAIGN_SECONDS) --json loadtests/reports/bench_campaign_e2e.json
