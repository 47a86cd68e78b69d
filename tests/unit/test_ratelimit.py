"""The per-user buckets in the process (GCRA on a clock the test moves), the limiter's verdicts
and which budget each request draws on. The Redis side is tests/integration/test_ratelimit.py."""

from __future__ import annotations

import pytest

from graphql_api.domain.ratelimit import (
    APPEND_MUTATIONS,
    Budget,
    Draw,
    LocalBuckets,
    Rate,
    RateLimiter,
    mutation_budget,
    route_budget,
)
from graphql_api.errors import RateLimitedError
from graphql_api.observability.metrics import PrometheusMetrics
from graphql_api.settings import RateLimitSettings, Settings, SettingsError

# 60 a minute: a token a second, so the moved clock reads in tokens.
PER_SECOND = Rate(per_minute=60, burst=3)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def draw(key: str = "u:read", rate: Rate = PER_SECOND, cost: int = 1) -> Draw:
    return Draw(key=key, rate=rate, cost=cost)


def test_a_full_bucket_admits_its_burst_at_once_then_refuses_for_one_interval() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock=clock)

    verdicts = [buckets.take([draw()]) for _ in range(4)]

    assert [verdict.admitted for verdict in verdicts] == [True, True, True, False]
    assert verdicts[3].wait_ms == pytest.approx(1000)


def test_a_bucket_refills_at_its_rate_and_never_past_its_burst() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    for _ in range(3):
        buckets.take([draw()])

    clock.now += 2.0
    assert [buckets.take([draw()]).admitted for _ in range(3)] == [True, True, False]

    clock.now += 3600.0
    assert [buckets.take([draw()]).admitted for _ in range(4)] == [True, True, True, False]


def test_a_refused_request_takes_nothing() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    for _ in range(3):
        buckets.take([draw()])
    for _ in range(10):
        assert not buckets.take([draw()]).admitted

    clock.now += 1.0

    assert buckets.take([draw()]).admitted


def test_draws_on_several_buckets_are_all_or_nothing() -> None:
    clock = Clock()
    buckets = LocalBuckets(clock=clock)
    writes = Rate(per_minute=60, burst=1)
    buckets.take([draw("u:write", writes)])

    verdict = buckets.take([draw("u:append"), draw("u:write", writes)])

    assert not verdict.admitted
    assert verdict.refused_by == 1
    # The append was not taken: its bucket still holds its whole burst.
    assert [buckets.take([draw("u:append")]).admitted for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]


def test_users_and_budgets_have_buckets_of_their_own() -> None:
    buckets = LocalBuckets(clock=Clock())
    for _ in range(3):
        buckets.take([draw("alice:read")])

    assert not buckets.take([draw("alice:read")]).admitted
    assert buckets.take([draw("bob:read")]).admitted
    assert buckets.take([draw("alice:write")]).admitted


def test_the_process_keeps_a_bounded_number_of_buckets_forgetting_the_least_recent() -> None:
    clock = Clock()
    buckets = LocalBuckets(capacity=100, clock=clock)
    for _ in range(3):
        buckets.take([draw("busy:read")])
    for n in range(1000):
        buckets.take([draw(f"user-{n}:read")])
        # The busy user keeps coming back: its bucket stays among the kept ones.
        buckets.take([draw("busy:read")])

    assert len(buckets) == 100
    assert not buckets.take([draw("busy:read")]).admitted
    # A forgotten bucket is a full one.
    assert buckets.take([draw("user-0:read")]).admitted


def limiter(clock: Clock, **rates: Rate) -> RateLimiter:
    defaults = {Budget.READ: PER_SECOND, Budget.WRITE: PER_SECOND, Budget.APPEND: PER_SECOND}
    chosen = {**defaults, **{Budget(name): rate for name, rate in rates.items()}}
    return RateLimiter(
        chosen, local=LocalBuckets(clock=clock), metrics=PrometheusMetrics(max_operations=0)
    )


