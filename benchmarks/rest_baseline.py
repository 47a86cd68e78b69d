"""What a team would write instead of GraphQL: one Starlette JSON endpoint per screen.

Same token verification (graphql_api.auth), same storage calls (benchmarks.operations), same
fields in the answers as the benchmark's GraphQL documents select. Cursors are signed like the
GraphQL ones, so neither side skips work the other does.

    GET    /rest/conversations?first=20[&after=]
    GET    /rest/conversations/{id}/messages?last=50[&before=]
    POST   /rest/conversations/{id}/messages      {"messages": [{"id", "role", "content", ...}]}
    PATCH  /rest/conversations/{id}               {"title", "expectedVersion"?}
    DELETE /rest/conversations/{id}
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from benchmarks import operations
from graphql_api.auth import AuthenticationError, JwksCache, TokenVerifier, bearer_token
from graphql_api.errors import (
    ChatError,
    ConflictError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)
from graphql_api.settings import Settings
from graphql_api.storage.client import ChatTable, open_table
from graphql_api.storage.records import (
    ROLES,
    ConversationPosition,
    ConversationRecord,
    MessagePosition,
    MessageRecord,
    NewMessage,
    format_timestamp,
    parse_timestamp,
)


class BadRequest(Exception):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class RestServices:
    settings: Settings
    table: ChatTable
    verifier: TokenVerifier


@dataclasses.dataclass(frozen=True)
class Cursors:
    """base64url("<timestamp>|<id>|<hmac>"), the HMAC bound to the caller and the list."""

    secret: bytes
    user_id: str

    def encode(self, scope: str, timestamp: datetime, item_id: str) -> str:
        body = f"{format_timestamp(timestamp)}|{item_id}"
        return base64.urlsafe_b64encode(f"{body}|{self._tag(scope, body)}".encode()).decode()

    def decode(self, scope: str, cursor: str) -> tuple[datetime, str]:
        try:
            stamp, item_id, tag = base64.urlsafe_b64decode(cursor).decode().split("|")
            moment = parse_timestamp(stamp)
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise BadRequest("malformed cursor") from None
        if not hmac.compare_digest(tag, self._tag(scope, f"{stamp}|{item_id}")):
            raise BadRequest("cursor does not belong to this list")
        return moment, item_id

    def _tag(self, scope: str, body: str) -> str:
        message = f"{self.user_id}|{scope}|{body}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:32]


Handler = Callable[[Request, RestServices, str], Awaitable[Response]]


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate, run `handler` with the caller's user id, and map failures to statuses."""

    async def run(request: Request) -> Response:
        services: RestServices = request.app.state.services
        try:
            token = bearer_token(request.headers.getlist("authorization"))
            identity = await services.verifier.verify(token)
        except AuthenticationError as exc:
            return _error(401, exc.message)
        try:
            return await handler(request, services, identity.sub)
        except (BadRequest, ValidationError, json.JSONDecodeError) as exc:
            return _error(400, str(exc))
        except NotFoundError:
            return _error(404, "conversation not found")
        except ConflictError as exc:
            return _error(409, str(exc))
        except UnavailableError:
            return _error(503, "temporarily unavailable")
        except ChatError:
            return _error(500, "internal error")

    return run


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


def _page_size(request: Request, name: str, settings: Settings) -> int:
    raw = request.query_params.get(name)
    try:
        size = settings.limits.default_page_size if raw is None else int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not 0 <= size <= settings.limits.max_page_size:
        raise BadRequest(f"{name} must be between 0 and {settings.limits.max_page_size}")
    return size


def _cursors(services: RestServices, user_id: str) -> Cursors:
    return Cursors(services.settings.effective_cursor_secret, user_id)


def _message_json(message: MessageRecord) -> dict[str, Any]:
    return {
        "id": message.id,
        "role": message.role,
        "content": message.content,
        "createdAt": format_timestamp(message.created_at),
    }


def _conversation_json(conversation: ConversationRecord) -> dict[str, Any]:
    last = conversation.last_message
    return {
        "id": conversation.id,
        "title": conversation.title,
        "updatedAt": format_timestamp(conversation.updated_at),
        "messageCount": conversation.message_count,
        "lastMessage": None if last is None else {"role": last.role, "content": last.content},
    }


async def list_conversations(request: Request, services: RestServices, user_id: str) -> Response:
    cursors = _cursors(services, user_id)
    after = request.query_params.get("after")
    position = None
    if after is not None:
        moment, conversation_id = cursors.decode("conversations", after)
        position = ConversationPosition(updated_at=moment, conversation_id=conversation_id)
    screen = await operations.home_screen(
        services.table,
        user_id=user_id,
        first=_page_size(request, "first", services.settings),
        after=position,
    )
    items = screen.page.items
    return JSONResponse(
        {
            "conversations": [_conversation_json(record) for record in items],
            "endCursor": (
                cursors.encode("conversations", items[-1].updated_at, items[-1].id)
                if items
                else None
            ),
            "hasNextPage": screen.page.has_next,
            "totalCount": screen.total_count,
        }
    )


