"""Per-user rate limits as clients meet them: over GraphQL (both media types), REST and the
WebSocket, per process and shared by two instances through a real redis-server (Debian's
package, started here on 127.0.0.1), which one test stops and starts again.

Budgets here are a token a second with a burst of a few, so a test spends one in a handful of
requests; the one wait (a refused operation retried on its socket) is the `retryAfter` the
service gave. Everything else is decided by what the service answered and what it counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from graphql_api.domain import ratelimit
from graphql_api.domain.ratelimit import SHARED_RETRY_SECONDS
from graphql_api.errors import RATE_LIMITED_MESSAGE
from graphql_api.observability.metrics import PrometheusMetrics
from graphql_api.settings import ObservabilitySettings
from tests.api.harness import Api, create_conversation, new_user
from tests.api.rest_harness import Rest
from tests.apps import AppFactory
from tests.redis_server import redis_server

# A token a second: a refusal right after the burst is told to come back in 1 s.
LIMITED = {
    "reads_per_minute": 60,
    "reads_burst": 3,
    "writes_per_minute": 60,
    "writes_burst": 3,
}
METRICS = ObservabilitySettings(metrics_enabled=True)
LIST = "{ conversations(first: 1) { edges { node { id } } } }"
CREATE = """
mutation Create($title: String!) {
  createConversation(input: {title: $title}) { conversation { id } }
}
"""
# Tries after Redis restarts until a request's check goes through it again, each after the
# limiter's retry interval: far more than the one interval it takes.
RECOVERY_ATTEMPTS = 30


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


def shared(redis_url: str, **budgets: int) -> dict[str, Any]:
    return {"url": redis_url, **LIMITED, **budgets}


def rate_limited(
    retry_after: int, message: str = RATE_LIMITED_MESSAGE
) -> dict[str, list[dict[str, Any]]]:
    """A GraphQL refusal's body: a request error, so no `data`."""
    extensions = {"code": "RATE_LIMITED", "retryAfter": retry_after}
    return {"errors": [{"message": message, "extensions": extensions}]}


def prometheus(api: Api) -> PrometheusMetrics:
    metrics = api.telemetry.metrics
    assert isinstance(metrics, PrometheusMetrics)
    return metrics


async def statuses(api: Api, user: str, count: int) -> list[int]:
    return [(await api.post(LIST, user=user)).status_code for _ in range(count)]


async def test_a_users_budget_is_one_budget_across_two_instances(
    redis_url: str, make_api: AppFactory
) -> None:
    alice, bob = new_user(), new_user()
    limits = shared(redis_url)
    async with make_api(rate_limits=limits) as a, make_api(rate_limits=limits) as b:
        spent = [(await api.post(LIST, user=alice)).status_code for api in (a, b, a)]
        assert spent == [200, 200, 200]
        assert [(await api.post(LIST, user=alice)).status_code for api in (b, a)] == [429, 429]
        # Another user, and another budget of the same user, are untouched.
        assert (await b.post(LIST, user=bob)).status_code == 200
        created = await b.post(CREATE, {"title": "still writes"}, user=alice)
        assert created.status_code == 200
        assert "errors" not in created.json()


async def test_without_rate_limit_url_each_instance_limits_on_its_own(
    make_api: AppFactory,
) -> None:
    alice = new_user()
    async with make_api(rate_limits=LIMITED) as a, make_api(rate_limits=LIMITED) as b:
        assert await statuses(a, alice, 4) == [200, 200, 200, 429]
        assert await statuses(b, alice, 4) == [200, 200, 200, 429]


async def test_a_refusal_costs_no_dynamodb_request(make_api: AppFactory) -> None:
    alice = new_user()
    # One a minute: no token comes back while the test runs, however slow the engine is.
    one_each = {"reads_per_minute": 1, "reads_burst": 1, "writes_per_minute": 1, "writes_burst": 1}
    async with make_api(rate_limits=one_each) as api:
        with api.counting() as counter:
            assert (await api.post(LIST, user=alice)).status_code == 200
            served = counter.count
            refused = [
                await api.post(LIST, user=alice),
                await api.http.get("/conversations", headers=api.headers(alice)),
            ]
            await create_conversation(api, alice)
            written = counter.count
            refused.append(await api.post(CREATE, {"title": "refused"}, user=alice))
        assert [response.status_code for response in refused] == [429, 429, 429]
        assert served > 0
        assert written > served
        assert counter.count == written


@pytest.mark.parametrize("accept", ["application/graphql-response+json", "application/json"])
async def test_graphql_answers_429_with_retry_after_whatever_the_media_type(
    make_api: AppFactory, accept: str
) -> None:
    alice = new_user()
    async with make_api(rate_limits={**LIMITED, "reads_burst": 1}) as api:
        await api.post(LIST, user=alice)
        headers = {**api.headers(alice), "Accept": accept}
        posted = await api.http.post("/graphql", json={"query": LIST}, headers=headers)
        got = await api.http.get("/graphql", params={"query": LIST}, headers=headers)
    for response in (posted, got):
        assert response.status_code == 429
        assert response.headers["content-type"].startswith(accept)
        assert response.headers["retry-after"] == "1"
        assert response.json() == rate_limited(1)


