"""The mutations on messages: their payloads name both a conversation and its messages."""

from __future__ import annotations

import strawberry

from graphql_api.context import Context
from graphql_api.storage.messages import Added

from .conversations import Conversation
from .messages import AddMessageInput, AddMessagesInput, Message, Rating

_CONVERSATION_AFTER_ADD = (
    "The conversation after the add: its new updatedAt, messageCount and lastMessage."
)


async def _conversation_after_add(
    root: AddMessagePayload | AddMessagesPayload, info: strawberry.Info[Context]
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
