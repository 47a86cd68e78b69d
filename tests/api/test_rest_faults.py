"""Real faults over the REST routes (an unreachable DynamoDB, a missing table, a dead JWKS
endpoint): the status and code GraphQL gives for each, in the REST shape, no internals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from graphql_api.errors import INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE
from tests.api.harness import new_id
from tests.api.rest_harness import Rest
from tests.api.test_faults import assert_no_internals, missing_table, unreachable_store
from tests.apps import AppFactory
from tests.tokens import FakeUserPool

CALLS = [
    ("GET", "/conversations", None),
    ("POST", "/conversations", {"title": "t"}),
    ("GET", "/conversations/{id}", None),
    ("POST", "/conversations/{id}/messages", {"role": "user", "content": "x"}),
]


@pytest_asyncio.fixture(scope="module")
async def unreachable(make_api: AppFactory) -> AsyncIterator[Rest]:
    async with make_api(**unreachable_store()) as running:
        yield await Rest.on(running)


@pytest_asyncio.fixture(scope="module")
async def tableless(make_api: AppFactory) -> AsyncIterator[Rest]:
    async with make_api(**missing_table()) as running:
        yield await Rest.on(running)


@pytest.fixture(scope="module")
def dead_pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as pool:
        pool.server.stop()
        yield pool


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
async def test_an_unreachable_store_is_503_and_retryable(
    unreachable: Rest, alice: str, method: str, path: str, body: dict[str, str] | None
) -> None:
    response = await unreachable.request(
        method, path.replace("{id}", new_id()), user=alice, json=body
    )
    assert response.status_code == 503
    assert response.json() == {
        "error": {"code": "SERVICE_UNAVAILABLE", "message": UNAVAILABLE_MESSAGE, "retryable": True}
    }
    assert_no_internals(response.text)


@pytest.mark.parametrize(("method", "path", "body"), CALLS)
async def test_an_unexpected_storage_failure_is_a_generic_500(
    tableless: Rest,
    alice: str,
    method: str,
    path: str,
    body: dict[str, str] | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    response = await tableless.request(
        method, path.replace("{id}", new_id()), user=alice, json=body
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": {"code": "INTERNAL_SERVER_ERROR", "message": INTERNAL_MESSAGE}
    }
    assert_no_internals(response.text)
    # The detail goes to the log, for us.
    assert "ResourceNotFoundException" in caplog.text


async def test_unreachable_signing_keys_are_503_in_the_rest_shape(
    make_api: AppFactory, dead_pool: FakeUserPool, alice: str
) -> None:
    async with make_api(pool=dead_pool) as keyless:
        rest = await Rest.on(keyless)
        response = await rest.request("GET", "/conversations", user=alice)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json() == {
        "error": {
            "code": "SERVICE_UNAVAILABLE",
            "message": "Cannot verify tokens right now; try again.",
            "retryable": True,
        }
    }
