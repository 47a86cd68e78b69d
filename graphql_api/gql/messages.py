"""Message types, the messages connection, and the message inputs."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from graphql_api.context import Context
from graphql_api.domain.chat import MessageDraft
from graphql_api.domain.paging import PageArgs
from graphql_api.loaders import MessagePageKey
from graphql_api.storage.records import MessageRecord, Page

from .pagination import PageInfo


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
    """The loader key for a page; ValidationError when the arguments are invalid."""
    return MessagePageKey(
        conversation_id=conversation_id,
        window=context.chat.message_window(conversation_id, args),
    )


def message_connection(
    context: Context, conversation_id: str, page: Page[MessageRecord], total_count: int
) -> MessageConnection:
    cursors = context.chat.cursors
    edges = [
        MessageEdge(
            cursor=cursors.message(conversation_id, record.position),
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


# --- inputs --------------------------------------------------------------------------------


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

    def draft(self) -> MessageDraft:
        return MessageDraft(
            id=self.id,
            role=self.role.value,
            content=self.content,
            model_id=self.model_id,
            is_error=self.is_error,
            error_message=self.error_message,
        )


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

    def draft(self) -> MessageDraft:
        return MessageDraft(
            id=self.id,
            role=self.role.value,
            content=self.content,
            model_id=self.model_id,
            is_error=self.is_error,
            error_message=self.error_message,
        )


@strawberry.input
class AddMessagesInput:
    conversation_id: strawberry.ID
    messages: list[MessageInput]
