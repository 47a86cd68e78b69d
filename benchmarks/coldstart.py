"""Cold start of the Lambda handler, measured in fresh processes against moto on loopback.

    python -m benchmarks.coldstart [--runs N] [--python PATH --path DIR ...] [--json [PATH]]

Each run starts a new interpreter that does what Lambda's runtime does, timing each phase:

- import: `import graphql_api.aws_lambda` (Mangum, Starlette, Strawberry, aioboto3, ...);
- init: `getattr(module, "handler")`, Lambda's lookup in its init phase (settings, schema,
  the DynamoDB client, the signing keys fetched from the JWKS URL);
- first / second: one authenticated GraphQL query each (the home screen's list), through
  the handler as an API Gateway HTTP API v2.0 event.

Three variants: everything precompiled (.pyc); as deployed (the layer's packages precompiled by
`make lambda-package`, the graphql_api package as source, compiled at every cold start since
Lambda's file system is read-only); and nothing precompiled. The figures are medians over the
runs, on this machine: Lambda's CPU at 1,769 MB is one vCPU, and its first request also pays TLS
to DynamoDB, which loopback does not.
With `--python` and `--path`, the child runs on another interpreter with only those folders
(e.g. a layer built for x86_64 and Python 3.12) on its path, like Lambda's.
`--json` alone writes `coldstart.json` where the other benchmarks write (benchmarks.config:
docs/benchmarks/, or BENCH_OUTPUT_DIR; with BENCH_QUICK=1 never docs/benchmarks/, and 2 runs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from benchmarks.config import (
    REPO_ROOT,
    BenchConfig,
    QuickRunError,
    config_from_environment,
    refuse_published,
)

PHASES = ("import", "init", "first", "second")
QUERY = "{ conversations(first: 20) { totalCount edges { node { id title } } } }"
REGION = "us-east-1"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# --- the child: one cold start ---------------------------------------------------------------


def child() -> None:
    """Runs in a fresh interpreter; prints one JSON line of phase timings in milliseconds."""
    from tests.lambda_events import LambdaContext, graphql_event

    token = os.environ["COLDSTART_TOKEN"]
    timings: dict[str, float] = {}
    started = time.perf_counter()
    import graphql_api.aws_lambda as module

    timings["import"] = time.perf_counter() - started
    started = time.perf_counter()
    handler = module.handler
    timings["init"] = time.perf_counter() - started
    for phase in ("first", "second"):
        event = graphql_event(QUERY, token=token)
        started = time.perf_counter()
        response = handler(event, LambdaContext())
        timings[phase] = time.perf_counter() - started
        if response["statusCode"] != 200 or "errors" in json.loads(response["body"]):
            raise SystemExit(f"{phase} request failed: {response}")
    handler.close()
    print(json.dumps({phase: seconds * 1000 for phase, seconds in timings.items()}))


# --- the parent: moto, a user, N fresh children per variant ----------------------------------


def _environment(
    *,
    moto_url: str,
    table: str,
    pool_id: str,
    client_id: str,
    jwks_url: str,
    token: str,
    region: str = REGION,
) -> dict[str, str]:
    return {
        "CHAT_TABLE_NAME": table,
        "AWS_REGION": region,
        "DYNAMODB_ENDPOINT_URL": moto_url,
        "COGNITO_USER_POOL_ID": pool_id,
        "COGNITO_REGION": pool_id.partition("_")[0],
        "COGNITO_APP_CLIENT_IDS": client_id,
        "COGNITO_JWKS_URL": jwks_url,
        "COLDSTART_TOKEN": token,
        **LOCAL_CREDENTIALS,
    }


# How much is precompiled: everything; what `make lambda-package` and CDK deploy (the layer's
# packages, but graphql_api as source); nothing.
MODES = {
    "all bytecode": "all",
    "as deployed": "deployed",
    "no bytecode": "none",
}


def run_child(
    *, python: str, paths: Sequence[Path], environment: Mapping[str, str], mode: str
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as scratch:
        first: list[Path] = []
        env = {"PATH": os.environ.get("PATH", ""), **environment}
        if mode == "deployed":
            # A copy of the package with no __pycache__, ahead of the repository's; nothing
            # is written, as on Lambda's read-only file system.
            shutil.copytree(
                REPO_ROOT / "graphql_api",
                Path(scratch) / "graphql_api",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            first.append(Path(scratch))
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        elif mode == "none":
            # Look for .pyc files in an empty folder and write none: every module compiles.
            env["PYTHONPYCACHEPREFIX"] = str(Path(scratch) / "pycache")
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(str(path) for path in [*first, *paths, REPO_ROOT])
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [python, "-m", "benchmarks.coldstart", "--child"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise SystemExit(f"cold start child failed:\n{result.stderr[-3000:]}")
    timings: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return timings


def summarize(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    summary: dict[str, dict[str, float]] = {}
    for phase in (*PHASES, "total"):
        values = [
            sum(sample[p] for p in PHASES) if phase == "total" else sample[phase]
            for sample in samples
        ]
        summary[phase] = {
            "median": statistics.median(values),
            "min": min(values),
            "max": max(values),
        }
    return summary


def report(results: Mapping[str, dict[str, dict[str, float]]], runs: int, python: str) -> str:
    version = subprocess.run(  # noqa: S603 - our own interpreter
        [python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    lines = [
        f"Lambda handler cold start, median of {runs} fresh processes (min-max), ms; "
        f"Python {version}, {os.cpu_count()} CPUs, moto on loopback",
        "",
        "| phase | " + " | ".join(results) + " |",
        "| --- |" + " --- |" * len(results),
    ]
    for phase in (*PHASES, "total"):
        cells = [
            f"{summary[phase]['median']:.0f} ({summary[phase]['min']:.0f}-"
            f"{summary[phase]['max']:.0f})"
            for summary in results.values()
        ]
        lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def _create_table(moto_url: str, name: str) -> None:
    from graphql_api.storage.client import client_config, open_client
    from graphql_api.storage.table import create_table

    config = client_config(
        max_pool_connections=4, connect_timeout=2.0, read_timeout=10.0, max_attempts=3
    )
    credentials = (
        LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    async with open_client(
        region=REGION, endpoint_url=moto_url, config=config, credentials=credentials
    ) as client:
        await create_table(client, table_name=name)


# What a bare `--json` stands for; told from an explicit `--json coldstart.json` by identity.
_IN_OUTPUT_DIR = Path("coldstart.json")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.coldstart", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--runs", type=int, help="per variant (default: 7, quick: 2)")
    parser.add_argument("--python", default=sys.executable, help="the children's interpreter")
    parser.add_argument(
        "--path", type=Path, action="append", default=[], help="put DIR first on their path"
    )
    parser.add_argument(
        "--json",
        type=Path,
        nargs="?",
        const=_IN_OUTPUT_DIR,
        help="also write the figures here (alone: coldstart.json in the benchmarks' output "
        "directory)",
    )
    return parser


def json_path(argument: Path | None, config: BenchConfig) -> Path | None:
    """Where `--json` writes under `config`; a quick run refuses the published results."""
    if argument is None:
        return None
    path = config.output_dir / argument.name if argument is _IN_OUTPUT_DIR else argument
    return refuse_published(path) if config.quick else path


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        child()
        return 0
    config = config_from_environment()
    try:
        output = json_path(args.json, config)
    except QuickRunError as exc:
        raise SystemExit(f"python -m benchmarks.coldstart: {exc}") from None
    runs = args.runs or config.coldstart_runs

    from graphql_api.local.cognito import DevCognito
    from graphql_api.local.moto_server import LockedMotoServer

    with LockedMotoServer() as moto, DevCognito.create(endpoint_url=moto.url) as cognito:
        table = f"coldstart-{uuid.uuid4().hex[:8]}"
        asyncio.run(_create_table(moto.url, table))
        environment = _environment(
            moto_url=moto.url,
            table=table,
            pool_id=cognito.pool_id,
            client_id=cognito.client_id,
            jwks_url=cognito.jwks_url,
            token=cognito.token_for("coldstart"),
        )
        # One unmeasured run writes the .pyc files the "all bytecode" runs then read.
        run_child(python=args.python, paths=args.path, environment=environment, mode="all")
        samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in MODES}
        # Interleaved, so a burst of load elsewhere on the machine hits every variant alike.
        for _ in range(runs):
            for variant, mode in MODES.items():
                samples[variant].append(
                    run_child(
                        python=args.python, paths=args.path, environment=environment, mode=mode
                    )
                )
        results = {variant: summarize(found) for variant, found in samples.items()}
    print(report(results, runs, args.python))
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
