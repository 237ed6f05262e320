# fenxiao: developer and CI entry points. `make test` needs nothing running beforehand.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --no-print-directory

export UV_PYTHON_DOWNLOADS := never

# Local infrastructure (deploy/*/start.sh read the same variables). KAFKA_NODES=3 runs a
# three-node KRaft cluster on FX_KAFKA_PORT..+2 (controllers on +100..+102) instead of one node.
KAFKA_NODES ?= 1
FX_KAFKA_PORT ?= 9092
FX_REDIS_PORT ?= 6379
FX_PG_PORT ?= 5432
export KAFKA_NODES FX_KAFKA_PORT FX_REDIS_PORT FX_PG_PORT

KAFKA_BOOTSTRAP_SERVERS ?= $(shell seq -s, -f '127.0.0.1:%.0f' $(FX_KAFKA_PORT) \
	$$(($(FX_KAFKA_PORT) + $(KAFKA_NODES) - 1)))
REDIS_URL ?= redis://127.0.0.1:$(FX_REDIS_PORT)/0
FX_TEST_POSTGRES_URL ?= postgresql+psycopg://fx:fx@127.0.0.1:$(FX_PG_PORT)/fx_test

# Extra pytest arguments, e.g. make test PYTEST_ARGS='-m "not integration" -x'
PYTEST_ARGS ?=

# Where `make test` gets Kafka, Redis and PostgreSQL (fx_common.testinfra):
#   containers  testcontainers on Docker (DOCKER_HOST, Docker Desktop) or podman; no Java or
#               Postgres needed on a machine with Docker
#   processes   local processes from deploy/{kafka,redis,postgres}
#   auto        containers when an engine answers, processes otherwise (the default)
FX_TEST_INFRA ?= auto

.PHONY: deps infra-up infra-down test test-processes test-containers compose-test lint clean \
	up down reset logs status demo console bench bench-full bench-replay bench-scale bench-http bench-e2e \
	contracts contracts-release contracts-check images engine-down migration test-cluster

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

test:
	mode="$(FX_TEST_INFRA)"; \
	if [[ "$$mode" == auto ]]; then \
		if deploy/containers/engine.sh reachable; then mode=containers; else mode=processes; fi; \
	fi; \
	case "$$mode" in \
		containers|processes) $(MAKE) "test-$$mode" ;; \
		*) echo "FX_TEST_INFRA=$$mode: expected containers, processes or auto" >&2; exit 2 ;; \
	esac

test-processes: deps infra-up
	FX_TEST_INFRA=processes \
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	REDIS_URL=$(REDIS_URL) \
	FX_TEST_POSTGRES_URL=$(FX_TEST_POSTGRES_URL) \
	uv run pytest $(PYTEST_ARGS)

# Docker: the official images. Podman (installed here when no engine answers): the images
# deploy/containers/build.sh makes from a local Debian base (no registry needed).
test-containers:
	FX_DEPS=python deploy/install-deps.sh
	FX_CONTAINERS_INSTALL=1 deploy/containers/engine.sh up
	eval "$$(deploy/containers/engine.sh env)"; \
	if [[ "$$FX_CONTAINER_ENGINE" == podman ]]; then deploy/containers/build.sh kafka postgres redis; fi; \
	env -u KAFKA_BOOTSTRAP_SERVERS -u REDIS_URL -u FX_TEST_POSTGRES_URL \
		FX_TEST_INFRA=containers uv run pytest $(PYTEST_ARGS)

# The images (podman, from the local base image) and the whole cluster in docker-compose,
# for real: the demo scenario, two commission replicas, a restart, then nothing left behind.
images:
	FX_CONTAINERS_INSTALL=1 deploy/containers/engine.sh up
	deploy/containers/build.sh

compose-test:
	deploy/containers/compose-test.sh

# Stops the podman service deploy/containers/engine.sh started (if it did).
engine-down:
	deploy/containers/engine.sh down

