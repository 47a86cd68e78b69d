"""The mutations on messages: their payloads name both a conversation and its messages.

A streamed answer is three of them: startMessage, then appendMessage per delta as the
model produces it, then finishMessage (also how a user's stop is saved).
"""

from __future__ import annotations

import enum

import strawberry

from graphql_api.context import Context
from graphql_api.domain.chat import FinishDraft, StartDraft
from graphql_api.storage.messages import Added

from .conversations import Conversation
from .messages import AddMessageInput, AddMessagesInput, Message, MessageRole, Rating

_CONVERSATION_AFTER_ADD = (
    "The conversation after the add: its new updatedAt, messageCount and lastMessage."
)


async def _conversation_after_add(
    root: AddMessagePayload | AddMessagesPayload | StartMessagePayload | FinishMessagePayload,
    info: strawberry.Info[Context],
) -> Conversation | None:
    # Read only if asked for; the add cleared the loader, so this is the state after it.
    # Null only if the conversation was deleted in between.
    record = await info.context.loaders.conversation.load(root.conversation_id)
    return None if record is None else Conversation.from_record(record)


@strawberry.type
class AddMessagePayload:
    message: Message
    conversation_id: strawberry.Private[str]
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation_after_add, description=_CONVERSATION_AFTER_ADD
    )


@strawberry.type
class AddMessagesPayload:
    messages: list[Message]
    conversation_id: strawberry.Private[str]
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation_after_add, description=_CONVERSATION_AFTER_ADD
    )


def _added(context: Context, added: Added) -> str:
    conversation_id = added.messages[0].conversation_id
    # The add changed the conversation: a later read in this request sees it as it is now,
    # with no request when the add says what that is.
    context.loaders.forget_conversation(conversation_id)
    if added.conversation is not None:
        context.loaders.remember(added.conversation)
    return conversation_id


async def add_message(info: strawberry.Info[Context], input: AddMessageInput) -> AddMessagePayload:
    context = info.context
    added = await context.chat.add_message(
        conversation_id=input.conversation_id, message=input.draft()
    )
    (record,) = added.messages
    return AddMessagePayload(
        message=Message.from_record(record), conversation_id=_added(context, added)
    )


async def add_messages(
    info: strawberry.Info[Context], input: AddMessagesInput
) -> AddMessagesPayload:
    context = info.context
    added = await context.chat.add_messages(
        conversation_id=input.conversation_id,
        messages=[message.draft() for message in input.messages],
    )
    return AddMessagesPayload(
        messages=[Message.from_record(record) for record in added.messages],
        conversation_id=_added(context, added),
    )


@strawberry.input
class SetActiveBranchInput:
    conversation_id: strawberry.ID
    leaf_id: strawberry.ID = strawberry.field(
        description=(
            "Any message of the branch to show: the newest message under it (the newest "
            "child at every fork) becomes the active leaf."
        )
    )


@strawberry.type
class SetActiveBranchPayload:
    conversation: Conversation


async def set_active_branch(
    info: strawberry.Info[Context], input: SetActiveBranchInput
) -> SetActiveBranchPayload:
    context = info.context
    record = await context.chat.set_active_branch(
        conversation_id=input.conversation_id, leaf_id=input.leaf_id
    )
    context.loaders.forget_conversation(record.id)
    context.loaders.remember(record)
    return SetActiveBranchPayload(conversation=Conversation.from_record(record))


@strawberry.input
class SetMessageFeedbackInput:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    rating: Rating | None = None
    comment: str | None = strawberry.field(
        default=None, description="At most 4 KB. No rating and no comment clears the feedback."
    )


@strawberry.type
class SetMessageFeedbackPayload:
    message: Message


async def set_message_feedback(
    info: strawberry.Info[Context], input: SetMessageFeedbackInput
) -> SetMessageFeedbackPayload:
    context = info.context
    record = await context.chat.set_message_feedback(
        conversation_id=input.conversation_id,
        message_id=input.message_id,
        rating=None if input.rating is None else input.rating.value,
        comment=input.comment,
    )
    context.loaders.forget_conversation(record.conversation_id)
    return SetMessageFeedbackPayload(message=Message.from_record(record))


# --- streamed messages ---------------------------------------------------------------------


