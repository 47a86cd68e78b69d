"""Soak: the real service process at today's load, at ten times it, and beside an abusive user.

Run on purpose with `make soak` (marked slow, left out of `make test`); `make soak-short`
runs the same briefly, without the two diagnostic scenarios. Each scenario
(tests/soak/scenarios.py) serves `chat-history-api serve` in its own process against moto on
loopback and a test JWKS, and drives reads, writes and streamed answers. The test asserts
what must hold whatever the machine: only 2xx, 429 and 503 answers, every refusal with
Retry-After, no timeout or reset, every acknowledged write stored exactly once and no
refused one stored, the requests after the burst all served, the memory back, the normal
users never refused. The latency bounds are reported, with their verdicts, in docs/soak.md
(tests/soak/figures.py says why). The processes' logs stay in test-artifacts/soak-logs/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from graphql_api.storage.client import client_config, open_client
from tests.conftest import REGION, credentials_for
from tests.soak import scenarios
from tests.soak.config import LOGS, SoakConfig
from tests.soak.figures import criteria
from tests.soak.processes import engine
from tests.soak.report import write_report
from tests.tokens import FakeUserPool

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def soak(pool: FakeUserPool) -> AsyncIterator[scenarios.Soak]:
    config = SoakConfig.from_env(os.environ)
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    async with engine(os.environ, log_dir=LOGS) as running:
        settings = client_config(
            max_pool_connections=8, connect_timeout=2.0, read_timeout=60.0, max_attempts=3
        )
        async with open_client(
            region=REGION,
            endpoint_url=running.url,
            config=settings,
            credentials=credentials_for(running.url),
        ) as dynamodb:
            yield scenarios.Soak(
                config=config, engine=running, pool=pool, dynamodb=dynamodb, log_dir=LOGS
            )


async def test_soak(soak: scenarios.Soak) -> None:
    started_load = os.getloadavg()
    ran = {
        "steady": await scenarios.steady(soak),
        "burst": await scenarios.burst(soak),
    }
    if not soak.config.short:
        ran["burst-sized"] = await scenarios.burst(soak, limit=scenarios.SIZED_LIMIT)
    ran["quiet"] = await scenarios.abuse(soak, factor=None)
    ran["abused"] = await scenarios.abuse(soak, factor=scenarios.ABUSE_FACTOR)
    if not soak.config.short:
        ran["at-budget"] = await scenarios.abuse(soak, factor=1)
    verdicts = criteria(ran)
    write_report(soak.config, ran, verdicts, load_average=(started_load, os.getloadavg()))
    failed = [f"{c.name}: {c.figure}" for c in verdicts if c.asserted and not c.met]
    described = [line for s in ran.values() for line in s.recorder.described + s.verified.described]
    assert failed == [], "\n".join([*failed, *described])
