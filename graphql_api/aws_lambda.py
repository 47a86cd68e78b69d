"""The service in AWS Lambda: API Gateway HTTP API events (payload v2.0) through Mangum.

The same ASGI app as `serve`, built from the same Settings; deployed by infra/serverless.py
with the handler `graphql_api.aws_lambda.handler`. Mangum rather than AWS Lambda Web Adapter:
it runs the app in the handler's own process, with no HTTP server or extension in between, so
this module can be tested by calling it with events, as the tests do.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from typing import Any

from mangum import Mangum
from mangum.types import LambdaContext, LambdaEvent
from starlette.types import Receive, Scope, Send

from graphql_api.app import create_app
from graphql_api.settings import Settings


class LambdaHandler:
    """One execution environment's service: an event loop, the app with its lifespan open
    across invocations, and Mangum turning each event into an ASGI request.

    Mangum can run the lifespan itself, but it does so around every invocation: each request
    would open a DynamoDB client (~200 ms) and fetch the signing keys again. Lambda freezes
    the process between invocations and ends it without notice, so the lifespan is entered
    once, here, and left only by `close()` (tests and benchmarks).
    """

    def __init__(
        self, settings: Settings, *, aws_credentials: tuple[str, str] | None = None
    ) -> None:
        self._loop = asyncio.new_event_loop()
        self._exit = contextlib.AsyncExitStack()
        app = create_app(settings, aws_credentials=aws_credentials)
        try:
            state = self._loop.run_until_complete(
                self._exit.enter_async_context(app.router.lifespan_context(app))
            )
        except BaseException:
            self._loop.close()
            raise
        if state is None:
            raise RuntimeError("the app's lifespan yielded no state")
        lifespan_state = dict(state)

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What an ASGI server does: each request gets a copy of the lifespan's state.
            scope["state"] = dict(lifespan_state)
            await app(scope, receive, send)

        # Mangum runs each request on the calling thread's current event loop, which must be
        # the one the lifespan opened its clients on (its constructor also looks it up).
        asyncio.set_event_loop(self._loop)
        self._adapter = Mangum(with_state, lifespan="off")

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        # Set again on every call: whatever else ran on this thread may have changed it.
        asyncio.set_event_loop(self._loop)
        return self._adapter(event, context)

    def close(self) -> None:
        try:
            self._loop.run_until_complete(self._exit.aclose())
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            self._loop.close()


def __getattr__(name: str) -> LambdaHandler:
    """`handler`, built on first lookup: the one module-level object, because Lambda calls a
    function it finds by name on a module.

    Lambda's runtime imports this module and looks `handler` up once, in the environment's
    init phase, before the first event. Building it there follows AWS's cold-start advice
    (initialise outside the handler): the settings check, the schema, the DynamoDB client and
    the signing-key fetch happen once per environment, ahead of the first request, and a bad
    setting fails the init with its one-line message instead of failing every request.
    Importing the module (tests, benchmarks) builds nothing.
    """
    if name != "handler":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    handler = LambdaHandler(Settings.from_env(os.environ))
    globals()["handler"] = handler
    return handler
