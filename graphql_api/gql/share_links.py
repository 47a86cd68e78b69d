"""The ShareLink type and its connection: what a user sees of the links they made."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.context import Context
from graphql_api.domain.sharing import shared_path
from graphql_api.storage.records import ShareLinkRecord

from .pagination import PageInfo
from .relay import Node


@strawberry.type(
    description=(
        "A read-only link to a frozen branch of one of the caller's conversations: anyone "
        "with its path can read the title and those messages, and nothing else of the "
        "caller's. Never indexed; revoked at once (revokeShareLink, or deleting the "
        "conversation, the caller's data, or its project with its conversations)."
    )
)
class ShareLink(Node):
    id: strawberry.ID = strawberry.field(
        description=(
            "The link's token: 192 random bits, URL-safe, derived from nothing else. Whoever "
            "holds it can read the link: treat it as a secret until it is shared."
        )
    )
    conversation_id: strawberry.ID
    title: str = strawberry.field(
        description="The conversation's title when the snapshot was taken."
    )
    created_at: datetime = strawberry.field(
        description="When the link was made; orders shareLinks."
    )
    updated_at: datetime = strawberry.field(
        description="When its snapshot was taken: its creation, or its last updateShareLink."
    )
    up_to_message_id: strawberry.ID = strawberry.field(
        description="The last message of the branch it shows."
    )
    message_count: int = strawberry.field(
        description="The messages it shows: the path from the first message to upToMessageId."
    )
    path: str = strawberry.field(
        description=(
            'Where the link is read, relative to the service: "/shared/<id>", a page for a '
            "browser and JSON for Accept: application/json."
        )
    )

    @classmethod
    def from_record(cls, record: ShareLinkRecord) -> ShareLink:
        return cls(
            id=strawberry.ID(record.id),
            conversation_id=strawberry.ID(record.conversation_id),
            title=record.title,
            created_at=record.created_at,
            updated_at=record.updated_at,
            up_to_message_id=strawberry.ID(record.up_to_message_id),
            message_count=record.message_count,
            path=shared_path(record.id),
        )


@strawberry.type
class ShareLinkEdge:
    cursor: str
    node: ShareLink


async def _total_share_links(root: ShareLinkConnection, info: strawberry.Info[Context]) -> int:
    if root.counted is not None:
        return root.counted
    return await info.context.chat.count_share_links()


@strawberry.type
class ShareLinkConnection:
    edges: list[ShareLinkEdge]
    page_info: PageInfo
    counted: strawberry.Private[int | None] = None
    total_count: int = strawberry.field(
        resolver=_total_share_links,
        description="All the caller's links, not only this page.",
    )
