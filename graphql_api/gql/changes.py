"""The change feed: what changed in the caller's data, for a device to catch up with."""

from __future__ import annotations

import enum

import strawberry

from graphql_api.context import Context
from graphql_api.storage.records import ChangeRecord

from .conversations import Conversation
from .messages import Message
from .projects import Project


@strawberry.enum
class ChangeKind(enum.Enum):
    CONVERSATION_CREATED = "CONVERSATION_CREATED"
    CONVERSATION_UPDATED = "CONVERSATION_UPDATED"
    CONVERSATION_DELETED = "CONVERSATION_DELETED"
    MESSAGES_ADDED = "MESSAGES_ADDED"
    MESSAGE_FINISHED = "MESSAGE_FINISHED"
    PROJECT_CREATED = "PROJECT_CREATED"
    PROJECT_UPDATED = "PROJECT_UPDATED"
    PROJECT_DELETED = "PROJECT_DELETED"


async def _conversation(root: Change, info: strawberry.Info[Context]) -> Conversation | None:
    if root.conversation_id is None:
        return None
    record = await info.context.loaders.conversation.load(str(root.conversation_id))
    return None if record is None else Conversation.from_record(record)


async def _project(root: Change, info: strawberry.Info[Context]) -> Project | None:
    if root.project_id is None:
        return None
    record = await info.context.loaders.project.load(str(root.project_id))
    return None if record is None else Project.from_record(record)


async def _messages(root: Change, info: strawberry.Info[Context]) -> list[Message]:
    loader = info.context.loaders.message
    found = await loader.load_many(
        [(str(root.conversation_id), position) for position in root.record.messages]
    )
    # A message of a conversation deleted since is gone with it.
    return [Message.from_record(record) for record in found if record is not None]


@strawberry.type
class Change:
    version: int = strawberry.field(
        description="Per user: 1, 2, 3, ... one per committed write, with no gaps."
    )
    kind: ChangeKind
    conversation_id: strawberry.ID | None = strawberry.field(
        description="The conversation a CONVERSATION_* or MESSAGES_ADDED change is about."
    )
    project_id: strawberry.ID | None = strawberry.field(
        description="The project a PROJECT_* change is about."
    )
    record: strawberry.Private[ChangeRecord]
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation, description="The conversation as it is now; null once deleted."
    )
    project: Project | None = strawberry.field(
        resolver=_project, description="The project as it is now; null once deleted."
    )
    messages: list[Message] = strawberry.field(
        resolver=_messages,
        description=(
            "What this change added: the messages of an addMessage/addMessages, in order (or "
            "of one part of an importConversations), or the message a startMessage started; "
            "for a MESSAGE_FINISHED, the message finishMessage ended; for a "
            "CONVERSATION_UPDATED that rated a message, that message; empty otherwise. Deltas "
            "appended to a streaming message are not changes."
        ),
    )
    sync_token: str = strawberry.field(description="Resume from just after this change.")

    @classmethod
    def from_record(cls, record: ChangeRecord, *, sync_token: str) -> Change:
        return cls(
            version=record.version,
            kind=ChangeKind(record.kind),
            conversation_id=_id(record.conversation_id),
            project_id=_id(record.project_id),
            record=record,
            sync_token=sync_token,
        )


def _id(value: str | None) -> strawberry.ID | None:
    return None if value is None else strawberry.ID(value)


@strawberry.type
class ChangeFeed:
    changes: list[Change]
    sync_token: str = strawberry.field(
        description="Pass as `since` next time, also when `changes` is empty."
    )
    has_more: bool
    resync_required: bool = strawberry.field(
        description=(
            "`since` is older than the retained history: reload with conversations(), then "
            "sync from syncToken."
        )
    )


async def changes(
    info: strawberry.Info[Context], since: str | None = None, first: int | None = 100
) -> ChangeFeed:
    """Changes to the caller's data after `since`, oldest first. Without `since`: no changes,
    only the current syncToken."""
    chat = info.context.chat
    feed = await chat.changes(since=since, first=100 if first is None else first)
    return ChangeFeed(
        changes=[
            Change.from_record(record, sync_token=chat.sync_token(record.version))
            for record in feed.changes
        ],
        sync_token=feed.sync_token,
        has_more=feed.has_more,
        resync_required=feed.resync_required,
    )
