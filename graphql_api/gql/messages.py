"""Message types, the messages connection, and the mutations that add messages."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, TypeAlias

import strawberry

from graphql_api.context import Context
from graphql_api.loaders import MessagePageKey
from graphql_api.storage import messages as store
from graphql_api.storage.records import MessageRecord, NewMessage, Page

from . import validation
from .errors import UserInputError
from .pagination import PageArgs, PageInfo, window

if TYPE_CHECKING:
    from .conversations import Conversation


@strawberry.enum
class MessageRole(enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@strawberry.type
class Message:
    id: strawberry.ID
    conversation_id: strawberry.ID
    role: MessageRole
    content: str
    created_at: datetime
    model_id: str | None
    is_error: bool
    error_message: str | None

    @classmethod
    def from_record(cls, record: MessageRecord) -> Message:
        return cls(
            id=strawberry.ID(record.id),
            conversation_id=strawberry.ID(record.conversation_id),
            role=MessageRole(record.role),
            content=record.content,
            created_at=record.created_at,
            model_id=record.model_id,
            is_error=record.is_error,
            error_message=record.error_message,
        )


@strawberry.type
class MessageEdge:
    cursor: str
    node: Message


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Messages in the whole conversation, not only on this page."
    )


def message_page_key(context: Context, conversation_id: str, args: PageArgs) -> MessagePageKey:
    """The loader key for a page; UserInputError when the arguments are invalid."""
    settings = context.settings
    chosen = window(
        args,
        default_forward=False,
        default_size=settings.default_page_size,
        max_size=settings.max_page_size,
        decode=lambda cursor: context.cursors.decode_message(conversation_id, cursor),
    )
    return MessagePageKey(
        conversation_id=conversation_id,
        limit=chosen.limit,
        forward=chosen.forward,
        cursor=chosen.cursor,
    )


def message_connection(
    context: Context, conversation_id: str, page: Page[MessageRecord], total_count: int
) -> MessageConnection:
    edges = [
        MessageEdge(
            cursor=context.cursors.message(conversation_id, record.position),
            node=Message.from_record(record),
        )
        for record in page.items
    ]
    return MessageConnection(
        edges=edges,
        page_info=PageInfo.of(
            [edge.cursor for edge in edges],
            has_previous=page.has_previous,
            has_next=page.has_next,
        ),
        total_count=total_count,
    )


# --- mutations ---------------------------------------------------------------------------


@strawberry.input
class MessageInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="A client-chosen UUID; retrying with it adds the message once."
    )
    role: MessageRole
    content: str
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None


@strawberry.input
class AddMessageInput:
    conversation_id: strawberry.ID
    id: strawberry.ID | None = strawberry.field(
        default=None, description="A client-chosen UUID; retrying with it adds the message once."
    )
    role: MessageRole
    content: str
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None


@strawberry.input
class AddMessagesInput:
    conversation_id: strawberry.ID
    messages: list[MessageInput]


def _new_message(
    given: MessageInput | AddMessageInput, context: Context, prefix: str = ""
) -> NewMessage:
    return NewMessage(
        id=None if given.id is None else validation.uuid_id(given.id, field=f"{prefix}id"),
        role=given.role.value,
        content=validation.content(
            given.content,
            max_bytes=context.settings.max_content_bytes,
            field=f"{prefix}content",
        ),
        model_id=validation.model_id(given.model_id, field=f"{prefix}modelId"),
        is_error=given.is_error,
        error_message=validation.error_message(given.error_message, field=f"{prefix}errorMessage"),
    )


# Conversation's module imports this one, so the payloads name it lazily.
LazyConversation: TypeAlias = Annotated[
    "Conversation", strawberry.lazy("graphql_api.gql.conversations")
]
_CONVERSATION_AFTER_ADD = (
    "The conversation after the add: its new updatedAt, messageCount and lastMessage."
)


async def _conversation_after_add(
    root: AddMessagePayload | AddMessagesPayload, info: strawberry.Info[Context]
) -> LazyConversation | None:
    from .conversations import Conversation

    # Read only if asked for; the add cleared the loader, so this is the state after it.
    # Null only if the conversation was deleted in between.
    record = await info.context.loaders.conversation.load(root.conversation_id)
    return None if record is None else Conversation.from_record(record)


@strawberry.type
class AddMessagePayload:
    message: Message
    conversation_id: strawberry.Private[str]
    conversation: LazyConversation | None = strawberry.field(
        resolver=_conversation_after_add, description=_CONVERSATION_AFTER_ADD
    )


@strawberry.type
class AddMessagesPayload:
    messages: list[Message]
    conversation_id: strawberry.Private[str]
    conversation: LazyConversation | None = strawberry.field(
        resolver=_conversation_after_add, description=_CONVERSATION_AFTER_ADD
    )


async def _add(
    context: Context, conversation_id: str, new: list[NewMessage]
) -> list[MessageRecord]:
    records = await store.add_messages(
        context.table, user_id=context.user_id, conversation_id=conversation_id, messages=new
    )
    # The add changed the conversation: a later read in this request must see it fresh.
    context.loaders.forget_conversation(conversation_id)
    return records


async def add_message(info: strawberry.Info[Context], input: AddMessageInput) -> AddMessagePayload:
    context = info.context
    conversation_id = validation.uuid_id(input.conversation_id, field="conversationId")
    (record,) = await _add(context, conversation_id, [_new_message(input, context)])
    return AddMessagePayload(message=Message.from_record(record), conversation_id=conversation_id)


async def add_messages(
    info: strawberry.Info[Context], input: AddMessagesInput
) -> AddMessagesPayload:
    context = info.context
    conversation_id = validation.uuid_id(input.conversation_id, field="conversationId")
    limit = context.settings.max_batch_messages
    if not input.messages:
        raise UserInputError("messages", "must not be empty")
    if len(input.messages) > limit:
        raise UserInputError("messages", f"must be at most {limit} messages")
    new = [
        _new_message(given, context, prefix=f"messages[{index}].")
        for index, given in enumerate(input.messages)
    ]
    records = await _add(context, conversation_id, new)
    return AddMessagesPayload(
        messages=[Message.from_record(record) for record in records],
        conversation_id=conversation_id,
    )
