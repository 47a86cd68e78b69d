"""The suite's apps, through one factory: a test names only what differs from the default app.

The `make_api` fixture is an AppFactory on the suite's engine, the module's table, the
session's user pool and the content bucket. `make_api()` is the default app (the `api`
fixture); anything else is the default plus what the test names:

    async with make_api(max_aliases=3, dynamodb={"deadline": 1.0}) as api: ...
    async with make_api(pool=fresh_pool, clock=clock) as api: ...
    async with make_api.live(subscriptions={"poll_seconds": 3600}) as live: ...
    create_app(make_api.settings(trusted_documents_only=True))

Keyword arguments are Settings fields; a mapping given for a section sets only those fields
of it (so another table, a proxy or an endpoint nothing answers is `dynamodb={...}`). The
rest are what the app is built with besides its settings: the user pool whose tokens it
trusts, its clock, GraphiQL's headers, and an exporter for its spans.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graphql_api.gql.websocket import WaitUntil, wall_clock_until
from graphql_api.settings import ContentSettings, Settings
from graphql_api.storage.client import utc_now
from tests.api.harness import Api, api_settings, overridden, running_api
from tests.conftest import REGION, credentials_for
from tests.sockets import LiveApi, running_server
from tests.tokens import FakeUserPool

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter


@dataclasses.dataclass(frozen=True, kw_only=True)
class AppFactory:
    pool: FakeUserPool
    engine: str
    table_name: str
    content: ContentSettings

    @property
    def credentials(self) -> tuple[str, str] | None:
        """The engine's, whatever endpoint an app is given: a proxy forwards to the engine,
        and an endpoint nothing answers needs only credentials that sign."""
        return credentials_for(self.engine)

    def settings(self, *, pool: FakeUserPool | None = None, **overrides: Any) -> Settings:
        default = api_settings(
            pool or self.pool,
            table_name=self.table_name,
            endpoint=self.engine,
            region=REGION,
            content=self.content,
        )
        return overridden(default, overrides)

    @contextlib.asynccontextmanager
    async def __call__(
        self,
        *,
        pool: FakeUserPool | None = None,
        clock: Callable[[], datetime] = utc_now,
        graphiql_headers: dict[str, str] | None = None,
        span_exporter: SpanExporter | None = None,
        **overrides: Any,
    ) -> AsyncIterator[Api]:
        """The app served in-process, its lifespan running."""
        async with running_api(
            self.settings(pool=pool, **overrides),
            pool or self.pool,
            credentials=self.credentials,
            graphiql_headers=graphiql_headers,
            clock=clock,
            span_exporter=span_exporter,
        ) as api:
            yield api

    @contextlib.asynccontextmanager
    async def live(
        self,
        *,
        pool: FakeUserPool | None = None,
        clock: Callable[[], datetime] = utc_now,
        wait_until: WaitUntil = wall_clock_until,
        **overrides: Any,
    ) -> AsyncIterator[LiveApi]:
        """The app on a real uvicorn server on 127.0.0.1, for WebSocket clients;
        `wait_until` is how its connections wait for their tokens to expire."""
        async with running_server(
            self.settings(pool=pool, **overrides),
            pool or self.pool,
            credentials=self.credentials,
            clock=clock,
            wait_until=wait_until,
        ) as live:
            yield live