@strawberry.input
class StartMessageInput:
    conversation_id: strawberry.ID
    id: strawberry.ID | None = strawberry.field(
        default=None,
        description="A client-chosen UUID; retrying with it starts the message once.",
    )
    parent_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "As addMessage: omitted, after the newest message of the active branch; an "
            "earlier message, a new branch there (a regenerate)."
        ),
    )
    role: MessageRole = MessageRole.ASSISTANT
    model_id: str | None = None

    def draft(self) -> StartDraft:
        return StartDraft(
            id=self.id, parent_id=self.parent_id, role=self.role.value, model_id=self.model_id
        )


@strawberry.type
class StartMessagePayload:
    message: Message = strawberry.field(
        description="STREAMING, its content empty (or, for a retry, what is stored so far)."
    )
    conversation_id: strawberry.Private[str]
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation_after_add, description=_CONVERSATION_AFTER_ADD
    )


async def start_message(
    info: strawberry.Info[Context], input: StartMessageInput
) -> StartMessagePayload:
    context = info.context
    added = await context.chat.start_message(
        conversation_id=input.conversation_id, draft=input.draft()
    )
    (record,) = added.messages
    return StartMessagePayload(
        message=Message.from_record(record), conversation_id=_added(context, added)
    )


@strawberry.input
class AppendMessageInput:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    seq: int = strawberry.field(
        description=(
            "1, 2, 3, ... per message. Send seq N + 1 once N is acknowledged. A stored seq "
            "sent again changes nothing and is answered as the first time; a seq past the next "
            "is CONFLICT with extensions.expectedSeq."
        )
    )
    delta: str = strawberry.field(
        description="The text to add: not empty, at most MAX_DELTA_BYTES (64 KiB) of UTF-8."
    )


@strawberry.type
class AppendMessagePayload:
    message_id: strawberry.ID
    seq: int = strawberry.field(
        description="The seq stored: with appends sent in order, the highest contiguous one."
    )
    length: int = strawberry.field(
        description="Characters (Unicode code points) of the message's text up to this seq."
    )


async def append_message(
    info: strawberry.Info[Context], input: AppendMessageInput
) -> AppendMessagePayload:
    appended = await info.context.chat.append_message(
        conversation_id=input.conversation_id,
        message_id=input.message_id,
        seq=input.seq,
        delta=input.delta,
    )
    return AppendMessagePayload(
        message_id=strawberry.ID(appended.message_id), seq=appended.seq, length=appended.length
    )


@strawberry.enum(description="How a stream ends. A user's stop is STOPPED.")
class FinishStatus(enum.Enum):
    COMPLETE = "complete"
    STOPPED = "stopped"
    FAILED = "failed"


@strawberry.input
class FinishMessageInput:
    conversation_id: strawberry.ID
    message_id: strawberry.ID
    status: FinishStatus
    last_seq: int = strawberry.field(
        description=(
            "The last seq sent (0 for none). Every acknowledged delta is kept; a lastSeq past "
            "the stored deltas is CONFLICT with extensions.expectedSeq, unless content is given."
        )
    )
    content: str | None = strawberry.field(
        default=None,
        description=(
            "The full final text, the client's final word: it replaces the stored deltas."
        ),
    )
    error_message: str | None = strawberry.field(
        default=None, description="Only with FAILED, which also sets isError."
    )

    def draft(self) -> FinishDraft:
        return FinishDraft(
            status=self.status.value,
            last_seq=self.last_seq,
            content=self.content,
            error_message=self.error_message,
        )


@strawberry.type
class FinishMessagePayload:
    message: Message
    conversation_id: strawberry.Private[str]
    conversation: Conversation | None = strawberry.field(
        resolver=_conversation_after_add,
        description="The conversation after the finish: its new version, updatedAt and preview.",
    )


async def finish_message(
    info: strawberry.Info[Context], input: FinishMessageInput
) -> FinishMessagePayload:
    context = info.context
    finished = await context.chat.finish_message(
        conversation_id=input.conversation_id, message_id=input.message_id, draft=input.draft()
    )
    record = finished.message
    context.loaders.forget_conversation(record.conversation_id)
    if finished.conversation is not None:
        context.loaders.remember(finished.conversation)
    return FinishMessagePayload(
        message=Message.from_record(record), conversation_id=record.conversation_id
    )
