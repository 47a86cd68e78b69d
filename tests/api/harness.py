"""Drive the app over HTTP in-process: real tokens, the app's own DynamoDB client, counted."""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
from starlette.applications import Starlette

from graphql_api.app import Services, create_app
from graphql_api.settings import Settings
from tests.counting import RequestCounter
from tests.tokens import FakeUserPool


class GraphQLErrors(AssertionError):
    """A response that carried errors where the test expected none."""


@dataclasses.dataclass
class Api:
    app: Starlette
    http: httpx.AsyncClient
    pool: FakeUserPool

    @property
    def services(self) -> Services:
        services = self.app.state.services
        assert isinstance(services, Services)
        return services

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
    values: dict[str, Any] = {
        "table_name": table_name,
        "aws_region": region,
        "dynamodb_endpoint_url": endpoint,
        "cognito_user_pool_id": pool.pool_id,
        "cognito_region": pool.region,
        "cognito_app_client_ids": (pool.client_id,),
        "cognito_jwks_url": pool.jwks_url,
        "cursor_secret": "api-test-cursor-secret",
        "introspection_enabled": True,
        "graphiql_enabled": True,
        # Frozen objects are never collected, which would hide the unclosed-resource warnings
        # the suite turns into errors; test_http checks the freeze itself.
        "gc_freeze_after_startup": False,
    }
    return Settings(**{**values, **overrides})


@contextlib.asynccontextmanager
async def running_api(
    settings: Settings,
    pool: FakeUserPool,
    *,
    credentials: tuple[str, str] | None,
    graphiql_headers: dict[str, str] | None = None,
) -> AsyncIterator[Api]:
    # ASGITransport does not run the lifespan, so the test runs it around the client.
    app = create_app(settings, aws_credentials=credentials, graphiql_headers=graphiql_headers)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http,
    ):
        yield Api(app=app, http=http, pool=pool)


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
    batch = api.services.settings.max_batch_messages
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
