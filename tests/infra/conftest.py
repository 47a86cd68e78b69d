"""Both shapes, synthesized once per session into a temporary cdk.out, and their templates.

Everything here is marked `infra` (deselect with -m 'not infra'). aws_cdk, and the infra
modules that import it, are imported inside fixtures and tests only: importing aws_cdk starts
its node process, which the rest of the suite never needs, and which fails without node (these
tests then skip locally, and fail in CI).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

    from infra.app import Shapes

HERE = Path(__file__).parent

# jsii warns on every start that node 20 is past its end of life; it would fill test output.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.infra)


@dataclasses.dataclass(frozen=True)
class Synthesized:
    """One shape's stack, its template as CloudFormation reads it, and the output folder."""

    name: str
    outdir: Path
    json: dict[str, Any]
    template: Template

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.json["Resources"]
        return resources

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource
            for logical_id, resource in self.resources.items()
            if resource["Type"] == resource_type
        }

    def only(self, resource_type: str) -> tuple[str, dict[str, Any]]:
        found = self.of_type(resource_type)
        assert len(found) == 1, f"{self.name}: expected one {resource_type}, found {list(found)}"
        return next(iter(found.items()))


@dataclasses.dataclass(frozen=True)
class Synthesis:
    shapes: Shapes
    outdir: Path
    serverless: Synthesized
    container: Synthesized
    seconds: float

    @property
    def both(self) -> tuple[Synthesized, Synthesized]:
        return (self.serverless, self.container)


@pytest.fixture(scope="session", autouse=True)
def _node() -> None:
    if shutil.which("node"):
        return
    if os.environ.get("CI"):
        pytest.fail("node is required to synthesize the CDK app (CI installs it)")
    pytest.skip("node is not installed; the CDK app cannot be synthesized")


# The container shape refuses to synthesize without a certificate (or allowPlainHttp).
DEFAULT_CONTEXT = {
    "certificateArn": (
        "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"
    ),
}
# Every other context value set, each away from its default.
VARIANT_CONTEXT = {
    "userPoolId": "eu-west-1_AbCdEfGhI",
    "appClientIds": "iosclient123,macclient456",
    "alarmEmail": "oncall@example.com",
    "allowPlainHttp": "true",
    "broadcast": "false",
    "rateLimits": "true",
    "reservedConcurrency": "7",
}
# Shared rate limits with the stack's own pool (the variant has an existing one): Cognito
# through PrivateLink instead of a NAT gateway.
LIMITED_CONTEXT = {**DEFAULT_CONTEXT, "rateLimits": "true"}


def _synthesize(outdir: Path, context: dict[str, str] | None = None) -> Synthesis:
    from aws_cdk.assertions import Template

    from infra.app import CONTAINER, SERVERLESS, build

    started = time.perf_counter()
    shapes = build(outdir=outdir, context=context)
    shapes.app.synth()
    seconds = time.perf_counter() - started

    def load(name: str) -> Synthesized:
        document = json.loads((outdir / f"{name}.template.json").read_text())
        return Synthesized(
            name=name, outdir=outdir, json=document, template=Template.from_json(document)
        )

    return Synthesis(
        shapes=shapes,
        outdir=outdir,
        serverless=load(SERVERLESS),
        container=load(CONTAINER),
        seconds=seconds,
    )


@pytest.fixture(scope="session")
def synthesis(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """Both shapes with the defaults and a certificate: a new user pool, HTTPS, Valkey."""
    return _synthesize(tmp_path_factory.mktemp("cdk.out"), DEFAULT_CONTEXT)


@pytest.fixture(scope="session")
def variant(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """Both shapes with VARIANT_CONTEXT: an existing pool, plain HTTP, no Valkey in the
    container shape, shared rate limits in the serverless one, an email."""
    return _synthesize(tmp_path_factory.mktemp("cdk.out-variant"), VARIANT_CONTEXT)


@pytest.fixture(scope="session")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Synthesis:
    """Both shapes with LIMITED_CONTEXT: the defaults, and shared rate limits."""
    return _synthesize(tmp_path_factory.mktemp("cdk.out-limited"), LIMITED_CONTEXT)


@pytest.fixture(scope="session")
def serverless(synthesis: Synthesis) -> Synthesized:
    return synthesis.serverless


@pytest.fixture(scope="session")
def container(synthesis: Synthesis) -> Synthesized:
    return synthesis.container
