"""Drive the app over HTTP in-process: real tokens, the app's own DynamoDB client, counted."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from graphql_api.app import create_app
from graphql_api.observability.telemetry import Telemetry
from graphql_api.services import AppState, Services
from graphql_api.settings import (
    CognitoSettings,
    ContentSettings,
    InputLimits,
    RateLimitSettings,
    Settings,
)
from graphql_api.storage.client import utc_now
from tests import general_paths
from tests.counting import RequestCounter
from tests.tokens import FakeUserPool

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


# The suite seeds its data through the API, a user writing as fast as the app serves: far
# past the production budgets, which the tests of the limits (and the audit) set themselves.
SUITE_RATE_LIMITS = RateLimitSettings(
    reads_per_minute=1_000_000,
    reads_burst=100_000,
    writes_per_minute=1_000_000,
    writes_burst=100_000,
    appends_per_minute=1_000_000,
    appends_burst=100_000,
)


class GraphQLErrors(AssertionError):
    """A response that carried errors where the test expected none."""


@dataclasses.dataclass
class Api:
    app: Starlette
    http: httpx.AsyncClient
    pool: FakeUserPool
    state: AppState
    # The app as a server runs it: each request carries the lifespan's state.
    asgi: ASGIApp
    # What the app logs, counts and traces through (its metrics, its user hashes).
    telemetry: Telemetry

    @property
    def services(self) -> Services:
        return self.state["services"]

    def token(self, user: str) -> str:
        return self.pool.minter.access_token(sub=user)

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    async def post(
        self, query: str, variables: Mapping[str, Any] | None = None, *, user: str
    ) -> httpx.Response:
        body = {"query": query, "variables": dict(variables or {})}
        return await self.http.post("/graphql", json=body, headers=self.headers(user))

    async def run(
        self, query: str, variables: Mapping[str, Any] | None = None, *, user: str
    ) -> dict[str, Any]:
        """The whole response body (data and errors)."""
        response = await self.post(query, variables, user=user)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: Mapping[str, Any] | None = None, *, user: str
    ) -> dict[str, Any]:
        """The data of a response that must have no errors."""
        body = await self.run(query, variables, user=user)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        data: dict[str, Any] = body["data"]
        return data

    async def error(
        self, query: str, variables: Mapping[str, Any] | None = None, *, user: str
    ) -> dict[str, Any]:
        """The only error of a response that must fail."""
        body = await self.run(query, variables, user=user)
        errors = body.get("errors") or []
        assert len(errors) == 1, body
        error: dict[str, Any] = errors[0]
        return error

    @contextlib.contextmanager
    def counting(self) -> Iterator[RequestCounter]:
        with RequestCounter.attached(self.services.table.client) as counter:
            yield counter


def api_settings(
    pool: FakeUserPool, *, table_name: str, endpoint: str, region: str, **overrides: Any
) -> Settings:
    """Settings for an app on `endpoint` and `pool`, with `overrides` applied as `overridden`
    applies them. The fast path and the document cache are as the environment chooses
    (tests/general_paths.py) unless `overrides` set them."""
    base = general_paths.settings(
        dynamodb=general_paths.dynamodb_settings(
            table_name=table_name, region=region, endpoint_url=endpoint
        ),
        cognito=CognitoSettings(
            user_pool_id=pool.pool_id,
            region=pool.region,
            app_client_ids=(pool.client_id,),
            jwks_url_override=pool.jwks_url,
        ),
        limits=InputLimits(),
        content=ContentSettings(),
        rate_limits=SUITE_RATE_LIMITS,
        cursor_secret="api-test-cursor-secret",
        introspection_enabled=True,
        graphiql_enabled=True,
        # Frozen objects are never collected, which would hide the unclosed-resource warnings
        # the suite turns into errors; test_http checks the freeze itself.
        gc_freeze_after_startup=False,
    )
    return overridden(base, overrides)


def overridden(settings: Settings, overrides: Mapping[str, Any]) -> Settings:
    """`settings` with each field in `overrides` replaced; a mapping given for a section sets
    only those fields of it (`dynamodb={"deadline": 1.0}` keeps the table and endpoint)."""
    values = {
        name: dataclasses.replace(getattr(settings, name), **value)
        if isinstance(value, Mapping)
        else value
        for name, value in overrides.items()
    }
    return dataclasses.replace(settings, **values)


@contextlib.asynccontextmanager
async def running_api(
    settings: Settings,
    pool: FakeUserPool,
    *,
    credentials: tuple[str, str] | None,
    graphiql_headers: dict[str, str] | None = None,
    clock: Callable[[], datetime] = utc_now,
    span_exporter: SpanExporter | None = None,
) -> AsyncIterator[Api]:
    """The app `settings` describe, served in-process (tests/apps.py chooses the settings)."""
    telemetry = Telemetry.from_settings(settings, span_exporter=span_exporter)
    app = create_app(
        settings,
        aws_credentials=credentials,
        graphiql_headers=graphiql_headers,
        telemetry=telemetry,
        clock=clock,
    )
    async with served(app) as (http, state):
        yield Api(
            app=app, http=http, pool=pool, state=state, asgi=http_app(http), telemetry=telemetry
        )


@contextlib.asynccontextmanager
async def served(app: Starlette) -> AsyncIterator[tuple[httpx.AsyncClient, AppState]]:
    """An HTTP client on `app` with its lifespan running, as a server would run it.

    ASGITransport runs no lifespan, so the test runs it around the client and hands each
    request a copy of the lifespan's state, which is what uvicorn does.
    """
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, cast(AppState, state)


def http_app(http: httpx.AsyncClient) -> ASGIApp:
    """The ASGI app behind a client made by `served`, for more clients on the same app."""
    transport = http._transport
    assert isinstance(transport, httpx.ASGITransport)
    return transport.app


def new_user() -> str:
    return f"user-{uuid.uuid4()}"


def new_id() -> str:
    return str(uuid.uuid4())


CREATE = """
mutation Create($input: CreateConversationInput!) {
  createConversation(input: $input) {
    conversation { id title modelId createdAt updatedAt messageCount version }
  }
}
"""

ADD_MESSAGES = """
mutation Add($input: AddMessagesInput!) {
  addMessages(input: $input) { messages { id role content createdAt } }
}
"""


async def create_conversation(
    api: Api, user: str, title: str = "A conversation", **fields: Any
) -> dict[str, Any]:
    data = await api.data(CREATE, {"input": {"title": title, **fields}}, user=user)
    conversation: dict[str, Any] = data["createConversation"]["conversation"]
    return conversation


async def add_messages(
    api: Api, user: str, conversation_id: str, contents: list[str]
) -> list[dict[str, Any]]:
    """Store `contents` as alternating user/assistant messages, in batches the API accepts."""
    stored: list[dict[str, Any]] = []
    batch = api.services.settings.limits.max_batch_messages
    for start in range(0, len(contents), batch):
        messages = [
            {"role": "USER" if (start + index) % 2 == 0 else "ASSISTANT", "content": content}
            for index, content in enumerate(contents[start : start + batch])
        ]
        data = await api.data(
            ADD_MESSAGES,
            {"input": {"conversationId": conversation_id, "messages": messages}},
            user=user,
        )
        stored.extend(data["addMessages"]["messages"])
    return stored


SYNC_TOKEN = "query SyncToken { changes { syncToken } }"


async def sync_token(api: Api, user: str) -> str:
    """`user`'s current syncToken, to subscribe from.

    graphql-transport-ws never says when a subscription has started. Without `since`, a write
    made right after sending `subscribe` can commit before the server fixes its starting point,
    and is then history, not news: a test expecting it would wait in vain. With `since` read
    first, every write after this call is delivered, whenever the server gets to the message.
    """
    data = await api.data(SYNC_TOKEN, {}, user=user)
    token: str = data["changes"]["syncToken"]
    return token
