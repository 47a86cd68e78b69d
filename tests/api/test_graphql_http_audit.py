"""The GraphQL-over-HTTP conformance audit (graphql-http's server audits) against the service.

graphql-http (github.com/graphql/graphql-http) is the spec's reference implementation and
ships its conformance audit. The audits run here in node (tools/graphql-http-audit, pinned by
its lock file) against the app on a real uvicorn server with introspection enabled, every
request carrying a real token. Every audit must pass, the SHOULDs and MAYs too: a warning or a
notice fails the test as an error does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.settings import RateLimitSettings
from tests.api.harness import new_user
from tests.apps import AppFactory
from tests.sockets import LiveApi

pytestmark = pytest.mark.conformance

AUDIT = Path(__file__).resolve().parents[2] / "tools" / "graphql-http-audit"
# The version package.json pins, and how many audits it runs: a new version may add audits,
# so a bump fails the version check until both are updated here.
PINNED_VERSION = "1.23.1"
AUDITS_OF_THE_PINNED_VERSION = 61
# Bounds the whole audit (61 requests, one at a time): a server that hangs fails the test.
AUDIT_SECONDS = 120.0


@pytest.fixture(scope="module")
def node() -> str:
    """node with the audit's packages; skipped where missing, but never in CI, where a
    conformance test must not quietly vanish."""
    found = shutil.which("node")
    if found is None:
        problem = "node is not installed (.ci/run installs it)"
    elif not (AUDIT / "node_modules" / "graphql-http").is_dir():
        problem = f"the audit's npm packages are not installed: run `make audit-tools` ({AUDIT})"
    else:
        return found
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@pytest_asyncio.fixture(scope="module")
async def live(make_api: AppFactory) -> AsyncIterator[LiveApi]:
    # With the production rate limits: a client as busy as the audit is served in full.
    async with make_api.live(rate_limits=RateLimitSettings()) as running:
        assert running.api.services.settings.introspection_enabled, "the audit queries __type"
        yield running


async def audited(node: str, url: str, authorization: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        node,
        str(AUDIT / "audit.mjs"),
        url,
        cwd=AUDIT,
        env={**os.environ, "AUDIT_AUTHORIZATION": authorization},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), AUDIT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    # 0: every audit passed, 1: some did not (the results say which) or node failed.
    assert process.returncode in (0, 1), stderr.decode()
    assert stdout, f"no results (exit {process.returncode}): {stderr.decode()}"
    report: dict[str, Any] = json.loads(stdout)
    return report


# `node` first: checked before a server is started for nothing.
async def test_every_graphql_over_http_audit_passes(node: str, live: LiveApi) -> None:
    pinned = json.loads((AUDIT / "package.json").read_text())["dependencies"]["graphql-http"]
    assert pinned == PINNED_VERSION, "a new graphql-http: count its audits, then pin both here"

    report = await audited(
        node, f"http://{live.address}/graphql", live.api.headers(new_user())["Authorization"]
    )

    assert report["package"] == f"graphql-http@{PINNED_VERSION}"
    results = report["results"]
    assert len(results) == AUDITS_OF_THE_PINNED_VERSION
    assert len({result["id"] for result in results}) == len(results)
    failed = [result for result in results if result["status"] != "ok"]
    assert failed == [], json.dumps(failed, indent=2)
