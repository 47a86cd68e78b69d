"""Synthesize both shapes: `make synth`, `python -m infra [-c name=value ...]`, or the CDK CLI
(cdk.json at the repository root runs `python -m infra`).

Nothing here touches the network or an AWS account: no context lookups, no Docker, and the
Lambda layer is whatever `make lambda-package` left (or a placeholder, with a warning).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from aws_cdk import App

from infra.container import ContainerStack
from infra.layout import DEFAULT_OUTDIR, LAMBDA_DEPS, lambda_deps_built
from infra.options import Options, OptionsError
from infra.serverless import ServerlessStack

SERVERLESS = "ChatHistoryServerless"
CONTAINER = "ChatHistoryContainer"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Shapes:
    app: App
    serverless: ServerlessStack
    container: ContainerStack


def build(*, outdir: Path, context: Mapping[str, str] | None = None) -> Shapes:
    app = App(
        outdir=str(outdir),
        context=dict(context or {}),
        # No AWS::CDK::Metadata resource: templates change only when the stacks do.
        analytics_reporting=False,
    )
    options = Options.from_context(app.node)
    return Shapes(
        app=app,
        serverless=ServerlessStack(app, SERVERLESS, options=options),
        container=ContainerStack(app, CONTAINER, options=options),
    )


def _context(pairs: list[str]) -> dict[str, str]:
    context: dict[str, str] = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise OptionsError(f"-c {pair!r}: expected name=value")
        context[name] = value
    return context


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra", description=__doc__)
    parser.add_argument(
        "-c",
        "--context",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a context value, as with `cdk synth -c` (see infra/options.py)",
    )
    args = parser.parse_args(argv)
    # Under the CDK CLI, it chooses the output folder and passes its -c values itself.
    outdir = Path(os.environ.get("CDK_OUTDIR") or DEFAULT_OUTDIR)
    started = time.perf_counter()
    try:
        shapes = build(outdir=outdir, context=_context(args.context))
        shapes.app.synth()
    except OptionsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - started
    print(f"synthesized {SERVERLESS} and {CONTAINER} into {outdir} in {elapsed:.1f} s")
    if not lambda_deps_built():
        print(
            f"warning: {LAMBDA_DEPS} is missing, so {SERVERLESS}'s Lambda layer is a "
            "PLACEHOLDER; run `make lambda-package` before deploying it",
            file=sys.stderr,
        )
    return 0
