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
# The GraphQL-over-HTTP audit's npm packages (npm ci writes node_modules/.package-lock.json).
AUDIT := tools/graphql-http-audit
AUDIT_INSTALLED := $(AUDIT)/node_modules/.package-lock.json
# relay-compiler, which compiles a small Relay app against the schema (tests/api/test_relay.py).
RELAY := tools/relay-check
RELAY_INSTALLED := $(RELAY)/node_modules/.package-lock.json
ARGS ?=

.PHONY: install run test lint typecheck unit schema bench bench-trusted soak synth lambda-package clean graphiql-assets audit-tools relay-tools

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "Python 3.11 or newer is needed: make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || { \
	  echo "$(PYTHON) cannot create virtualenvs: install python3-venv (Debian/Ubuntu)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(LOCAL): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $(LOCAL)

$(INSTALLED): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
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
test: lint typecheck $(if $(shell command -v npm),audit-tools relay-tools)
	$(BIN)/pytest $(ARGS)

unit: $(INSTALLED)
	$(BIN)/pytest tests/unit $(ARGS)

schema: $(INSTALLED)
	$(BIN)/chat-history-api export-schema
	$(BIN)/chat-history-api export-openapi
	$(BIN)/chat-history-api export-operations

soak: $(INSTALLED)
	$(BIN)/pytest -m slow -p no:randomly tests/soak

bench: $(INSTALLED)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.coldstart --json docs/benchmarks/coldstart.json

# CPU per request of each schema/operations document, general path vs trusted documents
bench-trusted: $(INSTALLED)
	$(BIN)/python -m benchmarks.trusted_documents

# Both CDK stacks' CloudFormation into infra/cdk.out/: offline, no AWS account, no Docker
# (node is needed). Context values: make synth ARGS="-c userPoolId=... -c appClientIds=..."
synth: $(INSTALLED)
	$(BIN)/python -m infra $(ARGS)

# The Lambda layer (third-party packages for Lambda's arm64 Python 3.12) in infra/build/; needs
# PyPI, and a Python 3.12 for the bytecode: make lambda-package ARGS="--python /path/python3.12"
lambda-package: $(INSTALLED)
	$(BIN)/python -m infra.lambda_package $(ARGS)

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

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts infra/cdk.out infra/build \
	  $(AUDIT)/node_modules $(RELAY)/node_modules