async def test_a_refusal_says_the_whole_seconds_to_wait_and_which_budget() -> None:
    clock = Clock()
    slow_writes = Rate(per_minute=12, burst=1)
    checks = limiter(clock, write=slow_writes)
    await checks.check("alice", {Budget.WRITE: 1}, transport="graphql")

    with pytest.raises(RateLimitedError) as refused:
        await checks.check("alice", {Budget.WRITE: 1}, transport="graphql")

    assert (refused.value.retry_after, refused.value.budget) == (5, "write")
    clock.now += 4.9
    with pytest.raises(RateLimitedError) as again:
        await checks.check("alice", {Budget.WRITE: 1}, transport="graphql")
    # Rounded up, and never 0: "retry after 0 seconds" would invite a busy loop.
    assert again.value.retry_after == 1
    clock.now += 0.1
    await checks.check("alice", {Budget.WRITE: 1}, transport="graphql")


async def test_a_charge_over_a_burst_takes_the_whole_burst_and_is_never_refused_for_good() -> None:
    clock = Clock()
    checks = limiter(clock)

    await checks.check("alice", {Budget.WRITE: 10}, transport="graphql")
    with pytest.raises(RateLimitedError) as refused:
        await checks.check("alice", {Budget.WRITE: 10}, transport="graphql")
    assert refused.value.retry_after == 3
    clock.now += 3.0
    await checks.check("alice", {Budget.WRITE: 10}, transport="graphql")


async def test_refusals_are_counted_by_kind_and_transport_and_limits_said_per_process() -> None:
    metrics = PrometheusMetrics(max_operations=0)
    checks = RateLimiter(
        {Budget.READ: PER_SECOND, Budget.WRITE: PER_SECOND, Budget.APPEND: Rate(60, 1)},
        local=LocalBuckets(clock=Clock()),
        metrics=metrics,
    )
    await checks.check("alice", {Budget.APPEND: 1}, transport="websocket")
    for _ in range(2):
        with pytest.raises(RateLimitedError):
            await checks.check("alice", {Budget.APPEND: 1}, transport="websocket")

    assert (
        metrics.registry.get_sample_value(
            "chat_api_rate_limited_total", {"kind": "append", "transport": "websocket"}
        )
        == 2
    )
    assert metrics.registry.get_sample_value("chat_api_rate_limit_shared") == 0


def test_appends_are_the_stream_mutation_and_its_rest_route_and_nothing_else() -> None:
    assert {"appendMessage"} == APPEND_MUTATIONS
    assert mutation_budget("appendMessage") is Budget.APPEND
    assert mutation_budget("addMessage") is Budget.WRITE
    assert route_budget("POST", "/conversations/{id}/messages/{messageId}/deltas") is Budget.APPEND
    assert route_budget("POST", "/conversations/{id}/messages") is Budget.WRITE
    assert route_budget("DELETE", "/conversations/{id}") is Budget.WRITE
    assert route_budget("GET", "/conversations/{id}/messages") is Budget.READ


def test_the_budgets_are_settings_validated_at_startup() -> None:
    assert RateLimitSettings.from_env({}) == RateLimitSettings(
        reads_per_minute=600,
        writes_per_minute=120,
        appends_per_minute=1200,
        reads_burst=100,
        writes_burst=30,
        appends_burst=200,
    )
    for variable, value in [
        ("RATE_LIMIT_WRITES_PER_MINUTE", "0"),
        ("RATE_LIMIT_READS_BURST", "-5"),
        ("RATE_LIMIT_APPENDS_PER_MINUTE", "lots"),
        ("RATE_LIMIT_URL", "http://cache:6379"),
    ]:
        with pytest.raises(SettingsError) as refused:
            RateLimitSettings.from_env({variable: value})
        assert refused.value.variable == variable


def test_admission_settings_are_validated_and_default_to_the_dynamodb_pool() -> None:
    required = {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": "eu-west-1",
        "COGNITO_USER_POOL_ID": "eu-west-1_abc",
        "COGNITO_APP_CLIENT_IDS": "client",
    }
    settings = Settings.from_env({**required, "DYNAMODB_MAX_POOL_CONNECTIONS": "24"})
    assert (settings.concurrency_limit, settings.admission_wait_seconds) == (24, 0.5)
    chosen = Settings.from_env(
        {**required, "MAX_CONCURRENT_REQUESTS": "8", "ADMISSION_WAIT_SECONDS": "0"}
    )
    assert (chosen.concurrency_limit, chosen.admission_wait_seconds) == (8, 0.0)
    for variable, value in [("MAX_CONCURRENT_REQUESTS", "0"), ("ADMISSION_WAIT_SECONDS", "-1")]:
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({**required, variable: value})
        assert refused.value.variable == variable
