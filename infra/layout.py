"""Where the app finds the repository's files, and where `make lambda-package` leaves its own."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_DEFINITION = REPO_ROOT / "schema" / "table.json"
DEFAULT_OUTDIR = REPO_ROOT / "infra" / "cdk.out"

# What the layer holds, exact versions and hashes, for Lambda's platform (`make lock`).
LAMBDA_LOCK = REPO_ROOT / "requirements" / "lambda.txt"
# The Lambda layer `make lambda-package` builds: third-party packages under python/, the
# layout Lambda puts on sys.path from /opt.
LAMBDA_DEPS = REPO_ROOT / "infra" / "build" / "lambda-deps"
# Stands in for LAMBDA_DEPS when it has not been built, so synthesis never needs the network;
# a function deployed with it fails at init (no third-party packages), and synth warns.
LAMBDA_DEPS_PLACEHOLDER = REPO_ROOT / "infra" / "lambda-deps-placeholder"


def lambda_deps_built() -> bool:
    return (LAMBDA_DEPS / "python").is_dir()
