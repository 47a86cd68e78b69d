"""The shared buckets on a real redis-server (Debian's package, started here on 127.0.0.1): two
limiters, as two instances have, spend one budget; keys expire; a flushed script is loaded
again; and when Redis stops, checks go on in the process, said once, until it is back.

Nothing here is timed: a fallback and a recovery are seen in the limiter's own state, its log
and its metrics; a restart is waited for by attempts, each a check like any request's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from redis.asyncio import Redis

from graphql_api.domain import ratelimit
from graphql_api.domain.ratelimit import (
    SHARED_RETRY_SECONDS,
    Budget,
    RateLimiter,
    key_prefix,
    open_rate_limiter,
)
from graphql_api.errors import RateLimitedError
from graphql_api.observability.metrics import PrometheusMetrics
from graphql_api.settings import RateLimitSettings
from tests.redis_server import RedisServer, free_port, redis_server

BURST = 3
# Tries after a restart until a check goes through Redis again, each after the limiter's
# retry interval: far more than the one interval it takes.
RECOVERY_ATTEMPTS = 30
LOGGER = ratelimit.__name__


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


def budgets(url: str | None) -> RateLimitSettings:
    return RateLimitSettings(
        url=url, reads_per_minute=60, reads_burst=BURST, writes_per_minute=60, writes_burst=1
    )


@contextlib.asynccontextmanager
async def instance(
    url: str | None, table: str, metrics: PrometheusMetrics | None = None
) -> AsyncIterator[RateLimiter]:
    async with open_rate_limiter(budgets(url), table_name=table, metrics=metrics) as limiter:
        yield limiter


async def admitted(limiter: RateLimiter, user: str, budget: Budget = Budget.READ) -> bool:
    try:
        await limiter.check(user, {budget: 1}, transport="graphql")
    except RateLimitedError:
        return False
    return True


async def test_two_instances_spend_one_budget_and_other_users_are_untouched(
    redis: RedisServer,
) -> None:
    table = f"t-{uuid.uuid4()}"
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    async with instance(redis.url, table) as a, instance(redis.url, table) as b:
        spent = [await admitted(limiter, alice) for limiter in (a, b, a)]
        assert spent == [True, True, True]
        assert [await admitted(b, alice), await admitted(a, alice)] == [False, False]
        assert await admitted(b, bob)
        # Another budget of the same user is its own.
        assert await admitted(a, alice, Budget.WRITE)
        assert a.shared
        assert b.shared


async def test_a_redis_that_asks_for_a_password_shares_budgets_with_redis_auth_token() -> None:
    """As the CDK stacks set it up: the URL carries no password, REDIS_AUTH_TOKEN does."""
    token = "Zq3vX9kPm2LwR7tYb4NcH8sJd6FgA1eU"
    table, user = f"t-{uuid.uuid4()}", str(uuid.uuid4())
    with redis_server(password=token) as locked:
        async with (
            open_rate_limiter(budgets(locked.url), table_name=table, password=token) as a,
            open_rate_limiter(budgets(locked.url), table_name=table, password=token) as b,
        ):
            assert await admitted(a, user, Budget.WRITE)
            # The second instance sees the first one's spending: the budget is in Redis.
            assert not await admitted(b, user, Budget.WRITE)
            assert a.shared
            assert b.shared


async def test_another_table_on_the_same_redis_has_budgets_of_its_own(redis: RedisServer) -> None:
    user = str(uuid.uuid4())
    async with instance(redis.url, "one") as one, instance(redis.url, "two") as two:
        assert await admitted(one, user, Budget.WRITE)
        assert not await admitted(one, user, Budget.WRITE)
        assert await admitted(two, user, Budget.WRITE)


async def test_a_bucket_lives_in_redis_only_until_it_would_be_full_again(
    redis: RedisServer,
) -> None:
    table, user = f"t-{uuid.uuid4()}", str(uuid.uuid4())
    async with instance(redis.url, table) as limiter, Redis.from_url(redis.url) as client:
        await admitted(limiter, user)
        await admitted(limiter, user)
        key = f"{key_prefix(table)}{{{user}}}:read"
        # Two tokens spent at a token a second: full again within two seconds, then gone.
        assert 0 < await client.pttl(key) <= 2000
        assert await client.keys(f"{key_prefix(table)}*{user}*") == [key.encode()]


async def test_a_script_redis_forgot_is_loaded_again_without_a_fallback(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    table, user = f"t-{uuid.uuid4()}", str(uuid.uuid4())
    async with instance(redis.url, table) as limiter, Redis.from_url(redis.url) as client:
        assert await admitted(limiter, user, Budget.WRITE)
        await client.script_flush()
        with caplog.at_level(logging.INFO, logger=LOGGER):
            assert not await admitted(limiter, user, Budget.WRITE)
        assert limiter.shared
        assert caplog.records == []


async def test_without_a_url_each_instance_keeps_its_own_budget() -> None:
    user = str(uuid.uuid4())
    async with instance(None, "t") as a, instance(None, "t") as b:
        assert [await admitted(a, user) for _ in range(BURST + 1)] == [True] * BURST + [False]
        assert await admitted(b, user)
        assert not a.shared


async def test_checks_stay_in_the_process_while_redis_is_down_and_share_again_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table, user = f"t-{uuid.uuid4()}", str(uuid.uuid4())
    metrics = PrometheusMetrics(max_operations=0)

    def gauge() -> float | None:
        return metrics.registry.get_sample_value("chat_api_rate_limit_shared")

    with redis_server() as redis, caplog.at_level(logging.INFO, logger=LOGGER):
        async with instance(redis.url, table, metrics) as limiter:
            assert [await admitted(limiter, user) for _ in range(BURST)] == [True] * BURST
            assert gauge() == 1
            redis.stop()

            # The process's own bucket, full: served, and limited all the same.
            outage = [await admitted(limiter, user) for _ in range(BURST + 2)]
            assert outage == [True] * BURST + [False, False]
            assert not limiter.shared
            assert gauge() == 0
            assert metrics.registry.get_sample_value(
                "chat_api_rate_limit_local_checks_total"
            ) == len(outage)
            said = [record.getMessage() for record in caplog.records]
            assert len(said) == 1, said
            assert "per process" in said[0]

            redis.start()
            for _ in range(RECOVERY_ATTEMPTS):
                await asyncio.sleep(SHARED_RETRY_SECONDS)
                await admitted(limiter, user)
                if limiter.shared:
                    break
            assert limiter.shared
            assert gauge() == 1
            said = [record.getMessage() for record in caplog.records]
            assert len(said) == 2, said
            assert "shared again" in said[1]


async def test_an_instance_starts_without_redis_and_limits_in_the_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    user = str(uuid.uuid4())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        async with instance(nowhere, "t") as limiter:
            assert not limiter.shared
            assert [await admitted(limiter, user) for _ in range(BURST + 1)] == [True] * BURST + [
                False
            ]
    assert len(caplog.records) == 1