async def list_messages(request: Request, services: RestServices, user_id: str) -> Response:
    conversation_id = request.path_params["id"]
    cursors = _cursors(services, user_id)
    scope = f"messages|{conversation_id}"
    before = request.query_params.get("before")
    position = None
    if before is not None:
        moment, message_id = cursors.decode(scope, before)
        position = MessagePosition(created_at=moment, message_id=message_id)
    opened = await operations.open_conversation(
        services.table,
        user_id=user_id,
        conversation_id=conversation_id,
        last=_page_size(request, "last", services.settings),
        before=position,
    )
    if opened.conversation is None:
        raise NotFoundError("conversation not found")
    items = opened.page.items
    return JSONResponse(
        {
            "title": opened.conversation.title,
            "messages": [_message_json(record) for record in items],
            "startCursor": (
                cursors.encode(scope, items[0].created_at, items[0].id) if items else None
            ),
            "hasPreviousPage": opened.page.has_previous,
        }
    )


def _new_message(data: Any, settings: Settings) -> NewMessage:
    if not isinstance(data, dict):
        raise BadRequest("each message must be an object")
    role, content = data.get("role"), data.get("content")
    if role not in ROLES or not isinstance(content, str):
        raise BadRequest("a message needs a role (user, assistant, system) and content")
    if len(content.encode()) > settings.limits.max_content_bytes:
        raise BadRequest("content is too large")
    message_id, model_id = data.get("id"), data.get("modelId")
    if not isinstance(message_id, str | None) or not isinstance(model_id, str | None):
        raise BadRequest("id and modelId must be strings")
    return NewMessage(role=role, content=content, id=message_id, model_id=model_id)


async def add_messages(request: Request, services: RestServices, user_id: str) -> Response:
    body = await request.json()
    given = body.get("messages") if isinstance(body, dict) else None
    if (
        not isinstance(given, list)
        or not 0 < len(given) <= services.settings.limits.max_batch_messages
    ):
        raise BadRequest("messages must be a non-empty list")
    added = await operations.add_messages(
        services.table,
        user_id=user_id,
        conversation_id=request.path_params["id"],
        new=[_new_message(item, services.settings) for item in given],
    )
    conversation = added.conversation
    return JSONResponse(
        {
            "messages": [{"id": record.id} for record in added.messages],
            "conversation": None
            if conversation is None
            else {
                "messageCount": conversation.message_count,
                "updatedAt": format_timestamp(conversation.updated_at),
            },
        }
    )


async def rename_conversation(request: Request, services: RestServices, user_id: str) -> Response:
    body = await request.json()
    title = body.get("title") if isinstance(body, dict) else None
    expected = body.get("expectedVersion") if isinstance(body, dict) else None
    if not isinstance(title, str) or not title.strip() or len(title) > 200:
        raise BadRequest("title must be 1 to 200 characters")
    if expected is not None and not isinstance(expected, int):
        raise BadRequest("expectedVersion must be an integer")
    record = await operations.rename_conversation(
        services.table,
        user_id=user_id,
        conversation_id=request.path_params["id"],
        title=title.strip(),
        expected_version=expected,
    )
    return JSONResponse(
        {
            "id": record.id,
            "title": record.title,
            "updatedAt": format_timestamp(record.updated_at),
            "version": record.version,
        }
    )


async def delete_conversation(request: Request, services: RestServices, user_id: str) -> Response:
    conversation_id = request.path_params["id"]
    await operations.delete_conversation(
        services.table, user_id=user_id, conversation_id=conversation_id
    )
    return JSONResponse({"deletedConversationId": conversation_id})


def create_rest_app(
    settings: Settings, *, aws_credentials: tuple[str, str] | None = None
) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            open_table(settings.dynamodb, credentials=aws_credentials) as table,
            aiohttp.ClientSession() as session,
        ):
            jwks = JwksCache.from_settings(settings.cognito, session=session)
            await jwks.warm()
            app.state.services = RestServices(
                settings=settings,
                table=table,
                verifier=TokenVerifier.from_settings(settings.cognito, jwks),
            )
            yield

    return Starlette(
        routes=[
            Route("/rest/conversations", endpoint(list_conversations), methods=["GET"]),
            Route("/rest/conversations/{id}/messages", endpoint(list_messages), methods=["GET"]),
            Route("/rest/conversations/{id}/messages", endpoint(add_messages), methods=["POST"]),
            Route("/rest/conversations/{id}", endpoint(rename_conversation), methods=["PATCH"]),
            Route("/rest/conversations/{id}", endpoint(delete_conversation), methods=["DELETE"]),
        ],
        lifespan=lifespan,
    )
