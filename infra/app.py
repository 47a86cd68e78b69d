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

from aws_cdk import App, Stack

from infra.container import ContainerStack
from infra.layout import DEFAULT_OUTDIR, LAMBDA_DEPS, lambda_deps_built
from infra.options import Options, OptionsError
from infra.serverless import ServerlessStack

# The metadata type of `Annotations.add_error` (cxschema's enum names it "ERROR", not this).
ERROR_METADATA = "aws:cdk:error"
SERVERLESS = "ChatHistoryServerless"
CONTAINER = "ChatHistoryContainer"
# `make synth` synthesizes both templates with no account; the container shape needs a
# certificate (or allowPlainHttp), so this stands in. Deploying with it fails: no such
# certificate exists.
EXAMPLE_CERTIFICATE_ARN = (
    "arn:aws:acm:us-east-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
)


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


def refusals(app: App) -> list[str]:
    """The errors the stacks added about their context, each naming its stack: the CDK CLI
    refuses to synthesize or deploy a stack with one."""
    return [
        f"{Stack.of(construct).stack_name}: {entry.data}"
        for construct in app.node.find_all()
        for entry in construct.node.metadata
        if entry.type == ERROR_METADATA
    ]


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
    parser.add_argument(
        "--example-certificate",
        action="store_true",
        help="without certificateArn or allowPlainHttp, use an example certificate ARN (for "
        "a look at the templates; not deployable)",
    )
    args = parser.parse_args(argv)
    # Under the CDK CLI, it chooses the output folder and passes its -c values itself, and it
    # refuses the stacks it was asked for that carry an error (so the serverless shape deploys
    # without a certificate).
    under_cli = bool(os.environ.get("CDK_OUTDIR"))
    outdir = Path(os.environ.get("CDK_OUTDIR") or DEFAULT_OUTDIR)
    started = time.perf_counter()
    try:
        context = _context(args.context)
        if args.example_certificate and not {"certificateArn", "allowPlainHttp"} & set(context):
            context["certificateArn"] = EXAMPLE_CERTIFICATE_ARN
            print(
                f"{CONTAINER}: an EXAMPLE certificate ({EXAMPLE_CERTIFICATE_ARN}) stands in for "
                "-c certificateArn=...; give yours to deploy",
                file=sys.stderr,
            )
        shapes = build(outdir=outdir, context=context)
    except OptionsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    errors = [] if under_cli else refusals(shapes.app)
    if errors:
        for error in errors:
            print(f"configuration error: {error}", file=sys.stderr)
        return 2
    shapes.app.synth()
    elapsed = time.perf_counter() - started
    print(f"synthesized {SERVERLESS} and {CONTAINER} into {outdir} in {elapsed:.1f} s")
    if not lambda_deps_built():
        print(
            f"warning: {LAMBDA_DEPS} is missing, so {SERVERLESS}'s Lambda layer is a "
            "PLACEHOLDER; run `make lambda-package` before deploying it",
            file=sys.stderr,
        )
    return 0