async def test_rest_answers_429_in_its_own_shape_and_does_nothing(make_api: AppFactory) -> None:
    alice = new_user()
    # One write a minute: none comes back while the first is written, however slow the engine.
    async with make_api(rate_limits={**LIMITED, "writes_per_minute": 1, "writes_burst": 1}) as api:
        rest = await Rest.on(api)
        await rest.create(alice, "first")
        # The harness holds the answer to the OpenAPI document: 429 and its header are in it.
        response = await rest.request(
            "POST", "/conversations", user=alice, json={"title": "refused"}
        )
        listed = await rest.ok("GET", "/conversations", user=alice)
    assert response.status_code == 429
    retry_after = int(response.headers["retry-after"])
    # The next write is a minute after the first: less the time the first took to write.
    assert 50 <= retry_after <= 60
    assert response.json() == {
        "error": {
            "code": "RATE_LIMITED",
            "message": RATE_LIMITED_MESSAGE,
            "retryAfter": retry_after,
        }
    }
    assert [conversation["title"] for conversation in listed["conversations"]] == ["first"]


async def test_a_mutation_spends_a_write_per_root_field(make_api: AppFactory) -> None:
    alice = new_user()
    three = """mutation {
      a: createConversation(input: {title: "a"}) { conversation { id } }
      b: createConversation(input: {title: "b"}) { conversation { id } }
      c: createConversation(input: {title: "c"}) { conversation { id } }
    }"""
    two = """mutation {
      d: createConversation(input: {title: "d"}) { conversation { id } }
      e: createConversation(input: {title: "e"}) { conversation { id } }
    }"""
    async with make_api(rate_limits={**LIMITED, "writes_burst": 4}) as api:
        first = await api.post(three, user=alice)
        second = await api.post(two, user=alice)
        third = await api.post(CREATE, {"title": "f"}, user=alice)
        titles = await api.data(
            "{ conversations(first: 10) { edges { node { title } } } }", user=alice
        )
    assert first.status_code == 200
    assert "errors" not in first.json()
    assert second.status_code == 429
    assert third.status_code == 200
    assert "errors" not in third.json()
    stored = {edge["node"]["title"] for edge in titles["conversations"]["edges"]}
    assert stored == {"a", "b", "c", "f"}


async def test_a_refused_websocket_operation_leaves_the_socket_open_for_the_next(
    make_api: AppFactory,
) -> None:
    alice = new_user()
    limits = {**LIMITED, "reads_burst": 1}
    async with (
        make_api.live(rate_limits=limits, observability=METRICS) as live,
        live.socket() as socket,
    ):
        await socket.init(live.api.token(alice))
        assert "errors" not in await socket.run(LIST)
        errors = await socket.refused(LIST)
        assert errors == rate_limited(1)["errors"]
        await asyncio.sleep(errors[0]["extensions"]["retryAfter"])
        after = await socket.run(LIST)
        counted = prometheus(live.api).registry.get_sample_value(
            "chat_api_rate_limited_total", {"kind": "read", "transport": "websocket"}
        )
    assert "errors" not in after
    assert counted == 1


async def test_refusals_are_counted_by_kind_and_transport(make_api: AppFactory) -> None:
    alice = new_user()
    limits = {**LIMITED, "reads_burst": 1, "writes_burst": 1}
    async with make_api(rate_limits=limits, observability=METRICS) as api:
        rest = await Rest.on(api)
        for _ in range(3):
            await api.post(LIST, user=alice)
        for _ in range(2):
            await rest.request("POST", "/conversations", user=alice, json={"title": "t"})
        registry = prometheus(api).registry
    counted = {
        (kind, transport): registry.get_sample_value(
            "chat_api_rate_limited_total", {"kind": kind, "transport": transport}
        )
        for kind, transport in [("read", "graphql"), ("write", "rest")]
    }
    assert counted == {("read", "graphql"): 2, ("write", "rest"): 1}
    errors = {
        operation: registry.get_sample_value(
            "chat_api_errors_total", {"operation": operation, "code": "RATE_LIMITED"}
        )
        for operation in ("anonymous", "POST /conversations")
    }
    assert errors == {"anonymous": 2, "POST /conversations": 1}
    # No RATE_LIMIT_URL: the limits are this process's.
    assert registry.get_sample_value("chat_api_rate_limit_shared") == 0


async def test_with_redis_stopped_instances_serve_under_their_own_limits_until_it_is_back(
    make_api: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    alice = new_user()
    with (
        redis_server() as redis,
        caplog.at_level(logging.INFO, logger=ratelimit.__name__),
    ):
        limits = shared(redis.url)
        async with (
            make_api(rate_limits=limits, observability=METRICS) as a,
            make_api(rate_limits=limits, observability=METRICS) as b,
        ):
            assert await statuses(a, alice, 3) == [200, 200, 200]
            assert await statuses(b, alice, 1) == [429]
            redis.stop()

            # Served, each instance from a full bucket of its own, and still limited.
            assert await statuses(a, alice, 4) == [200, 200, 200, 429]
            assert await statuses(b, alice, 4) == [200, 200, 200, 429]
            for api in (a, b):
                registry = prometheus(api).registry
                assert registry.get_sample_value("chat_api_rate_limit_shared") == 0
                assert registry.get_sample_value("chat_api_rate_limit_local_checks_total") == 4
            # Once per instance and outage, however many requests it served meanwhile.
            said = [record.getMessage() for record in caplog.records]
            assert len(said) == 2, said
            assert all("per process" in line for line in said)

            redis.start()
            for api in (a, b):
                for _ in range(RECOVERY_ATTEMPTS):
                    await asyncio.sleep(SHARED_RETRY_SECONDS)
                    await api.post(LIST, user=new_user())
                    if api.services.limiter.shared:
                        break
                assert prometheus(api).registry.get_sample_value("chat_api_rate_limit_shared") == 1
            # Shared again: Redis restarted empty, so the budget is whole, and one.
            assert [(await api.post(LIST, user=alice)).status_code for api in (a, b, a, b)] == [
                200,
                200,
                200,
                429,
            ]
    said = [record.getMessage() for record in caplog.records]
    assert sum("shared again" in line for line in said) == 2
