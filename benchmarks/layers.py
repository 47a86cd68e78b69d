"""The CPU each layer of a request adds to the floor, measured in-process.

The floor is a bare Starlette endpoint answering the home screen's captured JSON (the floor
variant of `make bench`). In front of it, the service's own layers are stacked one at a time,
as graphql_api.app builds them (its `middleware`, outermost first, then the Context the GraphQL
endpoint builds for each request), and each stack is called directly as uvicorn calls an ASGI
app, the same request each time: the bench's home request, with its real Cognito token. The
difference in process CPU per request between one stack and the next is what that layer costs.
No HTTP parsing and no socket: those are the server's (uvicorn's) own, the same for every
variant, and measured with them by the floor variant.

Run by benchmarks.run as a child (`python -m benchmarks.layers`): it prints READY, reads one
JSON job on stdin (the service's environment, the token, the captured body, the budget)
and answers one JSON line: each stack's microseconds per request.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import time
from collections.abc import MutableMapping
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.floor import GRAPHQL_PATH, Endpoint, answering
from benchmarks.scenarios import HOME_PAGE, HOME_QUERY
from graphql_api.app import admission_of, graphql_context, middleware
from graphql_api.observability.telemetry import Telemetry
from graphql_api.services import open_services
from graphql_api.settings import Settings

Message = MutableMapping[str, Any]


def _with_context(answer: Endpoint) -> Endpoint:
    """`answer` after building the request's Context as the GraphQL endpoint does."""

    async def endpoint(request: Request[Any]) -> Response:
        context = await graphql_context(request)
        if isinstance(context, Response):
            return context
        return await answer(request)

    return endpoint


def stacks(settings: Settings, telemetry: Telemetry, body: bytes) -> list[tuple[str, Starlette]]:
    """The floor, then one more layer at a time: (what was added, the app)."""
    layers = middleware(settings, telemetry, admission=admission_of(settings, telemetry))
    result = [("floor: bare endpoint", _app(body, [], with_context=False))]
    for count, layer in enumerate(layers, start=1):
        name = getattr(layer.cls, "__name__", str(layer.cls))
        result.append((f"+ {name}", _app(body, layers[:count], with_context=False)))
    result.append(("+ Context and dataloaders", _app(body, layers, with_context=True)))
    return result


def _app(body: bytes, layers: list[Middleware], *, with_context: bool) -> Starlette:
    endpoint = _with_context(answering(body)) if with_context else answering(body)
    return Starlette(routes=[Route(GRAPHQL_PATH, endpoint, methods=["POST"])], middleware=layers)


class _Caller:
    """Calls an ASGI app with the bench's home request, as uvicorn would."""

    def __init__(self, token: str, state: dict[str, Any]) -> None:
        self._payload = json.dumps(
            {"query": HOME_QUERY, "variables": {"first": HOME_PAGE}}
        ).encode()
        self._headers = [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"accept", b"*/*"),
            (b"content-length", str(len(self._payload)).encode()),
        ]
        self._state = state

    async def call(self, app: Starlette) -> int:
        status = 0
        payload = self._payload

        async def receive() -> Message:
            return {"type": "http.request", "body": payload, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": GRAPHQL_PATH,
            "raw_path": GRAPHQL_PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": self._headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self._state),
        }
        await app(scope, receive, send)
        return status


async def measure(
    env: dict[str, str], token: str, body: bytes, *, requests: int, rounds: int
) -> list[dict[str, Any]]:
    settings = Settings.from_env(env)
    telemetry = Telemetry.from_settings(settings)
    credentials = ("testing", "testing") if env.get("BENCH_LOCAL_CREDENTIALS") == "1" else None
    async with open_services(settings, aws_credentials=credentials) as services:
        caller = _Caller(token, {"services": services})
        measured = stacks(settings, telemetry, body)
        for name, app in measured:
            status = await caller.call(app)
            if status != 200:
                raise RuntimeError(f"{name}: HTTP {status}")
        # As the service does after startup: collections walk what requests leave behind.
        gc.freeze()
        samples: dict[str, list[float]] = {name: [] for name, _ in measured}
        for round_number in range(rounds):
            # Each round in the other order, so a slow patch of the machine hits all alike.
            order = measured if round_number % 2 == 0 else measured[::-1]
            for name, app in order:
                started = time.process_time()
                for _ in range(requests):
                    await caller.call(app)
                samples[name].append((time.process_time() - started) / requests)
    return [
        {"layer": name, "us_per_request": statistics.median(samples[name]) * 1e6}
        for name, _ in measured
    ]


async def serve() -> None:
    loop = asyncio.get_running_loop()
    print("READY", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    if not line:
        return
    job = json.loads(line)
    try:
        rows = await measure(
            job["env"],
            job["token"],
            job["body"].encode(),
            requests=int(job["requests"]),
            rounds=int(job["rounds"]),
        )
        answer: dict[str, Any] = {"layers": rows}
    except Exception as exc:  # reported to the orchestrator, which stops
        answer = {"error": repr(exc)[:1000]}
    print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    asyncio.run(serve())
