"""addMessage and addMessages: their payloads name both a conversation and its new messages."""

from __future__ import annotations

import strawberry

from graphql_api.context import Context
from graphql_api.storage.records import MessageRecord

from .conversations import Conversation
from .messages import AddMessageInput, AddMessagesInput, Message

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


def _added(context: Context, records: list[MessageRecord]) -> str:
    conversation_id = records[0].conversation_id
    # The add changed the conversation: a later read in this request must see it fresh.
    context.loaders.forget_conversation(conversation_id)
    return conversation_id


async def add_message(info: strawberry.Info[Context], input: AddMessageInput) -> AddMessagePayload:
    context = info.context
    record = await context.chat.add_message(
        conversation_id=input.conversation_id, message=input.draft()
    )
    return AddMessagePayload(
        message=Message.from_record(record), conversation_id=_added(context, [record])
    )


async def add_messages(
    info: strawberry.Info[Context], input: AddMessagesInput
) -> AddMessagesPayload:
    context = info.context
    records = await context.chat.add_messages(
        conversation_id=input.conversation_id,
        messages=[message.draft() for message in input.messages],
    )
    return AddMessagesPayload(
        messages=[Message.from_record(record) for record in records],
        conversation_id=_added(context, records),
    )
