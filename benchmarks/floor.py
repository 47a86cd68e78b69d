"""The floor: a bare Starlette endpoint answering the home screen's JSON, captured in the run.

No authentication, no storage, no GraphQL: what any Starlette service behind the same uvicorn
settings pays to take the home request and answer the same bytes. benchmarks.serve serves it
like the other variants, and the report gives every scenario's CPU per request as a multiple
of it. The body is the service's own answer to the bench's home request in the same run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

GRAPHQL_PATH: Final = "/graphql"

Endpoint = Callable[[Request[Any]], Awaitable[Response]]


def answering(body: bytes) -> Endpoint:
    """The floor's endpoint: reads the request's body, answers `body`."""

    async def answer(request: Request[Any]) -> Response:
        await request.body()
        return Response(body, media_type="application/json")

    return answer


def create_floor_app(body: bytes) -> Starlette:
    return Starlette(routes=[Route(GRAPHQL_PATH, answering(body), methods=["POST"])])
