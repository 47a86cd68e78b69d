"""Per-request DataLoaders. Never share one between requests: its cache is one caller's data."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from strawberry.dataloader import DataLoader, DefaultCache

from graphql_api.domain.chat import UserChat
from graphql_api.domain.paging import Window
from graphql_api.storage.conversations import ConversationFilter, Thread
from graphql_api.storage.records import (
    ConversationPosition,
    ConversationRecord,
    Item,
    MessagePosition,
    MessageRecord,
    Page,
    ProjectRecord,
    ShareLinkRecord,
)
from graphql_api.storage.threads import PathWindow

# BatchGetItem's limit: one request per batch, however many conversations a query names.
CONVERSATION_BATCH_SIZE = 100
# A thread is two items (the conversation and its tree).
THREAD_BATCH_SIZE = CONVERSATION_BATCH_SIZE // 2


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessagePageKey:
    """One page of one conversation's messages."""

    conversation_id: str
    window: PathWindow


MessageKey = tuple[str, MessagePosition]
Node = ConversationRecord | ProjectRecord | ShareLinkRecord


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConversationPageKey:
    """One page of one conversation list (a project's: project(id) starts it early)."""

    where: ConversationFilter
    window: Window[ConversationPosition]


class _ListedToo(DefaultCache[str, ConversationRecord | None]):
    """The conversation loader's cache, which also holds the conversations a listing read,
    each made a loaded value only when the request reads it again: a page lists 20 and a
    request seldom reads one of them a second time, so a future for each cost more than
    signing the page's cursors."""

    def __init__(self) -> None:
        super().__init__()
        self.listed: dict[str, ConversationRecord] = {}

    def get(self, key: str) -> asyncio.Future[ConversationRecord | None] | None:
        future = self.cache_map.get(key)
        if future is None and key in self.listed:
            future = asyncio.get_running_loop().create_future()
            future.set_result(self.listed.pop(key))
            self.cache_map[key] = future
        return future

    def delete(self, key: str) -> None:
        if self.listed.pop(key, None) is None or key in self.cache_map:
            super().delete(key)

    def clear(self) -> None:
        self.listed.clear()
        super().clear()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Loaders:
    conversation: DataLoader[str, ConversationRecord | None]
    thread: DataLoader[str, Thread | None]
    message_page: DataLoader[MessagePageKey, Page[MessageRecord]]
    # Messages named by (conversation id, position), as changes name them.
    message: DataLoader[MessageKey, MessageRecord | None]
    # Conversations, projects and share links by id, whichever each is (node, nodes, project).
    node: DataLoader[str, Node | None]
    project: DataLoader[str, ProjectRecord | None]
    conversation_page: DataLoader[ConversationPageKey, Page[ConversationRecord]]
    # Each conversation's share links, by conversation id.
    share_links: DataLoader[str, list[ShareLinkRecord]]
    # What a listing read, for the conversation loader (see _ListedToo).
    _listed: dict[str, ConversationRecord] = dataclasses.field(default_factory=dict)

    def forget_conversation(self, conversation_id: str) -> None:
        """Make the next load read the conversation afresh (DataLoader.clear needs a hit)."""
        loaders: tuple[DataLoader[str, Any], ...] = (self.conversation, self.thread, self.node)
        for loader in loaders:
            if loader.cache_map.get(conversation_id) is not None:
                loader.clear(conversation_id)

    def remember(self, record: ConversationRecord) -> None:
        """A conversation this request wrote: later reads of it need no request."""
        self.conversation.prime(record.id, record, force=True)

    def forget_share_links(self, conversation_id: str | None) -> None:
        """Make the next read of a conversation's links (None: of every one's) fresh."""
        if conversation_id is None:
            self.share_links.clear_all()
        elif self.share_links.cache_map.get(conversation_id) is not None:
            self.share_links.clear(conversation_id)

    def listed(self, records: Iterable[ConversationRecord]) -> None:
        """Conversations this request listed: a later read of one needs no request (a read
        already made or under way keeps its own answer, as DataLoader.prime would)."""
        for record in records:
            self._listed[record.id] = record

    def forget_project(self, project_id: str) -> None:
        loaders: tuple[DataLoader[str, Any], ...] = (self.project, self.node)
        for loader in loaders:
            if loader.cache_map.get(project_id) is not None:
                loader.clear(project_id)

    def remember_project(self, record: ProjectRecord | None, project_id: str) -> None:
        """A project this request wrote, listed or deleted (None): read from memory next."""
        self.project.prime(project_id, record, force=True)
        self.node.prime(project_id, record, force=True)


