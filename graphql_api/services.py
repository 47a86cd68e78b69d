"""The long-lived objects a process opens once and every request shares.

`open_services` opens them in the app's lifespan (clients are costly to create and hold
connection pools) and closes them at shutdown; requests reach them through the lifespan state
as `request.state["services"]`, typed by AppState.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import TypedDict

import aiohttp

from graphql_api.auth import JwksCache, SigningKeysUnavailableError, TokenVerifier
from graphql_api.domain.broadcast import Broadcast, open_broadcast
from graphql_api.domain.chat import Chat
from graphql_api.domain.ratelimit import RateLimiter, RateLimitMetrics, open_rate_limiter
from graphql_api.domain.streams import StreamCache
from graphql_api.settings import Settings
from graphql_api.storage.client import ChatTable, open_table, utc_now
from graphql_api.storage.content import open_content_store

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Services:
    settings: Settings
    table: ChatTable
    jwks: JwksCache
    verifier: TokenVerifier
    chat: Chat
    # Announces every committed change, stored delta and finish to live subscriptions (the
    # table's listener and stream listener).
    broadcast: Broadcast
    # Every user's request budgets, checked before an operation touches the table.
    limiter: RateLimiter


class AppState(TypedDict):
    """The lifespan state every request sees."""

    services: Services


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    aws_credentials: tuple[str, str] | None = None,
    clock: Callable[[], datetime] = utc_now,
    metrics: RateLimitMetrics | None = None,
) -> AsyncIterator[Services]:
    """`metrics` hears what the rate limiter does (the app's telemetry)."""
    async with (
        open_broadcast(
            settings.subscriptions,
            table_name=settings.dynamodb.table_name,
            password=settings.redis_auth_token,
        ) as broadcast,
        open_content_store(
            settings.content, settings.dynamodb, credentials=aws_credentials
        ) as content,
        open_table(
            settings.dynamodb,
            credentials=aws_credentials,
            change_retention=settings.retention.change_retention,
            listener=broadcast.publish,
            stream_listener=broadcast.publish_stream,
            stream_lease=settings.streaming.lease,
            clock=clock,
            content=content,
        ) as table,
        aiohttp.ClientSession() as session,
        open_rate_limiter(
            settings.rate_limits,
            table_name=settings.dynamodb.table_name,
            password=settings.redis_auth_token,
            metrics=metrics,
        ) as limiter,
    ):
        jwks = JwksCache.from_settings(settings.cognito, session=session)
        if settings.cognito.jwks_warm_at_startup:
            try:
                await jwks.warm()
            except SigningKeysUnavailableError:
                # Not fatal: the first request (or /readyz) fetches again.
                logger.warning("could not fetch the signing keys at startup from %s", jwks)
        yield Services(
            settings=settings,
            table=table,
            jwks=jwks,
            verifier=TokenVerifier.from_settings(settings.cognito, jwks),
            chat=Chat(
                table=table,
                limits=dataclasses.replace(
                    settings.limits, max_content_bytes=settings.content_limit
                ),
                cursor_secret=settings.effective_cursor_secret,
                temporary_retention=settings.retention.temporary_retention,
                streaming=settings.streaming,
                # One per process, as the Chat is: an instance's appends share what it knows.
                streams=StreamCache(),
            ),
            broadcast=broadcast,
            limiter=limiter,
        )
