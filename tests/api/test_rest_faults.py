"""Real faults over the REST routes (an unreachable DynamoDB, a missing table, a dead JWKS
endpoint): the status and code GraphQL gives for each, in the REST shape, no internals."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from graphql_api.errors import INTERNAL_MESSAGE, UNAVAILABLE_MESSAGE
from tests.api.harness import api_settings, new_id, running_api
from tests.api.rest_harness import Rest
from tests.api.test_faults import assert_no_internals, tableless_settings, unreachable_settings
from tests.conftest import REGION, credentials_for
from tests.tokens import FakeUserPool

CALLS = [
    ("GET", "/conversations", None),
    ("POST", "/conversations", {"title": "t"}),
    ("GET", "/conversations/{id}", None),
    ("POST", "/conversations/{id}/messages", {"role": "user", "content": "x"}),
]


@pytest_asyncio.fixture(scope="module")
async def unreachable(user_pool: FakeUserPool) -> AsyncIterator[Rest]:
    settings = unreachable_settings(user_pool)
    async with running_api(settings, user_pool, credentials=("testing", "testing")) as running:
        yield await Rest.on(running)


@pytest_asyncio.fixture(scope="module")
async def tableless(user_pool: FakeUserPool, dynamodb_endpoint: str) -> AsyncIterator[Rest]:
    settings = tableless_settings(user_pool, dynamodb_endpoint)
    async with running_api(
        settings, user_pool, credentials=credentials_for(dynamodb_endpoint)
    ) as running:
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
    dead_pool: FakeUserPool, dynamodb_endpoint: str, api_table: str, alice: str
) -> None:
    settings = api_settings(
        dead_pool, table_name=api_table, endpoint=dynamodb_endpoint, region=REGION
    )
    async with running_api(
        settings, dead_pool, credentials=credentials_for(dynamodb_endpoint)
    ) as keyless:
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
