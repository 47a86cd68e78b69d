"""Share links: the caller's list, and making, updating, revoking and forking them."""

from __future__ import annotations

import asyncio

import strawberry

from graphql_api.context import Context
from graphql_api.domain.paging import PageArgs

from .conversations import Conversation
from .pagination import PageInfo, edge_cursors, selected, selects_edge_cursors
from .share_links import ShareLink, ShareLinkConnection, ShareLinkEdge

_UP_TO = (
    "The last message the link shows: it shows the path from the first message to it (a "
    "message of this conversation, else BAD_USER_INPUT). Default: the active leaf now."
)


async def share_links(
    info: strawberry.Info[Context], first: int | None = None, after: str | None = None
) -> ShareLinkConnection:
    """The caller's share links, newest first."""
    context = info.context
    chat = context.chat
    listing = chat.list_share_links(chat.share_link_window(PageArgs(first=first, after=after)))
    total: int | None = None
    if selected(info, "totalCount"):
        # Counted alongside the page rather than after it: one round trip, not two.
        page, total = await asyncio.gather(listing, chat.count_share_links())
    else:
        page = await listing
    for record in page.items:
        context.loaders.node.prime(record.id, record)
    cursors = edge_cursors(
        page.items,
        lambda record: chat.cursors.share_link(record.position),
        every_edge=selects_edge_cursors(info),
    )
    return ShareLinkConnection(
        edges=[
            ShareLinkEdge(cursor=cursor, node=ShareLink.from_record(record))
            for cursor, record in zip(cursors, page.items, strict=True)
        ],
        page_info=PageInfo.of(cursors, has_previous=page.has_previous, has_next=page.has_next),
        counted=total,
    )


@strawberry.input
class CreateShareLinkInput:
    conversation_id: strawberry.ID
    up_to_message_id: strawberry.ID | None = strawberry.field(default=None, description=_UP_TO)


@strawberry.input
class UpdateShareLinkInput:
    id: strawberry.ID = strawberry.field(description="The link: its id and path stay.")
    up_to_message_id: strawberry.ID | None = strawberry.field(default=None, description=_UP_TO)


@strawberry.type
class ShareLinkPayload:
    share_link: ShareLink


@strawberry.input
class RevokeShareLinkInput:
    id: strawberry.ID


@strawberry.type
class RevokeShareLinkPayload:
    id: strawberry.ID = strawberry.field(description="The link revoked: it answers 404 now.")


@strawberry.input
class ForkSharedConversationInput:
    share_id: strawberry.ID = strawberry.field(
        description="A live link's id (anyone's): its path's last segment."
    )


@strawberry.type
class ForkSharedConversationPayload:
    conversation: Conversation = strawberry.field(
        description=(
            "A new conversation of the caller's (new ids) holding the link's messages as it "
            "shows them, in its title; the caller's own from now on."
        )
    )


def _remember(context: Context, link: ShareLink) -> ShareLinkPayload:
    context.loaders.forget_share_links(str(link.conversation_id))
    return ShareLinkPayload(share_link=link)


async def create_share_link(
    info: strawberry.Info[Context], input: CreateShareLinkInput
) -> ShareLinkPayload:
    context = info.context
    record = await context.chat.create_share_link(
        conversation_id=input.conversation_id, up_to_message_id=input.up_to_message_id
    )
    context.loaders.node.prime(record.id, record, force=True)
    return _remember(context, ShareLink.from_record(record))


async def update_share_link(
    info: strawberry.Info[Context], input: UpdateShareLinkInput
) -> ShareLinkPayload:
    context = info.context
    record = await context.chat.update_share_link(
        link_id=input.id, up_to_message_id=input.up_to_message_id
    )
    context.loaders.node.prime(record.id, record, force=True)
    return _remember(context, ShareLink.from_record(record))


async def revoke_share_link(
    info: strawberry.Info[Context], input: RevokeShareLinkInput
) -> RevokeShareLinkPayload:
    context = info.context
    link_id = await context.chat.revoke_share_link(link_id=input.id)
    context.loaders.node.prime(link_id, None, force=True)
    # Which conversation it was of is not worth a read: every list of links is read afresh.
    context.loaders.forget_share_links(None)
    return RevokeShareLinkPayload(id=strawberry.ID(link_id))


async def fork_shared_conversation(
    info: strawberry.Info[Context], input: ForkSharedConversationInput
) -> ForkSharedConversationPayload:
    context = info.context
    record = await context.chat.fork_shared_conversation(share_id=input.share_id)
    context.loaders.remember(record)
    return ForkSharedConversationPayload(conversation=Conversation.from_record(record))
