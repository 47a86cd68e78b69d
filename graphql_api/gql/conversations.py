"""Conversation types, the conversations connection, and the conversation mutations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterable, Iterator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types.nodes import FragmentSpread, InlineFragment, SelectedField, Selection

from graphql_api.context import Context
from graphql_api.domain import rules
from graphql_api.domain.paging import PageArgs
from graphql_api.errors import ValidationError
from graphql_api.loaders import MessagePageKey
from graphql_api.storage.records import UNSET, ConversationRecord, MessageRecord, Page

from .messages import Message, MessageConnection, message_connection, message_page_key
from .pagination import PageInfo


async def _messages(
    root: Conversation,
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> MessageConnection:
    context = info.context
    args = PageArgs(first=first, after=after, last=last, before=before)
    key = message_page_key(context, root.id, args)
    # The conversation resolver may have started this very page already (same key).
    page = await context.loaders.message_page.load(key)
    return message_connection(context, root.id, page, root.message_count)


@strawberry.type
class Conversation:
    id: strawberry.ID
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    version: int = strawberry.field(
        description="Increases with every change; pass it as expectedVersion to detect races."
    )
    last_message: Message | None
    messages: MessageConnection = strawberry.field(
        resolver=_messages,
        description=(
            "Always in chronological order. `last: N` gives the newest N and `before` pages "
            "back to older ones; `first`/`after` page forward. No arguments: the newest page."
        ),
    )

    @classmethod
    def from_record(cls, record: ConversationRecord) -> Conversation:
        return cls(
            id=strawberry.ID(record.id),
            title=record.title,
            model_id=record.model_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            message_count=record.message_count,
            version=record.version,
            last_message=(
                None if record.last_message is None else Message.from_record(record.last_message)
            ),
        )


async def _total_count(root: ConversationConnection, info: strawberry.Info[Context]) -> int:
    if root.counted is not None:
        return root.counted
    return await info.context.chat.count_conversations()


@strawberry.type
class ConversationEdge:
    cursor: str
    node: Conversation


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    # Counted together with the page when the query asked for it up front.
    counted: strawberry.Private[int | None] = None

    total_count: int = strawberry.field(
        resolver=_total_count, description="All the caller's conversations, not only this page."
    )


# --- queries -----------------------------------------------------------------------------


async def conversations(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> ConversationConnection:
    context = info.context
    chat = context.chat
    listing = chat.list_conversations(
        chat.conversation_window(PageArgs(first=first, after=after, last=last, before=before))
    )
    total: int | None = None
    if any(
        child.name == "totalCount"
        for field in info.selected_fields
        for child in _fields(field.selections)
    ):
        # Counted alongside the page rather than after it: one round trip, not two.
        page, total = await asyncio.gather(listing, chat.count_conversations())
    else:
        page = await listing
    return _conversation_connection(context, page, total)


def _conversation_connection(
    context: Context, page: Page[ConversationRecord], total: int | None
) -> ConversationConnection:
    for record in page.items:
        # A conversation named again in the same request is then served from memory.
        context.loaders.conversation.prime(record.id, record)
    edges = [
        ConversationEdge(
            cursor=context.chat.cursors.conversation(record.position),
            node=Conversation.from_record(record),
        )
        for record in page.items
    ]
    return ConversationConnection(
        edges=edges,
        page_info=PageInfo.of(
            [edge.cursor for edge in edges],
            has_previous=page.has_previous,
            has_next=page.has_next,
        ),
        counted=total,
    )


async def conversation(info: strawberry.Info[Context], id: strawberry.ID) -> Conversation | None:
    """The caller's conversation; null when it does not exist or belongs to someone else."""
    context = info.context
    conversation_id = rules.uuid_id(id, field="id")
    # Start the pages the query asks for before awaiting the conversation, so both reads go
    # out together. Storage filters messages on the owner, so a foreign id prefetches nothing.
    prefetched = [
        context.loaders.message_page.load(key)
        for key in _requested_message_pages(info, conversation_id)
    ]
    record = await context.loaders.conversation.load(conversation_id)
    if record is None:
        for pending in prefetched:
            _discard(pending)
        return None
    return Conversation.from_record(record)


