"""Shedding before queueing: one process serves at most MAX_CONCURRENT_REQUESTS at once.

Past them, a request waits at most ADMISSION_WAIT_SECONDS for a place, then is answered 503
(SERVICE_UNAVAILABLE, retryable, with Retry-After) before its body is read, its token is
verified or DynamoDB is asked anything. Under overload a queue only makes every request late
and holds each one's memory; a client told at once can back off, or reach another instance.
An admitted request's storage calls all end within DYNAMODB_DEADLINE_SECONDS of its admission
(graphql_api.deadline); the token check before them has its own bound (JWKS_TOTAL_TIMEOUT,
less by default) and counts against the same deadline, so a place is not held longer.

Only the paths that reach DynamoDB take a place (GraphQL and REST): health, readiness,
metrics, GraphiQL's assets and the OpenAPI document are never shed. A WebSocket connection
takes none (it lives for an hour and mostly waits); each query or mutation it carries takes
one while it runs, as an HTTP request does, and is refused with an `error` message (the
connection stays) when none comes free. A subscription takes none: what it reads is bounded
by the sockets a user may hold and the operations each may run
(SUBSCRIPTION_CONNECTIONS_PER_USER, SUBSCRIPTIONS_PER_CONNECTION).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from graphql_api import deadline
from graphql_api.errors import BUSY_MESSAGE, Code
from graphql_api.transport import ASGIApp, Receive, Scope, Send, TransportPaths, send_error

# What a shed request is told: places come free as fast as requests finish, so a second is
# plenty; clients add their own jitter.
SHED_RETRY_AFTER_SECONDS: Final = 1


class Admission:
    """The process's places: `limit` requests at once, a wait of `wait_seconds` at most for one,
    and `deadline_seconds` for the storage calls of each request admitted."""

    def __init__(self, *, limit: int, wait_seconds: float, deadline_seconds: float) -> None:
        self.limit = limit
        self._places = asyncio.Semaphore(limit)
        self._wait_seconds = wait_seconds
        self._deadline_seconds = deadline_seconds

    @contextlib.asynccontextmanager
    async def place(self) -> AsyncIterator[bool]:
        """True for the block, with a place held and the request's deadline running; False
        when none came free in time (the caller refuses the request)."""
        if not await self._acquire():
            yield False
            return
        try:
            with deadline.within(self._deadline_seconds):
                yield True
        finally:
            self._places.release()

    async def _acquire(self) -> bool:
        if not self._places.locked():
            await self._places.acquire()  # a place is free: returns at once
            return True
        try:
            async with asyncio.timeout(self._wait_seconds):
                await self._places.acquire()
        except TimeoutError:
            return False
        return True


class AdmissionGuard:
    """The ASGI middleware admitting HTTP requests to the paths of `transports` (each a metric
    label and its paths); `on_shed(label)` counts each one shed."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        admission: Admission,
        transports: Sequence[tuple[str, TransportPaths]],
        on_shed: Callable[[str], None],
    ) -> None:
        self._app = app
        self._admission = admission
        self._transports = tuple(transports)
        self._on_shed = on_shed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        transport = self._transport(scope)
        if transport is None:
            await self._app(scope, receive, send)
            return
        name, paths = transport
        async with self._admission.place() as admitted:
            if admitted:
                await self._app(scope, receive, send)
                return
        self._on_shed(name)
        await send_error(
            send,
            503,
            BUSY_MESSAGE,
            Code.SERVICE_UNAVAILABLE.value,
            error_body=paths.error_body,
            retry_after=SHED_RETRY_AFTER_SECONDS,
        )

    def _transport(self, scope: Scope) -> tuple[str, TransportPaths] | None:
        if scope["type"] != "http":
            return None
        for name, paths in self._transports:
            if paths.covers(scope["path"]):
                return name, paths
        return None
