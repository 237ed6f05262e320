# fenxiao: developer and CI entry points. `make test` needs nothing running beforehand.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

export UV_PYTHON_DOWNLOADS := never

# Local infrastructure (deploy/*/start.sh read the same variables).
FX_KAFKA_PORT ?= 9092
FX_REDIS_PORT ?= 6379
FX_PG_PORT ?= 5432
export FX_KAFKA_PORT FX_REDIS_PORT FX_PG_PORT

KAFKA_BOOTSTRAP_SERVERS ?= 127.0.0.1:$(FX_KAFKA_PORT)
REDIS_URL ?= redis://127.0.0.1:$(FX_REDIS_PORT)/0
FX_TEST_POSTGRES_URL ?= postgresql+psycopg://fx:fx@127.0.0.1:$(FX_PG_PORT)/fx_test

# Extra pytest arguments, e.g. make test PYTEST_ARGS='-m "not integration" -x'
PYTEST_ARGS ?=

.PHONY: deps infra-up infra-down test lint clean up down logs status demo bench contracts contracts-release contracts-check

deps:
	deploy/install-deps.sh

infra-up:
	deploy/kafka/start.sh
	deploy/redis/start.sh
	deploy/postgres/start.sh

infra-down:
	deploy/postgres/stop.sh
	deploy/redis/stop.sh
	deploy/kafka/stop.sh

test: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	REDIS_URL=$(REDIS_URL) \
	FX_TEST_POSTGRES_URL=$(FX_TEST_POSTGRES_URL) \
	uv run pytest $(PYTEST_ARGS)

# The four services in the background on the local (or given) broker; `down` drains them.
up: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) deploy/cluster.sh up

down:
	deploy/cluster.sh down

logs:
	deploy/cluster.sh logs

status:
	deploy/cluster.sh status

# A fresh machine to a finished scenario: installs, starts the infrastructure, runs the
# four services on the simulated clock (isolated topics) and prints what happened.
demo: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) \
	uv run python -m demo.scenario

# Throughput/latency/RSS of each service against a bare passthrough (prints; never fails on speed).
BENCH_EVENTS ?= 20000
bench: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	uv run python benchmarks/bench.py --events $(BENCH_EVENTS)

# Regenerate the JSON Schemas in contracts/ from the models (a test fails when they drift).
contracts:
	uv run python -m fx_common.contracts.export contracts/
	uv run python -m fx_common.asyncapi contracts/asyncapi/cluster.json

# One mypy run per package: each service's tests have a conftest.py, and one run over all of
# them would see several top-level modules named `conftest`.
MYPY_TARGETS := libs/common services/referral-binding services/qualification services/commission \
	services/payout tools/fxctl "tests benchmarks demo"
lint:
	uv run ruff check .
	uv run ruff format --check .
	for target in $(MYPY_TARGETS); do uv run mypy $$target; done

# Stops the local infrastructure first: var/ holds its data.
clean: infra-down
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +

# Make the current contracts/ the released baseline (on a release only: a breaking change
# ships as a new `.v2` type and topic instead, see README "Evolving the contract").
contracts-release:
	find contracts -maxdepth 1 -name '*.json' ! -name index.json -exec cp {} contracts/released/ \;

# The checked-in contracts/ against the released baseline (also a test).
contracts-check:
	uv run python -m fx_common.contracts.compat contracts
	cd tests/contract-js && node check.mjs ../../contracts >/dev/null
