# Every target is idempotent and installs what it needs (a .venv in this directory).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS := serve,train,batch,dev
ARTIFACTS ?= artifacts
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install serve test protos train lint format system-deps default-artifacts clean \
	bench bench-serving bench-integrity bench-train bench-batch bench-ceiling bench-freshness loadtest durability fuzz \
	oip-client-env

$(STAMP): pyproject.toml crm/_leaves.c crm/_trees.c server/models/_tail.c
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -U pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[$(EXTRAS)]'
	@touch $(STAMP)

install: $(STAMP)

# Regenerate crm/v1 and inference/ (the Open Inference Protocol) from protos/ (generated
# code: never edit it by hand). protos/google and protos/grpc are shipped for other languages.
protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. protos/crm/v1/*.proto
	@printf '"""Generated gRPC stubs for package crm.v1 (make protos). Do not edit."""\n' > crm/v1/__init__.py
	@touch crm/v1/py.typed
	$(PY) -m grpc_tools.protoc -I protos --python_out=. --grpc_python_out=. --pyi_out=. protos/inference/*.proto
	@printf '"""Generated stubs of the Open Inference Protocol, package inference (make protos). Do not edit."""\n' > inference/__init__.py
	@touch inference/py.typed

# Train the default artifacts from the built-in synthetic data when $(ARTIFACTS) has none.
default-artifacts: $(STAMP)
	@if [ -z "$$(find $(ARTIFACTS) -name manifest.json -print -quit 2>/dev/null)" ]; then \
		echo "no artifacts in $(ARTIFACTS)/: training the defaults from synthetic data"; \
		$(MAKE) --no-print-directory train ARGS=; \
	fi

train: $(STAMP)
	$(PY) -m training --synthetic --out $(ARTIFACTS) $(ARGS)

serve: $(STAMP) protos default-artifacts
	$(PY) -m server --artifacts $(ARTIFACTS) $(ARGS)

# Debian packages the tests use: a real Prometheus server (and h2load for benchmarks).
system-deps:
	@if ! command -v prometheus >/dev/null || ! command -v h2load >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus nghttp2-client) >/dev/null; \
		else \
			echo "note: install Debian packages 'prometheus' and 'nghttp2-client' (needs root); tests needing them are skipped"; \
		fi; \
	fi

# tritonclient for the Open Inference Protocol tests (tests/oip): its [grpc] extra pins
# protobuf < 7 and this project needs 7, so it gets a venv of its own, never imported here.
OIP_VENV := .venv-oip
OIP_STAMP := $(OIP_VENV)/.installed-stamp
$(OIP_STAMP):
	@test -x $(OIP_VENV)/bin/python || $(PYTHON) -m venv $(OIP_VENV)
	$(OIP_VENV)/bin/python -m pip install -q --disable-pip-version-check 'tritonclient[grpc]>=2.40,<3' 'numpy<3'
	@touch $(OIP_STAMP)

oip-client-env: $(OIP_STAMP)

test: $(STAMP) system-deps oip-client-env
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks print figures next to references measured in the same run; they are not tests.
# `make bench` runs all three with their defaults; ARGS goes to the single targets only
# (e.g. `make bench-serving ARGS=--quick`).
bench: $(STAMP) system-deps
	$(PY) -m benchmarks.bench_serving
	$(PY) -m benchmarks.bench_integrity
	$(PY) -m benchmarks.bench_train

bench-serving: $(STAMP) system-deps
	$(PY) -m benchmarks.bench_serving $(ARGS)

bench-integrity: $(STAMP)
	$(PY) -m benchmarks.bench_integrity $(ARGS)

bench-train: $(STAMP)
	$(PY) -m benchmarks.bench_train $(ARGS)

# Fresh scores: the daily refresh of 1M customers' features, and by-id req/s fresh vs frozen.
bench-freshness: $(STAMP) system-deps
	$(PY) -m benchmarks.bench_freshness $(ARGS)

# Bulk scoring rows/s: local vs Ray vs raw onnxruntime, by features and by raw lines (issue 22).
bench-batch: $(STAMP) default-artifacts
	$(PY) -m benchmarks.bench_batch --artifacts $(ARTIFACTS) $(ARGS)

bench-ceiling: $(STAMP) system-deps
	$(PY) -m benchmarks.grpc_ceiling $(ARGS)

# Load a running server: ghz with a clients/ghz config when ghz is installed, else h2load.
loadtest: $(STAMP) system-deps
	$(PY) -m benchmarks.loadtest $(ARGS)

# kill -9 during concurrent appends and saves, restart, check every acknowledged write and proof
# (tests/integrity/durability.py), e.g. `make durability ARGS="--cycles 50"`.
durability: $(STAMP)
	$(PY) -m tests.integrity.durability $(ARGS)

# Fuzz every declared RPC of a fresh server on $(ARTIFACTS) (issue 16): >= 10,000 calls, a table
# of status codes per RPC, non-zero exit on any INTERNAL/UNKNOWN, hang, leak or crash.
fuzz: $(STAMP) protos default-artifacts
	$(PY) -m tests.fuzz --calls 10000 --artifacts $(ARTIFACTS) $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) $(OIP_VENV) .pytest_cache .ruff_cache build *.egg-info
