"""Message types, the messages connection, and the message inputs."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry

from graphql_api.context import Context
from graphql_api.domain.chat import MessageDraft
from graphql_api.storage.records import Feedback as FeedbackRecord
from graphql_api.storage.records import MessageRecord, Page, Tree

from .pagination import PageInfo, edge_cursors
from .views import reads_record, record_of


@strawberry.enum
class MessageRole(enum.Enum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"


@strawberry.enum(
    description=(
        "Where a message is in its life. COMPLETE: added whole, or streamed and finished. "
        "STREAMING: appendMessage is adding to it. INTERRUPTED: streaming, but no append came "
        "for STREAM_LEASE_SECONDS (a dropped connection, a crashed app): the text is kept, and "
        "a late appendMessage or finishMessage goes on. STOPPED, FAILED: as finishMessage "
        "ended it."
    )
)
class MessageStatus(enum.Enum):
    COMPLETE = "complete"
    STREAMING = "streaming"
    STOPPED = "stopped"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


@strawberry.enum
class Rating(enum.Enum):
    UP = "up"
    DOWN = "down"


@reads_record(
    FeedbackRecord, rating=lambda record: None if record.rating is None else Rating(record.rating)
)
@strawberry.type
class Feedback:
    rating: Rating | None
    comment: str | None
    updated_at: datetime

    @classmethod
    def from_record(cls, record: FeedbackRecord) -> Feedback:
        return cls(
            rating=None if record.rating is None else Rating(record.rating),
            comment=record.comment,
            updated_at=record.updated_at,
        )


async def _sibling_ids(root: Message, info: strawberry.Info[Context]) -> list[strawberry.ID]:
    siblings = root.siblings
    if siblings is None:
        thread = await info.context.loaders.thread.load(str(root.conversation_id))
        tree = Tree() if thread is None else thread.tree
        siblings = tree.siblings(root.record)
    return [strawberry.ID(sibling) for sibling in siblings]


@reads_record(
    MessageRecord,
    role=lambda record: MessageRole(record.role),
    status=lambda record: MessageStatus(record.status),
)
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
    parent_id: strawberry.ID | None = strawberry.field(
        description="The message this one answers or follows; null for the first."
    )
    feedback: Feedback | None
    status: MessageStatus = strawberry.field(
        description=(
            "COMPLETE for every message not streamed. While STREAMING or INTERRUPTED, `content` "
            "is the text up to the last acknowledged delta."
        )
    )
    stream_seq: int | None = strawberry.field(
        description=(
            "While STREAMING or INTERRUPTED: the last acknowledged seq (0 before the first "
            "delta); null otherwise."
        )
    )
    record: strawberry.Private[MessageRecord]
    # Known when the message was read with its conversation's tree.
    siblings: strawberry.Private[tuple[str, ...] | None] = None
    sibling_ids: list[strawberry.ID] = strawberry.field(
        resolver=_sibling_ids,
        description=(
            "This message and its alternatives (same parent), oldest first; [id] when there "
            "are none."
        ),
    )

    @classmethod
    def from_record(cls, record: MessageRecord, *, tree: Tree | None = None) -> Message:
        return cls(
            id=strawberry.ID(record.id),
            conversation_id=strawberry.ID(record.conversation_id),
            role=MessageRole(record.role),
            content=record.content,
            created_at=record.created_at,
            model_id=record.model_id,
            is_error=record.is_error,
            error_message=record.error_message,
            parent_id=None if record.parent_id is None else strawberry.ID(record.parent_id),
            feedback=None if record.feedback is None else Feedback.from_record(record.feedback),
            status=MessageStatus(record.status),
            stream_seq=record.stream_seq,
            record=record,
            siblings=None if tree is None else tree.siblings(record),
        )


def _message_node(root: MessageEdge) -> Message:
    return Message.from_record(root.record, tree=root.tree)


@strawberry.type
class MessageEdge:
    cursor: str
    record: strawberry.Private[MessageRecord]
    tree: strawberry.Private[Tree | None] = None
    # Built only when asked: a planned page reads its fields from the record (views.py).
    node: Message = strawberry.field(resolver=_message_node, metadata=record_of("record"))


@strawberry.type
class MessageConnection:
    edges: list[MessageEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(
        description="Messages in the whole conversation, every branch, not only on this page."
    )


def message_connection(
    context: Context,
    conversation_id: str,
    page: Page[MessageRecord],
    total_count: int,
    tree: Tree,
    *,
    every_edge_cursor: bool,
) -> MessageConnection:
    codec = context.chat.cursors
    cursors = edge_cursors(
        page.items,
        lambda record: codec.message_of(conversation_id, record),
        every_edge=every_edge_cursor,
    )
    edges = [
        MessageEdge(cursor=cursor, record=record, tree=tree)
        for cursor, record in zip(cursors, page.items, strict=True)
    ]
    return MessageConnection(
        edges=edges,
        page_info=PageInfo.of(cursors, has_previous=page.has_previous, has_next=page.has_next),
        total_count=total_count,
    )


# --- inputs --------------------------------------------------------------------------------

_MESSAGE_ID = "A client-chosen UUID; retrying with it adds the message once."
_PARENT_ID = (
    "The message this one follows. Omitted: the newest message of the active branch. An "
    "earlier message: a new branch there (an edit or a regenerate), which becomes active."
)


@strawberry.input
class MessageInput:
    id: strawberry.ID | None = strawberry.field(default=None, description=_MESSAGE_ID)
    role: MessageRole
    content: str
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    parent_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=_PARENT_ID + " Only the first message's counts; the others follow it.",
    )

    def draft(self) -> MessageDraft:
        return MessageDraft(
            id=self.id,
            role=self.role.value,
            content=self.content,
            model_id=self.model_id,
            is_error=self.is_error,
            error_message=self.error_message,
            parent_id=self.parent_id,
        )


@strawberry.input
class AddMessageInput:
    conversation_id: strawberry.ID
    id: strawberry.ID | None = strawberry.field(default=None, description=_MESSAGE_ID)
    role: MessageRole
    content: str
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    parent_id: strawberry.ID | None = strawberry.field(default=None, description=_PARENT_ID)

    def draft(self) -> MessageDraft:
        return MessageDraft(
            id=self.id,
            role=self.role.value,
            content=self.content,
            model_id=self.model_id,
            is_error=self.is_error,
            error_message=self.error_message,
            parent_id=self.parent_id,
        )


@strawberry.input
class AddMessagesInput:
    conversation_id: strawberry.ID
    messages: list[MessageInput]
