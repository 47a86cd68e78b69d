"""Bringing history in and taking everything out: importConversations and deleteAllMyData."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graphql_api.context import Context
from graphql_api.domain import rules
from graphql_api.domain.imports import ImportConversationDraft, ImportMessageDraft
from graphql_api.storage.records import UNSET

from .conversations import Conversation
from .messages import MessageRole, MessageStatus

IMPORT_BOUND = (
    f"At most {rules.IMPORT_MAX_CONVERSATIONS} conversations, {rules.IMPORT_MAX_MESSAGES} "
    f"messages and {rules.IMPORT_MAX_BYTES // 1024} KiB of message content per call (a "
    "larger message goes alone); import a larger conversation in parts, in order, with the "
    "same ids."
)


@strawberry.input
class ImportMessageInput:
    id: strawberry.ID
    # UNSET, not None: an omitted parentId (a flat list) and an explicit null mean different
    # things.
    parent_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "The message this one follows: stored already, or earlier in this call. Null: a "
            "first message (beside the conversation's first message, if it has one). "
            "Omitted: the message before this one in `messages`; for the first of "
            "`messages`, the conversation's active leaf, as addMessage continues (a first "
            "message in a conversation without messages). So a flat list imports as one "
            "thread, in order, and the next call's list continues it."
        ),
    )
    role: MessageRole
    content: str
    created_at: datetime = strawberry.field(
        description="Kept as given; moved to 1 µs after the parent's when not later than it."
    )
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    status: MessageStatus = strawberry.field(
        default=MessageStatus.COMPLETE,
        description=(
            "A STREAMING or INTERRUPTED message is stored as interrupted, its content the text "
            "so far: it reads INTERRUPTED once STREAM_LEASE_SECONDS have passed since its "
            "createdAt, and appendMessage or finishMessage goes on from it. Content may be "
            "empty unless COMPLETE."
        ),
    )

    def draft(self) -> ImportMessageDraft:
        return ImportMessageDraft(
            id=self.id,
            parent_id=UNSET if self.parent_id is strawberry.UNSET else self.parent_id,
            role=self.role.value,
            content=self.content,
            created_at=self.created_at,
            model_id=self.model_id,
            is_error=self.is_error,
            error_message=self.error_message,
            status=self.status.value,
        )


@strawberry.input
class ImportConversationInput:
    id: strawberry.ID
    title: str
    model_id: str | None = None
    created_at: datetime
    updated_at: datetime | None = strawberry.field(
        default=None,
        description=(
            "Orders the conversation list as it did on the device. Default: the newest "
            "message's createdAt. Never moves an existing conversation back."
        ),
    )
    messages: list[ImportMessageInput] = strawberry.field(
        description=(
            "Every parent before its children; messages stored already are skipped. Without "
            "parentId, each message follows the one before it."
        )
    )
    active_leaf_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The newest message of the branch the user was on. Default: the last message "
            "imported. Followed down its newest children, as setActiveBranch does."
        ),
    )
    project_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "The caller's project it goes in when this call creates it (else NOT_FOUND); a "
            "conversation stored already stays where it is."
        ),
    )

    def draft(self) -> ImportConversationDraft:
        return ImportConversationDraft(
            id=self.id,
            title=self.title,
            model_id=self.model_id,
            created_at=self.created_at,
            updated_at=self.updated_at,
            messages=[message.draft() for message in self.messages],
            active_leaf_id=self.active_leaf_id,
            project_id=self.project_id,
        )


@strawberry.input(description=IMPORT_BOUND)
class ImportConversationsInput:
    conversations: list[ImportConversationInput]


@strawberry.type
class ImportConversationsPayload:
    conversations: list[Conversation] = strawberry.field(
        description="Each imported conversation as it is now, in the order given."
    )


@strawberry.type
class DeleteAllMyDataPayload:
    done: bool = strawberry.field(
        description=(
            "Everything is deleted: no conversation, project, message or change of yours is left."
        )
    )
    conversations_remaining: int = strawberry.field(
        description="Conversations not deleted yet; call again until done."
    )


async def import_conversations(
    info: strawberry.Info[Context], input: ImportConversationsInput
) -> ImportConversationsPayload:
    context = info.context
    imported = await context.chat.import_conversations(
        [conversation.draft() for conversation in input.conversations]
    )
    for outcome in imported:
        context.loaders.forget_conversation(outcome.conversation.id)
        context.loaders.remember(outcome.conversation)
    return ImportConversationsPayload(
        conversations=[Conversation.from_record(outcome.conversation) for outcome in imported]
    )


async def delete_all_my_data(info: strawberry.Info[Context]) -> DeleteAllMyDataPayload:
    erased = await info.context.chat.delete_all_data()
    return DeleteAllMyDataPayload(
        done=erased.done, conversations_remaining=erased.conversations_remaining
    )
