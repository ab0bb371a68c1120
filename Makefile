# Taskstream: `make run` starts everything, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-unit test-integration test-e2e test-containers test-cluster wheelhouse bench chaos fuzz lint typecheck db-upgrade create-admin clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/taskstream run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared services testbed bench
	$(BIN)/python -m pytest tests --ignore=tests/cluster

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/contract

test-integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration tests/contract

test-e2e: $(STAMP)
	$(BIN)/python -m pytest tests/e2e

# Every image built and run under docker-compose.yml, used through the gateway, stopped and
# started; the Kubernetes overlays rendered and validated. Needs (or installs) Docker.
test-containers: $(STAMP)
	$(BIN)/python -m tests.containers

# The deployment past one machine, run here (docs/operations.md): a local Redis Cluster (3
# masters, 3 replicas) under every Redis use, RabbitMQ for Celery, two replicas of each HTTP
# service behind HAProxy, two relays, three projector members, then a chaos run through the
# load balancer. Not part of `make test`: it needs redis-server and redis-cli, HAProxy and a
# RabbitMQ on 127.0.0.1:5672 (Debian: apt-get install redis-server haproxy rabbitmq-server).
# `python -m tests.cluster` is a longer run (CHAOS_SEED, CHAOS_COMMANDS, CHAOS_FAULTS, ...).
test-cluster: $(STAMP)
	@for tool in redis-server redis-cli haproxy; do PATH="$$PATH:/usr/sbin" command -v $$tool >/dev/null || \
		{ echo "make test-cluster needs $$tool (Debian: apt-get install redis-server haproxy)"; exit 1; }; done
	$(BIN)/python -m pytest tests/cluster -p no:cacheprovider

# Wheels of every dependency for offline image builds (deploy/wheelhouse/, BASE_IMAGE's Python).
wheelhouse: $(STAMP)
	$(BIN)/python -m tests.containers.wheelhouse $(BASE_IMAGE)

bench: $(STAMP)
	$(BIN)/python -m bench

# A long seeded chaos run on private servers (CHAOS_SEED, CHAOS_COMMANDS, CHAOS_FAULTS, ...).
chaos: $(STAMP)
	$(BIN)/python -m tests.chaos

# Schemathesis against the gateway with many examples per operation.
fuzz: $(STAMP)
	FUZZ_MAX_EXAMPLES=$${FUZZ_MAX_EXAMPLES:-200} $(BIN)/python -m pytest tests/fuzz -p no:cacheprovider --timeout 0

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy shared services testbed bench

db-upgrade: $(STAMP)
	$(BIN)/taskstream db upgrade

create-admin: $(STAMP)
	$(BIN)/taskstream create-admin

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
