"""Real faults (an unreachable DynamoDB, a missing table, a dead JWKS endpoint) over the API.

Each must give its documented code and status, and nothing of our internals.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.errors import INTERNAL_MESSAGE
from tests.api.harness import Api, new_id
from tests.apps import AppFactory
from tests.tokens import FakeUserPool

LIST = "{ conversations { edges { node { id } } } }"
CREATE = 'mutation { createConversation(input: {title: "t"}) { conversation { id } } }'
# Words that would mean internals leaked into a response.
INTERNALS = ("Traceback", "botocore", "aiobotocore", "Exception", "dynamodb", "DynamoDB", ".py")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def assert_no_internals(text: str) -> None:
    for word in INTERNALS:
        assert word not in text


def unreachable_store() -> dict[str, Any]:
    """An app whose DynamoDB endpoint refuses every connection, failing after one attempt."""
    return {
        "dynamodb": {
            "endpoint_url": f"http://127.0.0.1:{closed_port()}",
            "max_attempts": 1,
            "connect_timeout": 0.5,
            "deadline": 3.0,
        }
    }


def missing_table() -> dict[str, Any]:
    """An app on the real engine, naming a table that does not exist."""
    return {"dynamodb": {"table_name": f"missing-{uuid.uuid4().hex[:8]}"}}


@pytest_asyncio.fixture(scope="module")
async def unreachable(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(**unreachable_store()) as running:
        yield running


@pytest_asyncio.fixture(scope="module")
async def tableless(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(**missing_table()) as running:
        yield running


@pytest.fixture(scope="module")
def dead_pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as pool:
        pool.server.stop()
        yield pool


async def test_an_unreachable_store_is_service_unavailable(unreachable: Api, alice: str) -> None:
    for query in (LIST, CREATE):
        response = await unreachable.post(query, user=alice)
        assert response.status_code == 200
        (error,) = response.json()["errors"]
        assert error["extensions"] == {"code": "SERVICE_UNAVAILABLE", "retryable": True}
        assert_no_internals(response.text)


async def test_readyz_is_503_when_the_store_is_unreachable(unreachable: Api) -> None:
    response = await unreachable.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"dynamodb": "failing", "signingKeys": "ok"}


async def test_an_unexpected_storage_failure_is_a_generic_internal_error(
    tableless: Api, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    queries = [LIST, CREATE, "query($id: ID!) { conversation(id: $id) { id } }"]
    for query in queries:
        response = await tableless.post(
            query, {"id": new_id()} if "$id" in query else None, user=alice
        )
        assert response.status_code == 200
        (error,) = response.json()["errors"]
        assert error["message"] == INTERNAL_MESSAGE
        assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR"}
        assert_no_internals(response.text)
    # The detail goes to the log, for us.
    assert "ResourceNotFoundException" in caplog.text


async def test_readyz_is_503_when_the_table_is_missing(tableless: Api) -> None:
    response = await tableless.http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["dynamodb"] == "failing"


async def test_unreachable_signing_keys_are_503_not_a_crash(
    make_api: AppFactory, dead_pool: FakeUserPool, alice: str
) -> None:
    # Startup survives the failed warm-up; requests then say why they cannot be served.
    async with make_api(pool=dead_pool) as keyless:
        response = await keyless.post(LIST, user=alice)
        ready = await keyless.http.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {
        "errors": [
            {
                "message": "Cannot verify tokens right now; try again.",
                "extensions": {"code": "SERVICE_UNAVAILABLE", "retryable": True},
            }
        ]
    }
    assert ready.status_code == 503
    assert ready.json()["checks"] == {"dynamodb": "ok", "signingKeys": "failing"}
