"""Per-request DataLoaders. Never share one between requests: its cache is one caller's data."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from strawberry.dataloader import DataLoader

from graphql_api.domain.chat import UserChat
from graphql_api.domain.paging import Window
from graphql_api.storage.records import ConversationRecord, MessagePosition, MessageRecord, Page

# BatchGetItem's limit: one request per batch, however many conversations a query names.
CONVERSATION_BATCH_SIZE = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessagePageKey:
    """One page of one conversation's messages."""

    conversation_id: str
    window: Window[MessagePosition]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Loaders:
    conversation: DataLoader[str, ConversationRecord | None]
    message_page: DataLoader[MessagePageKey, Page[MessageRecord]]

    def forget_conversation(self, conversation_id: str) -> None:
        """Make the next load read the conversation afresh (DataLoader.clear needs a hit)."""
        if self.conversation.cache_map.get(conversation_id) is not None:
            self.conversation.clear(conversation_id)


def build_loaders(chat: UserChat) -> Loaders:
    async def load_conversations(ids: list[str]) -> list[ConversationRecord | None]:
        return await chat.get_conversations(ids)

    async def load_message_pages(
        keys: list[MessagePageKey],
    ) -> Sequence[Page[MessageRecord] | BaseException]:
        # Pages of different conversations are independent queries: all in flight at once,
        # and one failing fails only its own field.
        return await asyncio.gather(
            *(chat.list_messages(key.conversation_id, key.window) for key in keys),
            return_exceptions=True,
        )

    return Loaders(
        conversation=DataLoader(load_conversations, max_batch_size=CONVERSATION_BATCH_SIZE),
        message_page=DataLoader(load_message_pages),
    )
