"""GraphQL over HTTP: GET and POST on one path, with the media type the client asks for.

Clients that accept `application/graphql-response+json` (the GraphQL-over-HTTP spec's media
type) get the spec's status codes: a request refused before execution (a request error)
answers 400, so a proxy, a log or a metric can tell a broken request from a served one.
Clients that accept only `application/json` (or send no Accept at all) get what they have
always got: 200 for every GraphQL-level error, 400 only for a body that is not a request.
A request error carries `errors` and no `data` with either media type (GraphQL: no `data`
entry when execution did not start). Field errors during execution are 200 with `data` for
both.

A request may name its document by id instead of (or beside) its text: Apollo's
`extensions.persistedQuery.sha256Hash` or the spec's `documentId` (`sha256:<hex>` or bare hex).

The spec's table, as served here (graphql-response+json / application/json):
  body not JSON                                   400 / 400
  not a GraphQL request (not an object, neither
    query nor id, query not a string, bad
    variables, operationName, extensions, id)     400 / 400 (BAD_REQUEST)
  an id with a document that does not hash to it 400 / 400
  an id the service does not know                 200 / 200 (PERSISTED_QUERY_NOT_FOUND, with
                                                    `data: null`: Apollo's clients then send
                                                    the document, only after a 200)
  TRUSTED_DOCUMENTS_ONLY and not a trusted
    document (refused before parsing)             403 / 200 (QUERY_NOT_IN_SAFELIST)
  document does not parse                         400 / 200
  over a document limit                           400 / 200 (the limit's own code, e.g.
                                                    MAX_DEPTH_LIMIT)
  validation                                      400 / 200
  operation cannot be determined                  400 / 400
  variables do not coerce                         400 / 200
  mutation over GET                               405 / 405 (Allow: POST)
  other methods                                   405 / 405 (Allow: GET, POST)
  no acceptable media type                        406 / 406
  over the user's rate limit (gql/budgets.py)     429 / 429 (RATE_LIMITED, with Retry-After
                                                    and `retryAfter`)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson
from graphql import GraphQLError, OperationType
from starlette.requests import Request
from starlette.responses import Response

from graphql_api.context import Context
from graphql_api.errors import HTTP_STATUS, Code
from graphql_api.observability.cost import observed
from graphql_api.observability.record import note_operation
from graphql_api.services import AppState

from .budgets import admit
from .executor import GraphQLRunner, Phase, RequestError
from .trusted import normalized_id

GRAPHQL_RESPONSE: Final = "application/graphql-response+json"
JSON: Final = "application/json"
_SUPPORTED: Final = (GRAPHQL_RESPONSE, JSON)

# Status of each refused phase with the spec's media type: 400 for every request error, as
# the spec's examples answer each of them; legacy JSON clients get 200 for what GraphQL itself
# refused (the _LEGACY_200 phases) and 400 for the rest.
_SPEC_STATUS: Final = {
    Phase.DOCUMENT_ID: 400,
    Phase.PERSISTED: HTTP_STATUS[Code.PERSISTED_QUERY_NOT_FOUND],
    Phase.TRUSTED: HTTP_STATUS[Code.QUERY_NOT_IN_SAFELIST],
    Phase.PARSE: 400,
    Phase.LIMITS: 400,
    Phase.VALIDATION: 400,
    Phase.OPERATION: 400,
    Phase.RATE_LIMIT: HTTP_STATUS[Code.RATE_LIMITED],
    Phase.ADMISSION: HTTP_STATUS[Code.SERVICE_UNAVAILABLE],
    Phase.VARIABLES: 400,
}
# HTTP's own answers, whatever the media type: a legacy client honours them too.
_HTTP_ANSWERS: Final = frozenset({Phase.RATE_LIMIT, Phase.ADMISSION})
_LEGACY_200: Final = frozenset(
    {Phase.PERSISTED, Phase.TRUSTED, Phase.PARSE, Phase.LIMITS, Phase.VALIDATION, Phase.VARIABLES}
)


class _BadRequest(Exception):
    """The HTTP request is not a GraphQL request: 400 whatever the media type."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True, slots=True)
