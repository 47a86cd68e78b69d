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

MAX_CONCURRENT_REQUESTS is a ceiling, not a promise: what DynamoDB serves in time varies
(throttling, a hot partition, a slow network, the dev stack's one-request-at-a-time moto),
and places admitted past it queue downstream, where nothing sheds them and they end
SERVICE_UNAVAILABLE at their deadline, having held a place all along. So the places in use
follow what the requests say, as TCP's window does (additive increase, multiplicative
decrease): a request that held its place longer than half the deadline halves them (once
for the requests admitted under the old number: those admitted before it carry no news;
and not counting the time it waited for its user's own earlier writes, which is that
user's queue, not the process's),
and each one ending sooner gives back 1/places, about one place per round of them, up to
the ceiling. Admitted requests then finish in about half the deadline, and what the
process cannot finish in time is shed up front, unread, for the cost of a 503.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final

from graphql_api import deadline
from graphql_api.errors import BUSY_MESSAGE, Code
from graphql_api.transport import ASGIApp, Receive, Scope, Send, TransportPaths, send_error

# What a shed request is told: places come free as fast as requests finish, so a second is
# plenty; clients add their own jitter.
SHED_RETRY_AFTER_SECONDS: Final = 1
# A request holding its place longer than this share of the deadline says the process admits
# more than is served in time; half leaves the other half for the tail.
LATE_SHARE: Final = 0.5
# What a late request leaves of the places in use (TCP's halving).
BACKOFF: Final = 0.5


class Admission:
    """The process's places: at most `limit` requests at once (fewer while requests are late),
    a wait of `wait_seconds` at most for one, and `deadline_seconds` for the storage calls of
    each request admitted. `clock` times how long each holds its place; `on_places(n)` is
    told each change of how many it admits at once."""

    def __init__(
        self,
        *,
        limit: int,
        wait_seconds: float,
        deadline_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        on_places: Callable[[int], None] = lambda places: None,
    ) -> None:
        self.limit = limit
        self._wait_seconds = wait_seconds
        self._deadline_seconds = deadline_seconds
        self._clock = clock
        # The places in use: `limit` at most, one at least; a float, as increases are fractions.
        self._window = float(limit)
        self._in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        # When the window last shrank: requests admitted before it say nothing new.
        self._shrunk_at = -float("inf")
        self._on_places = on_places
        on_places(limit)

    @property
    def places(self) -> int:
        """How many requests may be in flight now."""
        return max(1, int(self._window))

    @contextlib.asynccontextmanager
    async def place(self) -> AsyncIterator[bool]:
        """True for the block, with a place held and the request's deadline running; False
        when none came free in time (the caller refuses the request)."""
        if not await self._acquire():
            yield False
            return
        admitted_at = self._clock()
        with deadline.within(self._deadline_seconds) as admitted:
            try:
                yield True
            finally:
                self._release(admitted_at, queued=admitted.queued)

    async def _acquire(self) -> bool:
        if not self._waiters and self._in_flight < self.places:
            self._in_flight += 1
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self._wait_seconds):
                await waiter
        except TimeoutError:
            pass
        except BaseException:
            # Cancelled (its client went away) as a place was handed to it: hand it on.
            if waiter.done() and not waiter.cancelled():
                self._in_flight -= 1
                self._hand_over()
            raise
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            waiter.cancel()
        # A place handed over just as the wait ran out is taken all the same.
        return not waiter.cancelled()

    def _release(self, admitted_at: float, *, queued: float) -> None:
        """Free the place of a request admitted at `admitted_at` that spent `queued` seconds
        of it behind its user's own writes."""
        self._in_flight -= 1
        now, before = self._clock(), self.places
        if now - admitted_at - queued > self._deadline_seconds * LATE_SHARE:
            if admitted_at >= self._shrunk_at:
                self._window = max(1.0, self._window * BACKOFF)
                self._shrunk_at = now
        else:
            self._window = min(float(self.limit), self._window + 1 / self._window)
        if self.places != before:
            self._on_places(self.places)
        self._hand_over()

    def _hand_over(self) -> None:
        """Free places to the waiters, first come, first served."""
        while self._waiters and self._in_flight < self.places:
            waiter = self._waiters.popleft()
            # Cancelled (its wait ran out, its client went away) but not yet woken to leave.
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)


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