def build_loaders(chat: UserChat) -> Loaders:
    async def load_conversations(ids: list[str]) -> list[ConversationRecord | None]:
        return await chat.get_conversations(ids)

    cache = _ListedToo()
    conversation = DataLoader(
        load_conversations, max_batch_size=CONVERSATION_BATCH_SIZE, cache_map=cache
    )

    async def load_threads(ids: list[str]) -> list[Thread | None]:
        threads = await chat.get_threads(ids, known=_loaded(conversation, ids))
        for found in threads:
            if found is not None:
                conversation.prime(found.conversation.id, found.conversation)
        return threads

    thread = DataLoader(load_threads, max_batch_size=THREAD_BATCH_SIZE)

    async def load_page(key: MessagePageKey) -> Page[MessageRecord]:
        # The page's likely messages and the conversation go out together: opening a
        # conversation is one wave of requests, not two.
        guess = asyncio.ensure_future(chat.guess_message_page(key.conversation_id, key.window))
        try:
            found = await thread.load(key.conversation_id)
        except BaseException:
            _discard(guess)
            raise
        if found is None:
            _discard(guess)
            return Page(items=[], has_previous=False, has_next=False)
        guessed: Sequence[Item] = await guess
        return await chat.read_message_page(found, key.window, guessed)

    async def load_message_pages(
        keys: list[MessagePageKey],
    ) -> Sequence[Page[MessageRecord] | BaseException]:
        # Pages of different conversations are independent: all in flight at once, and one
        # failing fails only its own field.
        return await asyncio.gather(*(load_page(key) for key in keys), return_exceptions=True)

    async def load_messages(keys: list[MessageKey]) -> list[MessageRecord | None]:
        found = await chat.messages_of(keys)
        return [
            found.get((conversation_id, position.message_id)) for conversation_id, position in keys
        ]

    async def load_nodes(ids: list[str]) -> list[Node | None]:
        found = await chat.get_nodes(ids)
        for node_id, record in zip(ids, found, strict=True):
            if isinstance(record, ConversationRecord):
                conversation.prime(node_id, record)
        return found

    node = DataLoader(load_nodes, max_batch_size=CONVERSATION_BATCH_SIZE)

    async def load_projects(ids: list[str]) -> list[ProjectRecord | None]:
        # Through the node loader: a project and a node named in one request are one read.
        found = await node.load_many(ids)
        return [record if isinstance(record, ProjectRecord) else None for record in found]

    async def load_conversation_pages(
        keys: list[ConversationPageKey],
    ) -> Sequence[Page[ConversationRecord] | BaseException]:
        return await asyncio.gather(
            *(chat.list_conversations(key.window, key.where) for key in keys),
            return_exceptions=True,
        )

    async def load_share_links(ids: list[str]) -> list[list[ShareLinkRecord]]:
        return await chat.share_links_of(ids)

    return Loaders(
        share_links=DataLoader(load_share_links, max_batch_size=CONVERSATION_BATCH_SIZE),
        conversation=conversation,
        thread=thread,
        message_page=DataLoader(load_message_pages),
        message=DataLoader(load_messages, max_batch_size=CONVERSATION_BATCH_SIZE),
        node=node,
        project=DataLoader(load_projects, max_batch_size=CONVERSATION_BATCH_SIZE),
        conversation_page=DataLoader(load_conversation_pages),
        _listed=cache.listed,
    )


def _loaded(
    loader: DataLoader[str, ConversationRecord | None], ids: list[str]
) -> dict[str, ConversationRecord]:
    """The conversations of `ids` this request has already read (listed or written)."""
    known = {}
    for conversation_id in ids:
        future = loader.cache_map.get(conversation_id)
        if future is None or not future.done() or future.cancelled() or future.exception():
            continue
        record = future.result()
        if record is not None:
            known[conversation_id] = record
    return known


def _discard(pending: asyncio.Future[list[Item]]) -> None:
    """Drop a read nobody will use, without an unretrieved-exception warning."""
    pending.cancel()
    pending.add_done_callback(lambda done: done.cancelled() or done.exception())