class _Params:
    query: str | None
    operation_name: str | None
    variables: dict[str, Any] | None
    # Normalized; with `query` too, the id must be the query's hash.
    document_id: str | None = None


def negotiate(accept: str | None) -> str | None:
    """The media type to answer in; None when the client accepts none we can produce.

    No Accept header, `*/*` and `application/*` get application/json: the form every client
    of this service has parsed until now.
    """
    if accept is None or not accept.strip():
        return JSON
    best: tuple[float, int, str] | None = None
    for position, part in enumerate(accept.split(",")):
        media, _, parameters = part.strip().partition(";")
        media = media.strip().lower()
        quality = _quality(parameters)
        if quality <= 0:
            continue
        if media in _SUPPORTED:
            chosen = media
        elif media in ("*/*", "application/*"):
            chosen = JSON
        else:
            continue
        # Highest quality first; among equals, the order the client listed them in.
        candidate = (quality, -position, chosen)
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return None if best is None else best[2]


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return max(0.0, min(1.0, float(value)))
            except ValueError:
                return 0.0
    return 1.0


def wants_ide(request: Request[Any]) -> bool:
    """A browser opening the endpoint (Strawberry's rule: GET, HTML or anything, no query;
    and no document id, which an APQ or trusted-documents GET carries instead)."""
    accept = request.headers.get("accept", "")
    params = request.query_params
    return (
        request.method == "GET"
        and not any(name in params for name in ("query", "documentId", "extensions"))
        and ("text/html" in accept or "*/*" in accept)
    )


ContextFactory = Callable[[Request[AppState]], Awaitable[Context | Response]]


class GraphQLEndpoint:
    """The ASGI endpoint for GraphQL over HTTP.

    `context_for` authenticates the request and builds its Context, or returns the response
    refusing it; `ide` answers a browser with GraphiQL when it is enabled.
    """

    def __init__(
        self,
        runner: GraphQLRunner,
        *,
        context_for: ContextFactory,
        ide: Callable[[Request[Any]], Response] | None,
    ) -> None:
        self._runner = runner
        self._context_for = context_for
        self._ide = ide

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.respond(Request(scope, receive))
        await response(scope, receive, send)

    async def respond(self, request: Request[AppState]) -> Response:
        if request.method not in ("GET", "POST"):
            return _plain_error(
                "GraphQL only supports GET and POST requests.", 405, JSON, allow="GET, POST"
            )
        if self._ide is not None and wants_ide(request):
            return self._ide(request)
        # Before anything about the request is looked at, as for every protected route.
        context = await self._context_for(request)
        if isinstance(context, Response):
            return context
        media = negotiate(request.headers.get("accept"))
        if media is None:
            return _plain_error(
                f"Cannot answer in any media type the request accepts; use {GRAPHQL_RESPONSE}.",
                406,
                JSON,
            )
        try:
            params = await _params(request)
        except _BadRequest as exc:
            return _plain_error(exc.message, 400, media)
        try:
            prepared = self._runner.prepare(
                params.query, params.operation_name, document_id=params.document_id
            )
            note_operation(
                prepared.operation.name.value if prepared.operation.name else None,
                prepared.kind.value,
            )
            if request.method == "GET" and prepared.kind is not OperationType.QUERY:
                return _plain_error(
                    f"{prepared.kind.value}s are not allowed when using GET",
                    405,
                    media,
                    allow="POST",
                )
            if prepared.kind is OperationType.SUBSCRIPTION:
                # As if the schema had no subscriptions: over HTTP, it has none.
                raise _refused_as_invalid("subscriptions are served over WebSocket on this path")
            await admit(
                request.state["services"].limiter,
                prepared,
                user_id=context.user_id,
                transport="graphql",
            )
            result = await self._runner.execute(
                prepared, variables=params.variables, context=context
            )
        except RequestError as refused:
            return _refusal(refused, media)
        body: dict[str, Any] = {"data": result.data}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        return _json(body, 200, media)


def _refused_as_invalid(message: str) -> RequestError:
    error = GraphQLError(message, extensions={"code": Code.BAD_USER_INPUT.value})
    return RequestError(Phase.VALIDATION, [error])


