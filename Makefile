# One command to run, one to test, on a fresh machine with Python 3.11+ and make.
#   make run    install the service and its dev stack, then start it (GraphiQL on :8000)
#   make test   install everything, then lint, type-check and run every test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two install levels: `make run` needs the service and the embedded dev stack only (a quicker
# first start); everything else needs the dev tools too. [dev] includes [local].
LOCAL := $(VENV)/.installed-local
INSTALLED := $(VENV)/.installed
# Each install takes its lock's exact versions, every file checked against its hash; then the
# project itself, which the locks leave out.
INSTALL_LOCKED = $(BIN)/python -m pip install --quiet --require-hashes --requirement
INSTALL_PROJECT = $(BIN)/python -m pip install --quiet --no-deps --editable .
# The GraphQL-over-HTTP audit's npm packages (npm ci writes node_modules/.package-lock.json).
AUDIT := tools/graphql-http-audit
AUDIT_INSTALLED := $(AUDIT)/node_modules/.package-lock.json
# The IaC scanner the infra tests run over both templates (tests/infra/test_checkov.py), in a
# virtualenv of its own: its hundred exact pins would fight the project's.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# relay-compiler, which compiles a small Relay app against the schema (tests/api/test_relay.py).
RELAY := tools/relay-check
RELAY_INSTALLED := $(RELAY)/node_modules/.package-lock.json
ARGS ?=

.PHONY: install run test test-general lint typecheck unit schema bench bench-trusted soak soak-short synth lambda-package lock clean graphiql-assets audit-tools relay-tools checkov lock-checkov

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Python 3.11 or newer is needed: make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "$(PYTHON) cannot create virtualenvs: install python3-venv (Debian/Ubuntu)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LOCAL): pyproject.toml requirements/local.txt | $(BIN)/python
	$(INSTALL_LOCKED) requirements/local.txt
	$(INSTALL_PROJECT)
	touch $(LOCAL)

$(INSTALLED): pyproject.toml requirements/dev.txt | $(BIN)/python
	$(INSTALL_LOCKED) requirements/dev.txt
	$(INSTALL_PROJECT)
	touch $(INSTALLED) $(LOCAL)

install: $(INSTALLED)

# The embedded dev stack; e.g. make run ARGS="--port 8080 --no-browser"
run: $(LOCAL)
	$(BIN)/chat-history-api dev $(ARGS)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(INSTALLED)
	$(BIN)/mypy

# The npm tools only where npm is: without node their tests skip (and fail in CI, where
# .ci/run installs node and npm first).
test: lint typecheck $(if $(shell command -v npm),audit-tools relay-tools) checkov
	$(BIN)/pytest $(ARGS)

# The API and integration tests again with the service's own paths off, so botocore's and
# graphql-core's general paths stay tested too: no storage/fast_path.py, and no document cache,
# whose documents gql/planned.py plans (trusted documents still run planned). CI runs it after
# `make test`.
test-general: $(INSTALLED)
	DYNAMODB_FAST_PATH=false GRAPHQL_DOCUMENT_CACHE_SIZE=0 $(BIN)/pytest tests/api tests/integration $(ARGS)

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit $(ARGS)

schema: $(INSTALLED)
	$(BIN)/chat-history-api export-schema
	$(BIN)/chat-history-api export-openapi
	$(BIN)/chat-history-api export-operations

# The soak (about 8 minutes, loopback only): the service at today's load, at ten times it, and
# beside an abusive user; writes docs/soak.md and its plots (docs/soak/). soak-short runs the
# same for SOAK_SECONDS (10 by default) each, its report in test-artifacts/soak-short/.
soak: $(INSTALLED)
	$(BIN)/pytest -m slow -p no:randomly tests/soak

soak-short: $(INSTALLED)
	SOAK_SECONDS=$(or $(SOAK_SECONDS),10) $(BIN)/pytest -m slow -p no:randomly tests/soak

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.coldstart --json
	$(BIN)/python -m benchmarks.streaming_cost
	$(BIN)/python -m benchmarks.streaming_live

