"""Subscription.changes: the change feed, live, over WebSocket (see gql.websocket)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import strawberry

from graphql_api.context import Context
from graphql_api.errors import ChatError

from .changes import Change

CHANGES_DESCRIPTION = (
    "The caller's changes as they commit. With `since`: first every change after it, then "
    "live, with no gap and no repeat. With `conversationId`: only that conversation's."
)


async def changes(
    info: strawberry.Info[Context],
    # UNSET, not None: the SDL then shows the contract's plain `since: String`.
    since: str | None = strawberry.UNSET,
    conversation_id: strawberry.ID | None = strawberry.UNSET,
) -> AsyncGenerator[Change, None]:
    """Ends with a RESYNC_REQUIRED error when `since` is older than the retained history."""
    context = info.context
    if context.live is None:
        # Over HTTP the transport refuses subscriptions before they get here.
        raise ChatError("subscriptions are served over WebSocket")
    stream = context.live.follow(
        context.chat,
        since=since if isinstance(since, str) else None,
        conversation_id=str(conversation_id) if isinstance(conversation_id, str) else None,
    )
    async with contextlib.aclosing(stream):
        async for record in stream:
            # Whatever this connection read before the change committed may be stale now.
            context.renew_loaders()
            yield Change.from_record(record, sync_token=context.chat.sync_token(record.version))


@strawberry.type
class Subscription:
    changes: AsyncGenerator[Change, None] = strawberry.subscription(
        resolver=changes, description=CHANGES_DESCRIPTION
    )
