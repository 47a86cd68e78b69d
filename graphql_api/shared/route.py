"""`GET /shared/{id}`: content negotiation, the per-address budget, the headers every answer
carries, and what the request log may say of the path."""

from __future__ import annotations

import json
import logging
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from graphql_api.domain.ratelimit import Budget, address_key
from graphql_api.domain.sharing import SHARED_PREFIX
from graphql_api.errors import (
    NOT_FOUND_MESSAGE,
    RATE_LIMITED_MESSAGE,
    UNAVAILABLE_MESSAGE,
    Code,
    RateLimitedError,
    UnavailableError,
)
from graphql_api.services import AppState
from graphql_api.storage.records import SharedConversation, format_timestamp
from graphql_api.transport import ASGIApp, Message, Receive, Scope, Send, TransportPaths

from .page import STYLE_HASH, conversation_page, notice_page

logger = logging.getLogger(__name__)

Media = Literal["html", "json"]
ROUTE: Final = f"{SHARED_PREFIX}{{id}}"
# Seconds a client is told to wait when DynamoDB is unavailable, as the token check says it.
UNAVAILABLE_RETRY_AFTER: Final = 5
NOT_FOUND_TEXT: Final = (
    "This link does not exist, or its owner has stopped sharing it, or deleted the conversation."
)

# On every answer of the route, whatever it is (a page, JSON, a 404, a 429, a 503 from
# admission): nothing of it is to be indexed, cached by anyone but the reader, or told where
# the reader came from; the page may load its own style and nothing else, run no script, and
# be framed by nobody.
PUBLIC_HEADERS: Final = (
    ("X-Robots-Tag", "noindex, nofollow"),
    ("Referrer-Policy", "no-referrer"),
    # no-store too: a revoked link is not to be shown again from a cache.
    ("Cache-Control", "private, no-store"),
    (
        "Content-Security-Policy",
        f"default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'; sandbox",
    ),
    ("X-Content-Type-Options", "nosniff"),
    # One URL, two representations.
    ("Vary", "Accept"),
)


def covers(path: str) -> bool:
    return path.startswith(SHARED_PREFIX)


def _error_body(message: str, code: str, *, retry_after: int | None = None) -> dict[str, Any]:
    detail: dict[str, Any] = {"code": code, "message": message}
    if retry_after is not None:
        detail["retryAfter"] = retry_after
    return {"error": detail}


# For admission's 503 (it answers in JSON, before the route's negotiation).
SHARED_PATHS: Final = TransportPaths(covers=covers, error_body=_error_body)


def logged_path(path: str) -> str:
    """The path as the request log and traces name it: a link's id is its reader's key, so
    it is kept out of them."""
    return ROUTE if covers(path) else path


class SharedHeaders:
    """Adds PUBLIC_HEADERS to every response on the route's paths, whoever answered."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app
        self._headers = [(name.lower().encode(), value.encode()) for name, value in PUBLIC_HEADERS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not covers(scope["path"]):
            await self._app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = [
                    (name, value)
                    for name, value in message.get("headers", ())
                    if name.lower() not in {header for header, _ in self._headers}
                ]
                message["headers"] = [*given, *self._headers]
            await send(message)

        await self._app(scope, receive, with_headers)


def shared_routes() -> list[BaseRoute]:
    return [Route(ROUTE, read_shared, methods=["GET"])]


async def read_shared(request: Request[AppState]) -> Response:
    media = negotiated(request.headers.get("accept"))
    if media is None:
        return Response("Accept text/html or application/json.\n", 406, media_type="text/plain")
    services = request.state["services"]
    address = request.client.host if request.client is not None else "unknown"
    try:
        # Before anything is read, and for every id alike.
        await services.limiter.check(address_key(address), {Budget.SHARE: 1}, transport="shared")
        shared = await services.chat.read_shared(request.path_params["id"])
    except RateLimitedError as exc:
        return _refusal(media, 429, Code.RATE_LIMITED, exc.retry_after)
    except UnavailableError as exc:
        logger.warning("storage unavailable: %s", exc)
        return _refusal(media, 503, Code.SERVICE_UNAVAILABLE, UNAVAILABLE_RETRY_AFTER)
    if shared is None:
        return Response(NOT_FOUND[media], 404, media_type=_MEDIA_TYPES[media])
    if media == "json":
        return _json(as_json(shared), 200)
    return Response(conversation_page(shared), media_type="text/html")


def as_json(shared: SharedConversation) -> dict[str, Any]:
    """Only the title and the messages: nothing of the owner's, no ids."""
    return {
        "title": shared.title,
        "createdAt": format_timestamp(shared.created_at),
        "updatedAt": format_timestamp(shared.updated_at),
        "messages": [
            {
                "role": message.role,
                "content": message.content,
                "createdAt": format_timestamp(message.created_at),
                "modelId": message.model_id,
            }
            for message in shared.messages
        ],
    }


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status, media_type="application/json", headers=headers)


_MESSAGES: Final = {
    Code.RATE_LIMITED: (RATE_LIMITED_MESSAGE, "Too many requests from your address"),
    Code.SERVICE_UNAVAILABLE: (UNAVAILABLE_MESSAGE, "The service is busy"),
}
_MEDIA_TYPES: Final[dict[Media, str]] = {"json": "application/json", "html": "text/html"}


def _refusal(media: Media, status: int, code: Code, retry_after: int) -> Response:
    headers = {"Retry-After": str(retry_after)}
    message, title = _MESSAGES[code]
    if media == "json":
        return _json(_error_body(message, code.value, retry_after=retry_after), status, headers)
    text = f"Try again in {retry_after} second{'' if retry_after == 1 else 's'}."
    return Response(notice_page(title, text), status, media_type="text/html", headers=headers)


# One answer for every link that does not stand, whatever the reason: its bytes made once, so
# an unknown, a revoked and a deleted link are answered alike.
NOT_FOUND: Final[dict[Media, bytes]] = {
    "json": json.dumps(
        _error_body(NOT_FOUND_MESSAGE, Code.NOT_FOUND.value), separators=(",", ":")
    ).encode(),
    "html": notice_page("Not found", NOT_FOUND_TEXT).encode(),
}


def negotiated(accept: str | None) -> Media | None:
    """Which representation `accept` prefers: the page unless JSON ranks higher (a missing
    header or */* gets the page, as a browser would); None when it takes neither."""
    if not accept:
        return "html"
    ranks: dict[Media, float] = {"html": -1.0, "json": -1.0}
    for entry in accept.split(","):
        kind, _, parameters = entry.strip().partition(";")
        quality = _quality(parameters)
        kind = kind.strip().lower()
        for media, names in _NAMES.items():
            if kind in names:
                ranks[media] = max(ranks[media], quality)
    best = max(ranks.values())
    if best <= 0:
        return None
    return "json" if ranks["json"] > ranks["html"] else "html"


_NAMES: Final[dict[Media, frozenset[str]]] = {
    "html": frozenset({"text/html", "application/xhtml+xml", "text/*", "*/*"}),
    "json": frozenset({"application/json", "application/*"}),
}


def _quality(parameters: str) -> float:
    for parameter in parameters.split(";"):
        name, _, value = parameter.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                return min(max(float(value), 0.0), 1.0)
            except ValueError:
                return 0.0
    return 1.0