def _requested_message_pages(
    info: strawberry.Info[Context], conversation_id: str
) -> Iterator[MessagePageKey]:
    for child in _selected(info, "messages"):
        args = _page_args(child.arguments)
        if args is None:
            continue
        with contextlib.suppress(ValidationError):
            # Invalid arguments are reported by the messages field itself.
            yield message_page_key(info.context, conversation_id, args)


def _selected(info: strawberry.Info[Context], name: str) -> list[SelectedField]:
    """The sub-fields called `name` this field's selection asks for, through fragments too."""
    return [
        child
        for field in info.selected_fields
        for child in _fields(field.selections)
        if child.name == name
    ]


def _fields(selections: Iterable[Selection]) -> Iterator[SelectedField]:
    for selection in selections:
        if isinstance(selection, SelectedField):
            yield selection
        elif isinstance(selection, FragmentSpread | InlineFragment):
            yield from _fields(selection.selections)


def _page_args(arguments: dict[str, Any]) -> PageArgs | None:
    """The arguments as the field will receive them; None if they are not plainly valid.

    Literal integers arrive as strings here (graphql-core's node values); variables arrive
    already coerced.
    """
    try:
        sizes = {
            name: None if arguments.get(name) is None else int(arguments[name])
            for name in ("first", "last")
        }
    except (TypeError, ValueError):
        return None
    cursors = {name: arguments.get(name) for name in ("after", "before")}
    if not all(value is None or isinstance(value, str) for value in cursors.values()):
        return None
    return PageArgs(
        first=sizes["first"], last=sizes["last"], after=cursors["after"], before=cursors["before"]
    )


def _discard(pending: Awaitable[Page[MessageRecord]]) -> None:
    """Drop a prefetched page nobody will read, without an unretrieved-exception warning."""
    asyncio.ensure_future(pending).add_done_callback(
        lambda done: done.cancelled() or done.exception()
    )


# --- mutations ---------------------------------------------------------------------------


@strawberry.input
class CreateConversationInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="A client-chosen UUID; retrying with it creates one conversation."
    )
    title: str
    model_id: str | None = None


@strawberry.type
class CreateConversationPayload:
    conversation: Conversation


@strawberry.input
class RenameConversationInput:
    id: strawberry.ID
    title: str
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with CONFLICT unless the conversation is at this version."
    )


@strawberry.type
class RenameConversationPayload:
    conversation: Conversation


@strawberry.input
class UpdateConversationInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    model_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="null clears the model; omitted leaves it."
    )
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with CONFLICT unless the conversation is at this version."
    )


@strawberry.type
class UpdateConversationPayload:
    conversation: Conversation


@strawberry.input
class DeleteConversationInput:
    id: strawberry.ID


@strawberry.type
class DeleteConversationPayload:
    deleted_conversation_id: strawberry.ID


def _remember(context: Context, record: ConversationRecord) -> Conversation:
    context.loaders.conversation.prime(record.id, record, force=True)
    return Conversation.from_record(record)


async def create_conversation(
    info: strawberry.Info[Context], input: CreateConversationInput
) -> CreateConversationPayload:
    context = info.context
    record = await context.chat.create_conversation(
        title=input.title, model_id=input.model_id, conversation_id=input.id
    )
    return CreateConversationPayload(conversation=_remember(context, record))


async def rename_conversation(
    info: strawberry.Info[Context], input: RenameConversationInput
) -> RenameConversationPayload:
    context = info.context
    record = await context.chat.update_conversation(
        conversation_id=input.id, title=input.title, expected_version=input.expected_version
    )
    return RenameConversationPayload(conversation=_remember(context, record))


async def update_conversation(
    info: strawberry.Info[Context], input: UpdateConversationInput
) -> UpdateConversationPayload:
    context = info.context
    record = await context.chat.update_conversation(
        conversation_id=input.id,
        title=UNSET if input.title is strawberry.UNSET else input.title,
        model_id=UNSET if input.model_id is strawberry.UNSET else input.model_id,
        expected_version=input.expected_version,
    )
    return UpdateConversationPayload(conversation=_remember(context, record))


async def delete_conversation(
    info: strawberry.Info[Context], input: DeleteConversationInput
) -> DeleteConversationPayload:
    context = info.context
    conversation_id = await context.chat.delete_conversation(conversation_id=input.id)
    context.loaders.conversation.prime(conversation_id, None, force=True)
    return DeleteConversationPayload(deleted_conversation_id=strawberry.ID(conversation_id))
