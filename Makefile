# mabdash — the two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
# 0 skips the traffic simulator in `make run`.
SIMULATE ?= 1

.PHONY: run test test-policies test-client test-django lint lock format bench bench-policies bench-guardrails bench-counterfactual bench-client bench-dashboard bench-longhaul chaos study clean

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "mabdash needs Python 3.11 (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV)

# The locked files (with hashes) are generated from requirements*.in by `make lock`.
$(VENV)/.runtime: requirements.txt requirements-demo.txt clients/python/pyproject.toml | $(VENV)/bin/python
	$(PIP) install -r requirements-demo.txt
	$(PIP) install --no-deps --no-build-isolation -e clients/python
	touch $@

$(VENV)/.dev: requirements.txt requirements-demo.txt requirements-dev.txt clients/python/pyproject.toml | $(VENV)/bin/python
	$(PIP) install -r requirements-dev.txt
	$(PIP) install --no-deps --no-build-isolation -e clients/python
	touch $@ $(VENV)/.runtime

## run: install, migrate, seed the demo and start web + worker + beat at http://127.0.0.1:8000
run: $(VENV)/.runtime
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py seed_demo
	$(PY) manage.py runstack --bind 127.0.0.1:8000 $(if $(filter 1,$(SIMULATE)),--extra "$(PY) manage.py simulate")

## test: the whole suite (service-backed tests skip without PostgreSQL/Redis unless required)
test: test-policies test-client test-django

# The client package's own tests (a fake server); its tests against the real stack are in tests/e2e.
test-client: $(VENV)/.dev
	$(PY) -m pytest -p no:django clients/python/tests

# policies/ and replay/ must work without Django: their tests run with the Django plugin disabled.
test-policies: $(VENV)/.dev
	$(PY) -m pytest -p no:django tests/policies tests/replay

# Tests keep their files (SQLite test database, broker folders) apart from `make run`'s.
test-django: $(VENV)/.dev
	MABDASH_VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest tests --ignore=tests/policies --ignore=tests/replay; \
	status=$$?; [ $$status -eq 5 ] && exit 0; exit $$status

## lint: style, format, the import layers, types and migrations that match the models
lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) manage.py makemigrations --check --dry-run -v 0

## lock: re-resolve requirements*.in into the hashed requirements*.txt (needs the registry)
lock: $(VENV)/.dev
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements.txt requirements.in
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements-demo.txt requirements-demo.in
	$(VENV)/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
		--no-emit-find-links -o requirements-dev.txt requirements-dev.in

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## bench: every benchmark against PostgreSQL and Redis; figures into docs/BENCHMARKS.md
bench: BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
bench: $(VENV)/.dev
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || echo "wrk not found: the throughput ceilings are skipped"
	mkdir -p bench/results
	$(PY) -m bench.policies --json bench/results/policies.json
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.dashboard --json bench/results/dashboard.json
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.service --json bench/results/service.json
	$(PY) -m bench.guardrails --json bench/results/guardrails.json
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.counterfactual --json bench/results/counterfactual.json
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.client --json bench/results/client.json
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.event_ids --json bench/results/event_ids.json
	$(PY) -m bench.summary

## chaos: the failure tests alone (they also run in `make test`): kill -9, broker and database restarts, duplicates
chaos: $(VENV)/.dev
	MABDASH_VAR_DIR=$(CURDIR)/var/test $(PY) -m pytest tests/e2e/test_exactly_once.py tests/e2e/test_failures.py \
		tests/e2e/test_database_restart.py

## bench-policies: mabdash policies against mabwiser (figures in docs/BENCHMARKS.md)
bench-policies: $(VENV)/.dev
	mkdir -p bench/results
	$(PY) -m bench.policies --json bench/results/policies.json

## bench-longhaul: a month of history (50M decisions, 30M rewards) against empty tables (~20 min here; --scale small: ~2 min)
bench-longhaul: BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
bench-longhaul: $(VENV)/.dev
	mkdir -p bench/results
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.longhaul --scale full --json bench/results/longhaul.json
	$(PY) -m bench.summary

## bench-guardrails: false rollbacks, detection delays and promotion of the rollback rules (~1 hour)
bench-guardrails: $(VENV)/.dev
	mkdir -p bench/results
	$(PY) -m bench.guardrails --json bench/results/guardrails.json
	$(PY) -m bench.summary

## bench-counterfactual: the counterfactual report on 10^5, 10^6 and 10^7 logged decisions in PostgreSQL (~15 min)
bench-counterfactual: BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
bench-counterfactual: $(VENV)/.dev
	mkdir -p bench/results
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.counterfactual --json bench/results/counterfactual.json
	$(PY) -m bench.summary

## bench-client: the Python client against the real deployment (local/remote decide, batched rewards, lag)
bench-client: BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
bench-client: $(VENV)/.dev
	mkdir -p bench/results
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) -m bench.client --json bench/results/client.json
	$(PY) -m bench.summary

## bench-dashboard: the detail page's data endpoint on 30 days of one-minute snapshots
bench-dashboard: $(VENV)/.dev
	mkdir -p bench/results
	$(PY) -m bench.dashboard --json bench/results/dashboard.json

## study: the paper's study, 30 seeds (~6 min on 2 cores, ~3 once cached); regenerates docs/REPRODUCTION.md's results and charts
study: $(VENV)/.dev
	mkdir -p bench/results
	$(PY) -m replay --json bench/results/replay.json --html bench/results/replay.html
	$(PY) -m replay.reproduction bench/results/replay.json docs/REPRODUCTION.md
	$(PY) -m replay.images bench/results/replay.html docs/img

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache .hypothesis
