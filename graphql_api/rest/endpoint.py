"""One REST path as an ASGI endpoint: its operations by method, each described as data.

An Operation's description is what the OpenAPI document is made of and what its endpoint
reads the request by: only the declared parameters and body fields reach the handler, each
of its declared JSON type. The endpoint authenticates first, as every protected route does,
then takes one token from the user's budget for the route (reads for GET, appends for a
stream's deltas, writes for the rest), and answers every failure in the REST error shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any, Literal, TypeVar

from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from graphql_api.auth.backend import MISSING_TOKEN, identity_of, refusal
from graphql_api.domain.chat import UserChat
from graphql_api.domain.paging import PageArgs
from graphql_api.domain.ratelimit import Charge, route_budget
from graphql_api.errors import Code, ValidationError
from graphql_api.services import AppState

from .errors import BadRequest, error_body, error_response, failure_response
from .schema import Shape, read_boolean, read_integer


@dataclasses.dataclass(frozen=True, kw_only=True)
class Call:
    """A request as its handler sees it: the caller's chat and the declared inputs."""

    chat: UserChat
    # The request's URL path as the client sent it (any prefix a proxy serves us under kept).
    url_path: str
    path: Mapping[str, str]
    # The query parameters given (absent and empty ones left out), typed as declared.
    query: Mapping[str, Any]
    # The body's declared fields that were given, each of its declared JSON type.
    body: Mapping[str, Any]


Handler = Callable[[Call], Awaitable[Response]]
_A = TypeVar("_A")
_B = TypeVar("_B")
_W = TypeVar("_W")


async def both(first: Awaitable[_A], second: Awaitable[_B]) -> tuple[_A, _B]:
    """Both results, the two requests in flight together; the first failure is raised once
    both have finished, so neither is left running unobserved."""
    a, b = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(a, BaseException):
        raise a
    if isinstance(b, BaseException):
        raise b
    return a, b


@contextlib.contextmanager
def renamed(names: Mapping[str, str]) -> Iterator[None]:
    """The domain names GraphQL's arguments (first, after, last, before, conversationId);
    a REST client is told the name it sent instead."""
    try:
        yield
    except ValidationError as exc:
        if exc.field not in names:
            raise
        raise ValidationError(names[exc.field], exc.message) from None


def page_window(call: Call, window: Callable[[PageArgs], _W]) -> _W:
    """The window of a listing (`window`: the chat's of that listing) that the call's PAGE
    parameters ask for; an invalid one is refused by the names the client sent."""
    with renamed({"first": "limit", "after": "cursor"}):
        return window(PageArgs(first=call.query.get("limit"), after=call.query.get("cursor")))


@dataclasses.dataclass(frozen=True, kw_only=True)
class Param:
    name: str
    type: Literal["string", "integer", "boolean"]
    description: str
    location: Literal["path", "query"] = "query"
    format: str | None = None
    # A page size: its default and maximum are the service's InputLimits, shown as such in
    # the document and enforced by the rules.
    page_size: bool = False


# The parameters several resources' routes share.
CONVERSATION_ID = Param(
    name="id", type="string", location="path", format="uuid", description="The conversation."
)
LIMIT = Param(name="limit", type="integer", page_size=True, description="The page size.")
# A listing's page: its size, and where the previous page ended.
PAGE = (
    LIMIT,
    Param(
        name="cursor",
        type="string",
        description="`nextCursor` of the previous page; absent for the first page.",
    ),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    handler: Handler
    status: int
    # None: the success has no body (204).
    response: Shape | None
    params: tuple[Param, ...] = ()
    body: Shape | None = None
    # Beyond those every operation can answer (401, 500, 503) and those of a body (413, 415).
    errors: tuple[int, ...] = ()
    # Documented headers of the success response, with what they hold.
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    description: str | None = None


class Endpoint:
    """The operations on one path; other methods get 405 with Allow."""

    def __init__(self, operations: Sequence[Operation]) -> None:
        self._by_method = {operation.method: operation for operation in operations}
        self._allow = ", ".join(self._by_method)
        # What each costs its user: one token of its route's budget (domain/ratelimit.py).
        self._charges: dict[str, Charge] = {
            operation.method: {route_budget(operation.method, operation.path): 1}
            for operation in operations
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request[AppState]) -> Response:
        operation = self._by_method.get(request.method)
        if operation is None:
            return error_response(
                Code.BAD_REQUEST,
                f"{request.method} is not allowed here; use {self._allow}",
                status=405,
                headers={"Allow": self._allow},
            )
        identity = identity_of(request)
        if identity is None:
            return refusal(MISSING_TOKEN, error_body=error_body)
        services = request.state["services"]
        try:
            # Before the body is read: a refusal costs no more than this check.
            await services.limiter.check(
                identity.sub, self._charges[operation.method], transport="rest"
            )
            call = Call(
                chat=services.chat.for_user(identity.sub),
                url_path=request.url.path,
                path=request.path_params,
                query=_query(operation.params, request.query_params),
                body={} if operation.body is None else await _body(request, operation.body),
            )
            return await operation.handler(call)
        except ClientDisconnect:
            # Nobody to answer (the transport guard may have answered 413 already).
            raise
        except Exception as exc:
            return failure_response(exc)


def _query(params: Sequence[Param], given: QueryParams) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for param in params:
        raw = given.get(param.name) if param.location == "query" else None
        if not raw:
            continue
        if param.type == "integer":
            values[param.name] = read_integer(param.name, raw)
        elif param.type == "boolean":
            values[param.name] = read_boolean(param.name, raw)
        else:
            values[param.name] = raw
    return values


async def _body(request: Request[Any], shape: Shape) -> dict[str, Any]:
    try:
        parsed = json.loads(await request.body())
    except (ValueError, RecursionError):
        # UnicodeDecodeError is a ValueError; nesting deep enough exhausts the parser's stack.
        raise BadRequest("the request body is not valid JSON") from None
    return shape.read(parsed)
