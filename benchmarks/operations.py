"""The DynamoDB work behind each screen, as plain storage calls: the direct floor runs these,
and the REST baseline wraps each in one endpoint.

They make the calls the GraphQL resolvers make (see graphql_api/gql/): the home screen is one
GSI Query plus the PROFILE GetItem for the total; opening a conversation is its BatchGetItem
(the conversation and its branch tree) and the messages Query at once; an add reads the
profile and the conversation, commits one TransactWriteItems, then re-reads the conversation
(for its new messageCount). Independent reads go out together, as a team writing
this by hand would send them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from graphql_api.storage import conversations, messages, threads
from graphql_api.storage.client import ChatTable
from graphql_api.storage.records import (
    ConversationPosition,
    ConversationRecord,
    MessagePosition,
    MessageRecord,
    NewMessage,
    Page,
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class HomeScreen:
    page: Page[ConversationRecord]
    total_count: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class OpenedConversation:
    conversation: ConversationRecord | None
    page: Page[MessageRecord]


@dataclasses.dataclass(frozen=True, kw_only=True)
class AddedMessages:
    messages: list[MessageRecord]
    conversation: ConversationRecord | None


async def home_screen(
    table: ChatTable, *, user_id: str, first: int, after: ConversationPosition | None = None
) -> HomeScreen:
    page, total = await asyncio.gather(
        conversations.list_conversations(table, user_id=user_id, limit=first, cursor=after),
        conversations.count_conversations(table, user_id=user_id),
    )
    return HomeScreen(page=page, total_count=total)


async def open_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    last: int,
    before: MessagePosition | None = None,
) -> OpenedConversation:
    # Storage filters messages on their owner, so reading both at once leaks nothing when the
    # conversation turns out not to be the caller's.
    window = threads.PathWindow(limit=last, forward=False, cursor=before)
    (thread,), guessed = await asyncio.gather(
        conversations.get_threads(table, user_id=user_id, conversation_ids=[conversation_id]),
        threads.first_guess(table, user_id=user_id, conversation_id=conversation_id, window=window),
    )
    if thread is None:
        return OpenedConversation(
            conversation=None, page=Page(items=[], has_previous=False, has_next=False)
        )
    page = await threads.read_page(
        table,
        user_id=user_id,
        conversation=thread.conversation,
        tree=thread.tree,
        window=window,
        guessed=guessed,
    )
    return OpenedConversation(conversation=thread.conversation, page=page)


async def add_messages(
    table: ChatTable, *, user_id: str, conversation_id: str, new: Sequence[NewMessage]
) -> AddedMessages:
    records = await messages.add_messages(
        table, user_id=user_id, conversation_id=conversation_id, messages=new
    )
    conversation = await conversations.get_conversation(
        table, user_id=user_id, conversation_id=conversation_id
    )
    return AddedMessages(messages=records, conversation=conversation)


async def rename_conversation(
    table: ChatTable,
    *,
    user_id: str,
    conversation_id: str,
    title: str,
    expected_version: int | None = None,
) -> ConversationRecord:
    return await conversations.update_conversation(
        table,
        user_id=user_id,
        conversation_id=conversation_id,
        title=title,
        expected_version=expected_version,
    )


async def delete_conversation(table: ChatTable, *, user_id: str, conversation_id: str) -> None:
    await conversations.delete_conversation(table, user_id=user_id, conversation_id=conversation_id)