# The broker failure and service replica scenarios on a three-node cluster of their own
# (127.0.0.1:19092-19094, data in var/test-cluster; never the broker above), with Redis and
# Postgres from infra-up. FX_CLUSTER_ORDERS orders per scenario (20000; CI runs 5000).
FX_CLUSTER_ORDERS ?= 20000
test-cluster: deps
	deploy/redis/start.sh
	deploy/postgres/start.sh
	FX_CLUSTER_TESTS=1 FX_CLUSTER_ORDERS=$(FX_CLUSTER_ORDERS) \
	REDIS_URL=$(REDIS_URL) \
	FX_TEST_POSTGRES_URL=$(FX_TEST_POSTGRES_URL) \
	uv run pytest -s --basetemp=var/test-cluster-tmp tests/cluster $(PYTEST_ARGS)

# The four services in the background on the local (or given) broker; `down` drains them.
up: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) deploy/cluster.sh up

down:
	deploy/cluster.sh down

# From nothing: stop the services, delete the namespace's topics, cached answers and stores
# (var/stores/<FX_TOPIC_NAMESPACE>/), start again.
reset: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) deploy/cluster.sh reset

logs:
	deploy/cluster.sh logs

status:
	deploy/cluster.sh status

# A fresh machine to a finished scenario: installs, starts the infrastructure, runs the
# four services on the simulated clock (isolated topics) and prints what happened.
# KEEP=1: afterwards the cluster and the console stay up (URLs and sign-ins printed; Ctrl-C).
KEEP ?=
demo: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) \
	uv run python -m demo.scenario $(if $(KEEP),--keep)

# The scenario, then the cluster and the console stay up (the same as `make demo KEEP=1`).
console:
	$(MAKE) demo KEEP=1

# Throughput/latency/RSS of each service against a bare passthrough (prints; never fails on speed).
BENCH_EVENTS ?= 20000
bench: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	uv run python benchmarks/bench.py --events $(BENCH_EVENTS) $(BENCH_ARGS)

# The whole of issue 15's table: SQLite and Postgres side by side, and the growth from 5,000 to
# 200,000 events per service (long: most of an hour on 2 cores). Never run by CI.
bench-full: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) FX_TEST_POSTGRES_URL=$(FX_TEST_POSTGRES_URL) \
	uv run python benchmarks/bench.py --events $(BENCH_EVENTS) --stores sqlite,postgres \
		--growth 5000,200000 $(BENCH_ARGS)

# Replay speed of each service (`fxctl replay` into a fresh store), printed and saved.
bench-replay: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	uv run python benchmarks/replay_bench.py --events $(BENCH_EVENTS)

# commission and referral-binding with 1, 2, 3 replicas on Postgres, 6 partitions.
bench-scale: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) FX_TEST_POSTGRES_URL=$(FX_TEST_POSTGRES_URL) \
	uv run python benchmarks/scale_bench.py --events $(BENCH_EVENTS)

# The four services on one broker: orders paid → attributed → accrued → settled past the hold →
# credited in payout's ledger (orders/s), and paid → accrued p50/p99 at 500 orders/s paced.
E2E_ORDERS ?= 5000
bench-e2e: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) \
	uv run python benchmarks/e2e_bench.py --orders $(E2E_ORDERS) --paced $(E2E_ORDERS)

# The checkout's read routes under wrk (200 connections) while the consumers run.
bench-http: deps infra-up
	KAFKA_BOOTSTRAP_SERVERS=$(KAFKA_BOOTSTRAP_SERVERS) REDIS_URL=$(REDIS_URL) \
	uv run python benchmarks/http_bench.py

# Regenerate the JSON Schemas in contracts/ from the models (a test fails when they drift).
contracts:
	uv run python -m fx_common.contracts.export contracts/
	uv run python -m fx_common.asyncapi contracts/asyncapi/cluster.json

# A schema change: the next revision of SERVICE's history from what its models changed
# (autogenerate against a scratch store at the head). Read and complete it before committing.
migration:
	@test -n "$${SERVICE:-}" -a -n "$${MSG:-}" || { echo 'usage: make migration SERVICE=commission MSG="what changes"' >&2; exit 2; }
	uv run fx-$(SERVICE) revision -m "$(MSG)"
	uv run ruff check --fix-only -q services/*/src/*/alembic
	uv run ruff format -q services/*/src/*/alembic

# One mypy run per package: each service's tests have a conftest.py, and one run over all of
# them would see several top-level modules named `conftest`.
MYPY_TARGETS := libs/common services/referral-binding services/qualification services/commission \
	services/payout tools/fxctl apps/console "tests benchmarks demo"
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
