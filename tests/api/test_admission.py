"""Shedding before queueing: with every place of the process taken, a request is answered 503
at once, unread; health, readiness and metrics still answer; a place that comes free goes to
a request that waited for it; and an admitted request's storage calls end within the deadline
together.

The place is held by a request whose DynamoDB call the fault proxy holds until the test lets
it go, so what is in flight is decided by events, not by how long anything takes. The one
timed case is the deadline's own: calls of 1 s and 3.5 s under a deadline of 4 s, which each
fit alone and cannot together.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio

from graphql_api.errors import BUSY_MESSAGE
from graphql_api.observability.metrics import PrometheusMetrics
from graphql_api.settings import ObservabilitySettings
from tests.api.harness import Api, create_conversation, new_user
from tests.api.rest_harness import Rest
from tests.apps import AppFactory
from tests.faults import FaultProxy

LIST = "{ conversations(first: 1) { edges { node { id } } } }"
METRICS = ObservabilitySettings(metrics_enabled=True)
# Far longer than a held request is held: only the deadline test's delays meet them.
PATIENT = {"read_timeout": 60.0, "max_attempts": 1, "deadline": 60.0}
ONE_PLACE: dict[str, Any] = {"max_concurrent_requests": 1, "observability": METRICS}
BUSY = {
    "errors": [
        {
            "message": BUSY_MESSAGE,
            "extensions": {"code": "SERVICE_UNAVAILABLE", "retryable": True, "retryAfter": 1},
        }
    ]
}


@pytest_asyncio.fixture
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as running:
        yield running
        await running.settled()


def shed_count(api: Api, transport: str) -> float | None:
    metrics = api.telemetry.metrics
    assert isinstance(metrics, PrometheusMetrics)
    return metrics.registry.get_sample_value("chat_api_shed_total", {"transport": transport})


async def test_past_its_places_a_request_is_answered_503_unread_and_probes_still_answer(
    proxy: FaultProxy, make_api: AppFactory
) -> None:
    alice = new_user()
    dynamodb = {"endpoint_url": proxy.url, **PATIENT}
    async with make_api(dynamodb=dynamodb, admission_wait_seconds=0.05, **ONE_PLACE) as api:
        held = proxy.hold("Query")
        first = asyncio.create_task(api.post(LIST, user=alice))
        await held.arrived.wait()

        # Not JSON: read, it would be a 400. Without a token: authenticated, a 401.
        unreadable = await api.http.post(
            "/graphql",
            content=b"{not json",
            headers={**api.headers(alice), "Content-Type": "application/json"},
        )
        anonymous = await api.http.post("/graphql", json={"query": LIST})
        # Held to the OpenAPI document by the harness, as every REST answer is.
        rest = await (await Rest.on(api)).request("GET", "/conversations", user=alice)
        assert dict(proxy.requests) == {"Query": 1}
        probes = [await api.http.get(path) for path in ("/healthz", "/readyz", "/metrics")]

        held.release()
        served = await first
        # With the place free again, the same unreadable body is read, and refused for it.
        read = await api.http.post(
            "/graphql",
            content=b"{not json",
            headers={**api.headers(alice), "Content-Type": "application/json"},
        )
        counts = {transport: shed_count(api, transport) for transport in ("graphql", "rest")}
        metrics = api.telemetry.metrics
        assert isinstance(metrics, PrometheusMetrics)
        places = metrics.registry.get_sample_value("chat_api_admission_places")

    for response in (unreadable, anonymous):
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert response.json() == BUSY
    assert rest.status_code == 503
    assert rest.headers["retry-after"] == "1"
    assert rest.json() == {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": BUSY_MESSAGE,
            "retryable": True,
            "retryAfter": 1,
        }
    }
    assert [probe.status_code for probe in probes] == [200, 200, 200]
    assert served.status_code == 200
    assert read.status_code == 400
    assert counts == {"graphql": 2, "rest": 1}
    # Every request ended in time: the one place stayed.
    assert places == 1


async def test_a_request_waiting_for_a_place_gets_the_next_one_free(
    proxy: FaultProxy, make_api: AppFactory
) -> None:
    alice = new_user()
    dynamodb = {"endpoint_url": proxy.url, **PATIENT}
    # A wait far longer than the test holds the place: the second request is never shed.
    async with make_api(dynamodb=dynamodb, admission_wait_seconds=60.0, **ONE_PLACE) as api:
        held = proxy.hold("Query")
        first = asyncio.create_task(api.post(LIST, user=alice))
        await held.arrived.wait()
        second = asyncio.create_task(api.post(LIST, user=alice))
        # Time for the second to come as far as it can: to the place it waits for.
        await asyncio.sleep(0.2)
        reached_before_release = proxy.requests["Query"]
        held.release()
        responses = [await first, await second]

    assert reached_before_release == 1
    assert [response.status_code for response in responses] == [200, 200]
    assert proxy.requests["Query"] == 2
    assert shed_count(api, "graphql") is None


async def test_a_websocket_operation_without_a_place_is_refused_and_the_socket_stays(
    proxy: FaultProxy, make_api: AppFactory
) -> None:
    alice = new_user()
    dynamodb = {"endpoint_url": proxy.url, **PATIENT}
    async with (
        make_api.live(dynamodb=dynamodb, admission_wait_seconds=0.05, **ONE_PLACE) as live,
        live.socket() as socket,
    ):
        held = proxy.hold("Query")
        first = asyncio.create_task(live.api.post(LIST, user=alice))
        await held.arrived.wait()
        # A connection takes no place: it is accepted and authenticated meanwhile.
        await socket.init(live.api.token(alice))
        refused = await socket.refused(LIST)
        held.release()
        served = await first
        after = await socket.run(LIST)
        shed = shed_count(live.api, "websocket")

    assert refused == BUSY["errors"]
    assert served.status_code == 200
    assert "errors" not in after
    assert shed == 1


async def test_an_admitted_requests_storage_calls_end_within_the_deadline_together(
    proxy: FaultProxy, make_api: AppFactory
) -> None:
    alice = new_user()
    dynamodb = {"endpoint_url": proxy.url, "read_timeout": 60.0, "max_attempts": 1}
    async with make_api(dynamodb={**dynamodb, "deadline": 4.0}) as api:
        conversation = await create_conversation(api, alice, "before")
        # Each fits in the deadline alone; the second does not fit in what the first left.
        proxy.delay("TransactWriteItems", seconds=1.0)
        proxy.delay("TransactWriteItems", seconds=3.5)
        body = await api.run(
            """mutation($id: ID!) {
              first: renameConversation(input: {id: $id, title: "first"}) { __typename }
              second: renameConversation(input: {id: $id, title: "second"}) { __typename }
            }""",
            {"id": conversation["id"]},
            user=alice,
        )
        await proxy.settled()
        stored = await api.data(
            "query($id: ID!) { conversation(id: $id) { title } }",
            {"id": conversation["id"]},
            user=alice,
        )

    # The payloads are non-null, so the second's error nulls the data; what is stored shows
    # the first ran, and that the call cut short was never sent on.
    assert body["data"] is None
    assert [(error["path"], error["extensions"]["code"]) for error in body["errors"]] == [
        (["second"], "SERVICE_UNAVAILABLE")
    ]
    assert stored == {"conversation": {"title": "first"}}