# CPU per request of each schema/operations document, general path vs trusted documents
bench-trusted: $(INSTALLED)
	$(BIN)/python -m benchmarks.trusted_documents

# Both CDK stacks' CloudFormation into infra/cdk.out/: offline, no AWS account, no Docker
# (node is needed). Context values: make synth ARGS="-c userPoolId=... -c appClientIds=..."
# Without -c certificateArn (or -c allowPlainHttp=true), an example certificate stands in, and
# synth says so.
synth: $(INSTALLED)
	$(BIN)/python -m infra --example-certificate $(ARGS)

# The Lambda layer (third-party packages for Lambda's arm64 Python 3.12) in infra/build/; needs
# PyPI, and a Python 3.12 for the bytecode: make lambda-package ARGS="--python /path/python3.12"
lambda-package: $(INSTALLED)
	$(BIN)/python -m infra.lambda_package $(ARGS)

# The locks in requirements/, after a change to pyproject.toml's dependencies (needs PyPI):
# dev.txt first, every other at its versions. Each lock keeps its other pins as they are;
# to move one: make lock ARGS="--upgrade-package graphql-core". uv resolves (pip-compile
# cannot lock for another platform: Lambda's, see LAMBDA_PYTHON and PIP_PLATFORMS in
# infra/lambda_package.py), pip installs: nothing else needs uv.
UV_VERSION := 0.13.8
LOCK = $(BIN)/uv pip compile --quiet --generate-hashes --annotation-style line \
	--custom-compile-command 'make lock' $(ARGS)
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(LOCK) --universal pyproject.toml --extra dev --output-file requirements/dev.txt
	$(LOCK) --universal pyproject.toml --extra local \
	  --constraint requirements/dev.txt --output-file requirements/local.txt
	$(LOCK) --universal pyproject.toml \
	  --constraint requirements/dev.txt --output-file requirements/service.txt
	layer="$$($(BIN)/python -m infra.lambda_package --requirements)" && echo "$$layer" | $(LOCK) - \
	  --python-platform aarch64-manylinux_2_34 --python-version 3.12 --only-binary :all: \
	  --constraint requirements/dev.txt --output-file requirements/lambda.txt

# GraphiQL's assets from the pinned npm packages in tools/graphiql (needs node and npm); the
# output in graphql_api/graphiql/static/ is committed, so nothing else needs npm.
graphiql-assets:
	cd tools/graphiql && npm ci --no-audit --no-fund && node build.mjs

# graphql-http's conformance audit (tests/api/test_graphql_http_audit.py), from the lock file
audit-tools: $(AUDIT_INSTALLED)

$(AUDIT_INSTALLED): $(AUDIT)/package.json $(AUDIT)/package-lock.json
	cd $(AUDIT) && npm ci --no-audit --no-fund

# relay-compiler for tests/api/test_relay.py, from the lock file
relay-tools: $(RELAY_INSTALLED)

$(RELAY_INSTALLED): $(RELAY)/package.json $(RELAY)/package-lock.json
	cd $(RELAY) && npm ci --no-audit --no-fund

# checkov from its lock, every file checked against its hash
checkov: $(CHECKOV)

$(CHECKOV): requirements/checkov.txt | $(BIN)/python
	rm -rf $(CHECKOV_VENV)
	$(BIN)/python -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --require-hashes --requirement requirements/checkov.txt
	touch $(CHECKOV)

# requirements/checkov.txt from requirements/checkov.in (needs PyPI), e.g. after moving its pin
lock-checkov: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile --quiet --generate-hashes --annotation-style line --universal \
	  --python-version 3.11 --custom-compile-command 'make lock-checkov' \
	  requirements/checkov.in --output-file requirements/checkov.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts infra/cdk.out infra/build \
	  $(AUDIT)/node_modules $(RELAY)/node_modules
