"""The subscriptions, over WebSocket (see gql.websocket): Subscription.changes, the change feed
live, and Subscription.messageStream, one streamed answer as it grows."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator

import strawberry

from graphql_api.context import Context
from graphql_api.domain.live_stream import LiveDelta
from graphql_api.errors import ChatError

from .changes import Change
from .messages import MessageStatus

CHANGES_DESCRIPTION = (
    "The caller's changes as they commit. With `since`: first every change after it, then "
    "live, with no gap and no repeat. With `conversationId`: only that conversation's."
)
MESSAGE_STREAM_DESCRIPTION = (
    "One of the caller's streamed messages as it grows: first the text stored after "
    "`afterSeq` in one event (nothing when there is none), then each delta as appendMessage "
    "stores it, in seq order with no gap and no repeat, then one last event with the final "
    "status, then complete. A finished message is that last event at once. After a "
    "disconnect, subscribe again with the last `seq` received: nothing is lost or repeated. "
    "When no append comes for STREAM_LEASE_SECONDS, one event says INTERRUPTED and the "
    "subscription stays open. Another user's message, one added whole or none: a NOT_FOUND "
    "error, then complete."
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


@strawberry.type(description="One event of messageStream.")
class MessageDelta:
    message_id: strawberry.ID
    seq: int = strawberry.field(
        description=(
            "The last seq this event covers: the text so far is the message's up to it. "
            "Resubscribe with `afterSeq` set to it to go on."
        )
    )
    delta: str = strawberry.field(
        description=(
            "Text to add after what came before: one appendMessage's delta, or several "
            "coalesced (the first event, a catch-up). Empty on an INTERRUPTED event and on a "
            "last event whose `content` is set."
        )
    )
    status: MessageStatus = strawberry.field(
        description=(
            "STREAMING, or INTERRUPTED once no append came for the lease (a later event may "
            "be STREAMING again). COMPLETE, STOPPED or FAILED on the last event, after which "
            "the subscription completes."
        )
    )
    content: str | None = strawberry.field(
        default=None,
        description=(
            "On the last event only, when finishMessage gave the full text (which replaces "
            "what streamed): the message's whole final text. Null otherwise."
        ),
    )

    @classmethod
    def from_event(cls, event: LiveDelta) -> MessageDelta:
        return cls(
            message_id=strawberry.ID(event.message_id),
            seq=event.seq,
            delta=event.delta,
            status=MessageStatus(event.status),
            content=event.content,
        )


async def message_stream(
    info: strawberry.Info[Context],
    conversation_id: strawberry.ID,
    message_id: strawberry.ID,
    after_seq: int | None = 0,
) -> AsyncGenerator[MessageDelta, None]:
    context = info.context
    if context.live is None:
        raise ChatError("subscriptions are served over WebSocket")
    stream = context.live.follow_message(
        context.chat,
        conversation_id=str(conversation_id),
        message_id=str(message_id),
        after_seq=0 if after_seq is None else after_seq,
    )
    async with contextlib.aclosing(stream):
        async for event in stream:
            yield MessageDelta.from_event(event)


@strawberry.type
class Subscription:
    changes: AsyncGenerator[Change, None] = strawberry.subscription(
        resolver=changes, description=CHANGES_DESCRIPTION
    )
    message_stream: AsyncGenerator[MessageDelta, None] = strawberry.subscription(
        resolver=message_stream, description=MESSAGE_STREAM_DESCRIPTION
    )