def _refusal(refused: RequestError, media: str) -> Response:
    body: dict[str, Any] = {"errors": [error.formatted for error in refused.errors]}
    if refused.phase is Phase.PERSISTED:
        # The one refusal with `data`: Apollo's clients send the document after this miss only
        # when it arrives as a 200, and a 200 graphql-response+json must carry `data`.
        body = {"data": None, **body}
    if media == GRAPHQL_RESPONSE or refused.phase in _HTTP_ANSWERS:
        status = _SPEC_STATUS[refused.phase]
    else:
        status = 200 if refused.phase in _LEGACY_200 else 400
    headers = {} if refused.retry_after is None else {"Retry-After": str(refused.retry_after)}
    return _json(body, status, media, headers)


async def _params(request: Request[Any]) -> _Params:
    if request.method == "GET":
        return _from_query_string(request.query_params)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nesting deeper than the parser goes ("[" * 100_000) is no request.
        raise _BadRequest("Unable to parse request body as JSON") from None
    if isinstance(body, list):
        raise _BadRequest("Batching is not enabled")
    if not isinstance(body, dict):
        raise _BadRequest("The request body must be a JSON object")
    return _checked(body)


def _from_query_string(query_params: Mapping[str, str]) -> _Params:
    raw: dict[str, Any] = {name: value for name, value in query_params.items() if value != ""}
    for name in ("variables", "extensions"):
        if name in raw:
            try:
                raw[name] = json.loads(raw[name])
            except (ValueError, RecursionError):
                raise _BadRequest(f"`{name}` must be JSON") from None
    return _checked(raw)


def _checked(body: Mapping[str, Any]) -> _Params:
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise _BadRequest("The GraphQL operation's `query` must be a string")
    operation_name = body.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise _BadRequest("`operationName` must be a string or null")
    variables = body.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise _BadRequest("`variables` must be an object or null")
    extensions = body.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise _BadRequest("`extensions` must be an object or null")
    document_id = _document_id(body.get("documentId"), (extensions or {}).get("persistedQuery"))
    if query is None and document_id is None:
        raise _BadRequest("No GraphQL query found in the request")
    return _Params(
        query=query,
        operation_name=operation_name or None,
        variables=variables,
        document_id=document_id,
    )


def _document_id(document_id: Any, persisted_query: Any) -> str | None:
    """The id a request names its document by: the spec's documentId or Apollo's hash."""
    ids: list[str] = []
    if document_id is not None:
        if not isinstance(document_id, str) or not document_id.strip():
            raise _BadRequest("`documentId` must be a non-empty string")
        ids.append(normalized_id(document_id))
    if persisted_query is not None:
        if not isinstance(persisted_query, dict) or persisted_query.get("version") != 1:
            raise _BadRequest("Unsupported persisted query version")
        sha256 = persisted_query.get("sha256Hash")
        if not isinstance(sha256, str) or not sha256.strip():
            raise _BadRequest("`persistedQuery.sha256Hash` must be a non-empty string")
        ids.append(normalized_id(sha256))
    if len(set(ids)) > 1:
        raise _BadRequest("`documentId` and `persistedQuery` name different documents")
    return ids[0] if ids else None


def _json(
    body: Mapping[str, Any], status: int, media: str, headers: Mapping[str, str] | None = None
) -> Response:
    # observed: notes the error codes for the request's log line and adds extensions.cost.
    # orjson: the same compact UTF-8 as json.dumps(ensure_ascii=False) at a fraction of its
    # cost, which showed on every page of results.
    content = orjson.dumps(observed(body))
    # The spec asks for the charset; legacy clients keep the bare type they always got.
    content_type = f"{media}; charset=utf-8" if media == GRAPHQL_RESPONSE else media
    return Response(content, status_code=status, media_type=content_type, headers=headers or None)


def _plain_error(message: str, status: int, media: str, *, allow: str | None = None) -> Response:
    """A refusal outside GraphQL's own phases, in the GraphQL error shape all the same."""
    headers = {} if allow is None else {"Allow": allow}
    body = {"errors": [{"message": message, "extensions": {"code": Code.BAD_REQUEST.value}}]}
    return _json(body, status, media, headers)
