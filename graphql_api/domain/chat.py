"""The operations every transport offers, on one user's data, with the input rules applied.

`Chat` is built once per process; `Chat.for_user` gives the `UserChat` a request works with.
A UserChat is bound to the authenticated caller, so no operation can be pointed at another
user's data by what a request says. Transports (GraphQL, REST, the CLI) turn their own input
into these calls and the records back into their own output; none of them repeats a rule.
Every write is logged as one change and told to the caller's live subscribers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

from graphql_api.errors import ChatError, NotFoundError, ProjectNotFoundError, ValidationError
from graphql_api.settings import InputLimits, StreamingSettings
from graphql_api.storage import changes as change_store
from graphql_api.storage import content as content_store
from graphql_api.storage import conversations as conversation_store
from graphql_api.storage import deltas, erasure, exports, threads
from graphql_api.storage import imports as import_store
from graphql_api.storage import messages as message_store
from graphql_api.storage import projects as project_store
from graphql_api.storage import shares as share_store
from graphql_api.storage import streams as stream_store
from graphql_api.storage.changes import ChangePage
from graphql_api.storage.client import ChatTable
from graphql_api.storage.conversations import ConversationFilter, Moved, Thread
from graphql_api.storage.erasure import Erasure
from graphql_api.storage.imports import ConversationImport, Imported, MessageImport
from graphql_api.storage.messages import Added
from graphql_api.storage.projects import ProjectDeletion
from graphql_api.storage.records import (
    UNSET,
    ConversationPosition,
    ConversationRecord,
    Item,
    MessagePosition,
    MessageRecord,
    NewMessage,
    Page,
    ProjectPosition,
    ProjectRecord,
    SharedConversation,
    ShareLinkPosition,
    ShareLinkRecord,
    Unset,
)
from graphql_api.storage.streams import Appended, Ending, Finished, StreamTip

from . import imports, rules
from .cursors import NO_PROJECT, CursorCodec, CursorError, SyncPosition
from .imports import ImportConversationDraft, ImportProjectDraft
from .paging import PageArgs, Window, window
from .streams import StreamCache
from .sync import ChangeFeed

# A feed page's messages are read in one BatchGetItem.
FEED_MESSAGES_PER_PAGE = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageDraft:
    """A message as a client sends it, before the rules have looked at it."""

    role: str
    content: str
    id: str | None = None
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    parent_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class StartDraft:
    """A streamed message as a client starts it: no text yet."""

    role: str = "assistant"
    id: str | None = None
    model_id: str | None = None
    parent_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class FinishDraft:
    """How a client ends a stream, before the rules have looked at it."""

    status: str
    last_seq: int
    content: str | None = None
    error_message: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ListFilter:
    """A conversation list's filter as a client sends it."""

    archived: bool = False
    pinned: bool | None = None
    tag: str | None = None
    title_contains: str | None = None
    project_id: str | None = None
    in_project: bool | None = None


def list_group(where: ConversationFilter) -> str | None:
    """Which GSI2 list a filter reads, as cursors name it: a project id, NO_PROJECT, or None
    for the home list and the archive."""
    if where.project_id is not None:
        return where.project_id
    return NO_PROJECT if where.in_project is False else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Chat:
    table: ChatTable
    limits: InputLimits
    cursor_secret: bytes
    temporary_retention: timedelta = timedelta(days=30)
    streaming: StreamingSettings = dataclasses.field(default_factory=StreamingSettings)
    # Where this process last saw each stream (see domain/streams.py).
    streams: StreamCache = dataclasses.field(default_factory=StreamCache)

    def for_user(self, user_id: str) -> UserChat:
        return UserChat(
            chat=self,
            user_id=user_id,
            cursors=CursorCodec(secret=self.cursor_secret, user_id=user_id),
        )

    async def read_shared(self, link_id: str) -> SharedConversation | None:
        """A share link's snapshot as anyone holding the link reads it (no user: the link is
        the capability); None for an unknown, revoked or deleted link alike."""
        return await share_store.read_shared(self.table, link_id=link_id)


@dataclasses.dataclass(frozen=True, kw_only=True)
class UserChat:
    chat: Chat
    # The token's subject, and nothing a request body says: it scopes every read and write.
    user_id: str
    cursors: CursorCodec

    @property
    def table(self) -> ChatTable:
        return self.chat.table

    @property
    def limits(self) -> InputLimits:
        return self.chat.limits

    # --- conversations ----------------------------------------------------------------------

    def conversation_filter(self, given: ListFilter) -> ConversationFilter:
        if given.project_id is not None and given.in_project is not None:
            raise ValidationError("inProject", "cannot be combined with projectId")
        return ConversationFilter(
            archived=given.archived,
            pinned=given.pinned,
            tag=None if given.tag is None else rules.tag(given.tag),
            title_contains=(
                None if given.title_contains is None else rules.title_search(given.title_contains)
            ),
            project_id=(
                None
                if given.project_id is None
                else rules.uuid_id(given.project_id, field="projectId")
            ),
            in_project=given.in_project,
        )

    def conversation_window(
        self, args: PageArgs, *, archived: bool = False, group: str | None = None
    ) -> Window[ConversationPosition]:
        """The list's window; pinned, then most recently updated, first unless `args` say
        otherwise. `group` names a project's list (see list_group)."""
        return window(
            args,
            limits=self.limits,
            default_forward=True,
            decode=lambda cursor: self.cursors.decode_conversation(
                cursor, archived=archived, group=group
            ),
        )

    async def list_conversations(
        self, page: Window[ConversationPosition], where: ConversationFilter | None = None
    ) -> Page[ConversationRecord]:
        return await conversation_store.list_conversations(
            self.table,
            user_id=self.user_id,
            limit=page.limit,
            cursor=page.cursor,
            forward=page.forward,
            where=where or ConversationFilter(),
        )

    async def count_conversations(self, where: ConversationFilter | None = None) -> int:
        """The count of the list `where` selects; a project's from the project, read now
        (ProjectNotFoundError when it is not the caller's)."""
        where = where or ConversationFilter()
        if where.project_id is None:
            return await conversation_store.count_conversations(
                self.table, user_id=self.user_id, where=where
            )
        (project,) = await self.get_projects([where.project_id])
        return project_count(project, where)

    async def tags(self) -> list[tuple[str, int]]:
        counts = await conversation_store.read_counts(self.table, user_id=self.user_id)
        return counts.tags()

    async def get_conversations(self, ids: Sequence[str]) -> list[ConversationRecord | None]:
        """In the order asked; None where missing, malformed or not the caller's."""
        return await conversation_store.get_conversations(
            self.table, user_id=self.user_id, conversation_ids=ids
        )

    async def get_threads(
        self, ids: Sequence[str], *, known: Mapping[str, ConversationRecord] | None = None
    ) -> list[Thread | None]:
        """Conversations with their branch trees; `known` ones are not read again."""
        return await conversation_store.get_threads(
            self.table, user_id=self.user_id, conversation_ids=ids, known=known
        )

    async def create_conversation(
        self,
        *,
        title: str,
        model_id: str | None = None,
        conversation_id: str | None = None,
        tags: Sequence[str] = (),
        temporary: bool = False,
        project_id: str | None = None,
    ) -> ConversationRecord:
        """A new conversation; the caller's existing one when `conversation_id` is a retry."""
        checked_id = None if conversation_id is None else rules.uuid_id(conversation_id, field="id")
        if project_id is not None:
            project_id = rules.uuid_id(project_id, field="projectId")
            if temporary:
                raise ValidationError(
                    "projectId", "a temporary conversation cannot be in a project"
                )
        expires_at = None
        if temporary:
            # Whole seconds, as DynamoDB's TTL counts them: every read path agrees to the tick.
            moment = self.table.clock() + self.chat.temporary_retention
            expires_at = datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)
        return await conversation_store.create_conversation(
            self.table,
            user_id=self.user_id,
            title=rules.title(title),
            model_id=rules.model_id(model_id),
            conversation_id=checked_id,
            tags=rules.tags(tags),
            expires_at=expires_at,
            project_id=project_id,
        )

    async def update_conversation(
        self,
        *,
        conversation_id: str,
        title: str | Unset | None = UNSET,
        model_id: str | Unset | None = UNSET,
        expected_version: int | None = None,
        pinned: bool | Unset | None = UNSET,
        archived: bool | Unset | None = UNSET,
        tags: Sequence[str] | Unset | None = UNSET,
        project_id: str | Unset | None = UNSET,
    ) -> ConversationRecord:
        """Change what is given; UNSET leaves a field, None clears the model (and the
        project: see move_conversation)."""
        checked_id = rules.uuid_id(conversation_id, field="id")
        given = [title, model_id, pinned, archived, tags, project_id]
        if all(isinstance(value, Unset) for value in given):
            raise ValidationError(
                "input", "give at least one of title, modelId, pinned, archived, tags"
            )
        required = {"title": title, "pinned": pinned, "archived": archived, "tags": tags}
        for name, value in required.items():
            if value is None:
                raise ValidationError(name, f"cannot be null; omit it to keep the {name}")
        return await conversation_store.update_conversation(
            self.table,
            user_id=self.user_id,
            conversation_id=checked_id,
            title=None if isinstance(title, Unset) or title is None else rules.title(title),
            model_id=model_id if isinstance(model_id, Unset) else rules.model_id(model_id),
            expected_version=rules.expected_version(expected_version),
            pinned=None if isinstance(pinned, Unset) else pinned,
            archived=None if isinstance(archived, Unset) else archived,
            tags=None if isinstance(tags, Unset) or tags is None else rules.tags(tags),
            project_id=(
                project_id
                if project_id is None or isinstance(project_id, Unset)
                else rules.uuid_id(project_id, field="projectId")
            ),
        )

    async def move_conversation(
        self, *, conversation_id: str, project_id: str | None, expected_version: int | None
    ) -> Moved:
        """Into the project (None: out of any), in one write; its messages are not touched.
        Moving it where it is already changes nothing (a retried move)."""
        return await conversation_store.move_conversation(
            self.table,
            user_id=self.user_id,
            conversation_id=rules.uuid_id(conversation_id, field="conversationId"),
            expected_version=rules.expected_version(expected_version),
            project_id=(
                None if project_id is None else rules.uuid_id(project_id, field="projectId")
            ),
        )

    async def delete_conversation(self, *, conversation_id: str) -> str:
        """Delete it and everything in it; the id deleted."""
        checked_id = rules.uuid_id(conversation_id, field="id")
        return await conversation_store.delete_conversation(
            self.table, user_id=self.user_id, conversation_id=checked_id
        )

    # --- projects ---------------------------------------------------------------------------

    def project_window(self, args: PageArgs) -> Window[ProjectPosition]:
        """The projects list's window: most recently updated first unless `args` say
        otherwise."""
        return window(
            args, limits=self.limits, default_forward=True, decode=self.cursors.decode_project
        )

    async def list_projects(self, page: Window[ProjectPosition]) -> Page[ProjectRecord]:
        return await project_store.list_projects(
            self.table,
            user_id=self.user_id,
            limit=page.limit,
            cursor=page.cursor,
            forward=page.forward,
        )

    async def count_projects(self) -> int:
        return await project_store.count_projects(self.table, user_id=self.user_id)

    async def get_projects(self, ids: Sequence[str]) -> list[ProjectRecord | None]:
        """In the order asked; None where missing, being deleted, malformed or not the
        caller's."""
        return await project_store.get_projects(self.table, user_id=self.user_id, project_ids=ids)

    async def get_nodes(
        self, ids: Sequence[str]
    ) -> list[ConversationRecord | ProjectRecord | ShareLinkRecord | None]:
        """Conversations, projects and share links by id, whichever each is, in one request
        per 100."""
        return await project_store.get_nodes(self.table, user_id=self.user_id, node_ids=ids)

    async def create_project(
        self, *, project_id: str, name: str, instructions: str | None = None
    ) -> ProjectRecord:
        """A new project; the caller's existing one when `project_id` is a retry."""
        return await project_store.create_project(
            self.table,
            user_id=self.user_id,
            project_id=rules.uuid_id(project_id, field="id"),
            name=rules.project_name(name),
            instructions=rules.project_instructions(instructions),
            max_projects=self.limits.max_projects_per_user,
        )

    async def update_project(
        self,
        *,
        project_id: str,
        name: str | Unset | None = UNSET,
        instructions: str | Unset | None = UNSET,
        expected_version: int | None = None,
    ) -> ProjectRecord:
        """Change what is given; UNSET leaves a field, None clears the instructions."""
        checked_id = rules.uuid_id(project_id, field="id")
        if isinstance(name, Unset) and isinstance(instructions, Unset):
            raise ValidationError("input", "give at least one of name, instructions")
        if name is None:
            raise ValidationError("name", "cannot be null; omit it to keep the name")
        return await project_store.update_project(
            self.table,
            user_id=self.user_id,
            project_id=checked_id,
            name=None if isinstance(name, Unset) else rules.project_name(name),
            instructions=(
                instructions
                if isinstance(instructions, Unset)
                else rules.project_instructions(instructions)
            ),
            expected_version=rules.expected_version(expected_version),
        )

    async def delete_project(
        self, *, project_id: str, delete_conversations: bool = False
    ) -> ProjectDeletion:
        """Deletes what one call's time allows (projects.DEFAULT_BUDGET); call until done."""
        return await project_store.delete_project(
            self.table,
            user_id=self.user_id,
            project_id=rules.uuid_id(project_id, field="id"),
            delete_conversations=delete_conversations,
        )

    # --- share links (issue 23) --------------------------------------------------------------

    def share_link_window(self, args: PageArgs) -> Window[ShareLinkPosition]:
        """The links list's window: newest first, forward only."""
        return window(
            args, limits=self.limits, default_forward=True, decode=self.cursors.decode_share_link
        )

    async def list_share_links(self, page: Window[ShareLinkPosition]) -> Page[ShareLinkRecord]:
        return await share_store.list_share_links(
            self.table, user_id=self.user_id, limit=page.limit, cursor=page.cursor
        )

    async def count_share_links(self) -> int:
        counts = await conversation_store.read_counts(self.table, user_id=self.user_id)
        return counts.share_links

    async def share_links_of(self, conversation_ids: Sequence[str]) -> list[list[ShareLinkRecord]]:
        """Each of the caller's conversations' links, newest first (none for another's)."""
        return await share_store.conversation_share_links(
            self.table, user_id=self.user_id, conversation_ids=conversation_ids
        )

    async def create_share_link(
        self, *, conversation_id: str, up_to_message_id: str | None = None
    ) -> ShareLinkRecord:
        """A new link to the branch up to `up_to_message_id` (default: the active leaf), as
        it is now."""
        return await share_store.create_share_link(
            self.table,
            user_id=self.user_id,
            conversation_id=rules.uuid_id(conversation_id, field="conversationId"),
            up_to_message_id=(
                None
                if up_to_message_id is None
                else rules.uuid_id(up_to_message_id, field="upToMessageId")
            ),
            max_links=self.limits.max_share_links_per_user,
        )

    async def update_share_link(
        self, *, link_id: str, up_to_message_id: str | None = None
    ) -> ShareLinkRecord:
        """The same link on the branch up to `up_to_message_id` (default: the active leaf),
        as it is now."""
        return await share_store.update_share_link(
            self.table,
            user_id=self.user_id,
            link_id=rules.share_link_id(link_id),
            up_to_message_id=(
                None
                if up_to_message_id is None
                else rules.uuid_id(up_to_message_id, field="upToMessageId")
            ),
        )

    async def revoke_share_link(self, *, link_id: str) -> str:
        """The link answers 404 from now on; its id."""
        return await share_store.revoke_share_link(
            self.table, user_id=self.user_id, link_id=rules.share_link_id(link_id)
        )

    async def fork_shared_conversation(self, *, share_id: str) -> ConversationRecord:
        """A new conversation of the caller's (new ids) holding a live link's snapshot, as
        anyone may read it; NotFoundError for a link that does not answer."""
        shared = await share_store.read_shared(
            self.table, link_id=rules.share_link_id(share_id, field="shareId")
        )
        if shared is None:
            raise NotFoundError("share link not found")
        imported = await import_store.import_conversation(
            self.table,
            user_id=self.user_id,
            conversation=fork_of(shared, now=self.table.clock()),
        )
        return imported.conversation

    # --- messages ---------------------------------------------------------------------------

    def message_window(
        self, conversation_id: str, args: PageArgs, *, leaf: MessagePosition | None = None
    ) -> threads.PathWindow:
        """A page along a path: the newest messages of the active branch unless `args` (and
        `leaf`) say otherwise."""
        chosen = window(
            args,
            limits=self.limits,
            default_forward=False,
            decode=lambda cursor: self.cursors.decode_message(conversation_id, cursor),
        )
        return threads.PathWindow(
            limit=chosen.limit, forward=chosen.forward, cursor=chosen.cursor, leaf=leaf
        )

    async def find_message(self, conversation_id: str, message_id: str) -> MessageRecord | None:
        """A message of the caller's conversation by id; None when there is none."""
        return await message_store.find_message(
            self.table,
            user_id=self.user_id,
            conversation_id=rules.uuid_id(conversation_id, field="conversationId"),
            message_id=rules.uuid_id(message_id, field="leafId"),
        )

    async def guess_message_page(
        self, conversation_id: str, page: threads.PathWindow
    ) -> list[Item]:
        """Read, before the conversation is known, what `page` most likely holds."""
        return await threads.first_guess(
            self.table, user_id=self.user_id, conversation_id=conversation_id, window=page
        )

    async def read_message_page(
        self, thread: Thread, page: threads.PathWindow, guessed: Sequence[Item] = ()
    ) -> Page[MessageRecord]:
        return await threads.read_page(
            self.table,
            user_id=self.user_id,
            conversation=thread.conversation,
            tree=thread.tree,
            window=page,
            guessed=guessed,
        )

    async def open_conversation(
        self, conversation_id: str, page: threads.PathWindow
    ) -> tuple[ConversationRecord | None, Page[MessageRecord]]:
        """A conversation and a page of its messages, read together (for transports without
        GraphQL's loaders)."""
        (thread,), guessed = await asyncio.gather(
            self.get_threads([conversation_id]), self.guess_message_page(conversation_id, page)
        )
        if thread is None:
            return None, Page(items=[], has_previous=False, has_next=False)
        return thread.conversation, await self.read_message_page(thread, page, guessed)

    async def add_message(self, *, conversation_id: str, message: MessageDraft) -> Added:
        checked_id = rules.uuid_id(conversation_id, field="conversationId")
        return await self._add(checked_id, [self._new_message(message, prefix="")])

    async def add_messages(
        self, *, conversation_id: str, messages: Sequence[MessageDraft]
    ) -> Added:
        """Store `messages` together, in order, or none of them. A `parentId` on the first
        puts them on a new branch there; on the others it must name the message before."""
        checked_id = rules.uuid_id(conversation_id, field="conversationId")
        rules.batch_size(len(messages), limits=self.limits)
        new = [
            self._new_message(message, prefix=f"messages[{index}].")
            for index, message in enumerate(messages)
        ]
        for index, (before, after) in enumerate(itertools.pairwise(new), start=1):
            if after.parent_id is not None and after.parent_id != before.id:
                raise ValidationError(
                    f"messages[{index}].parentId", "must be the id of the message before it"
                )
        return await self._add(checked_id, new)

    async def _add(self, conversation_id: str, new: list[NewMessage]) -> Added:
        return await message_store.add_to_conversation(
            self.table, user_id=self.user_id, conversation_id=conversation_id, messages=new
        )

    def _new_message(self, draft: MessageDraft, *, prefix: str) -> NewMessage:
        return NewMessage(
            id=None if draft.id is None else rules.uuid_id(draft.id, field=f"{prefix}id"),
            role=rules.role(draft.role, field=f"{prefix}role"),
            content=rules.content(
                draft.content, max_bytes=self.limits.max_content_bytes, field=f"{prefix}content"
            ),
            model_id=rules.model_id(draft.model_id, field=f"{prefix}modelId"),
            is_error=draft.is_error,
            error_message=rules.error_message(draft.error_message, field=f"{prefix}errorMessage"),
            parent_id=(
                None
                if draft.parent_id is None
                else rules.uuid_id(draft.parent_id, field=f"{prefix}parentId")
            ),
        )

    async def set_active_branch(self, *, conversation_id: str, leaf_id: str) -> ConversationRecord:
        return await message_store.set_active_branch(
            self.table,
            user_id=self.user_id,
            conversation_id=rules.uuid_id(conversation_id, field="conversationId"),
            message_id=rules.uuid_id(leaf_id, field="leafId"),
        )

    async def set_message_feedback(
        self,
        *,
        conversation_id: str,
        message_id: str,
        rating: str | None,
        comment: str | None,
    ) -> MessageRecord:
        """Set or change a message's rating and comment; both None clears them."""
        return await message_store.set_feedback(
            self.table,
            user_id=self.user_id,
            conversation_id=rules.uuid_id(conversation_id, field="conversationId"),
            message_id=rules.uuid_id(message_id, field="messageId"),
            rating=rules.rating(rating),
            comment=rules.feedback_comment(comment),
        )

    # --- streamed messages ------------------------------------------------------------------

    async def start_message(self, *, conversation_id: str, draft: StartDraft) -> Added:
        """An empty message with status STREAMING, placed as addMessage places one; a retry
        with its id returns it as it is now."""
        checked_id = rules.uuid_id(conversation_id, field="conversationId")
        new = NewMessage(
            id=None if draft.id is None else rules.uuid_id(draft.id, field="id"),
            role=rules.role(draft.role),
            content="",
            model_id=rules.model_id(draft.model_id),
            parent_id=(
                None
                if draft.parent_id is None
                else rules.uuid_id(draft.parent_id, field="parentId")
            ),
        )
        added = await stream_store.start_message(
            self.table,
            user_id=self.user_id,
            conversation_id=checked_id,
            message=new,
            max_streaming=self.chat.streaming.max_streaming_messages,
        )
        if added.conversation is not None:
            # This start wrote the stream: it stands at seq 0, so the first append is one put.
            (message,) = added.messages
            self.chat.streams.put(
                (self.user_id, checked_id, message.id),
                StreamTip(seq=0, end=0, size=0, expires_at=added.conversation.expires_at),
            )
        return added

    async def append_message(
        self, *, conversation_id: str, message_id: str, seq: int, delta: str
    ) -> Appended:
        """Store delta `seq` once; appends are sequential (send N + 1 once N is answered)."""
        key = (
            self.user_id,
            rules.uuid_id(conversation_id, field="conversationId"),
            rules.uuid_id(message_id, field="messageId"),
        )
        checked_seq = rules.seq(seq)
        checked_delta = rules.delta(delta, max_bytes=self.chat.streaming.max_delta_bytes)
        cache = self.chat.streams
        try:
            appended = await stream_store.append_delta(
                self.table,
                user_id=self.user_id,
                conversation_id=key[1],
                message_id=key[2],
                seq=checked_seq,
                delta=checked_delta,
                max_bytes=self.limits.max_content_bytes,
                known=cache.get(key),
            )
        except ChatError:
            # Whatever the stream's state is, it is not what the entry says.
            cache.forget(key)
            raise
        cache.put(key, appended.tip)
        return appended

    async def finish_message(
        self, *, conversation_id: str, message_id: str, draft: FinishDraft
    ) -> Finished:
        """Fold the stored deltas (or the draft's content, which wins) into the message."""
        key = (
            self.user_id,
            rules.uuid_id(conversation_id, field="conversationId"),
            rules.uuid_id(message_id, field="messageId"),
        )
        status = rules.finish_status(draft.status)
        ending = Ending(
            status=status,
            last_seq=rules.last_seq(draft.last_seq),
            content=rules.final_content(draft.content, max_bytes=self.limits.max_content_bytes),
            error_message=rules.finish_error_message(status, draft.error_message),
        )
        try:
            return await stream_store.finish_message(
                self.table,
                user_id=self.user_id,
                conversation_id=key[1],
                message_id=key[2],
                ending=ending,
            )
        finally:
            self.chat.streams.forget(key)

    async def stream_state(
        self, *, conversation_id: str, message_id: str, after: int
    ) -> deltas.StreamState:
        """Where the caller's streamed message stands for a reader holding its text up to seq
        `after` (deltas.read_stream); NotFoundError when the caller has no such message."""
        state = await deltas.read_stream(
            self.table,
            user_id=self.user_id,
            conversation_id=conversation_id,
            message_id=message_id,
            after=after,
        )
        if state is None:
            raise NotFoundError("message not found")
        return state

    # --- sync ---------------------------------------------------------------------------

    def sync_token(self, version: int) -> str:
        return self.cursors.sync_token(SyncPosition(version=version, issued_at=self.table.clock()))

    def sync_position(self, token: str, *, field: str = "since") -> SyncPosition:
        try:
            return self.cursors.decode_sync_token(token)
        except CursorError:
            raise ValidationError(field, "is not a valid sync token for this user") from None

    async def changes(self, *, since: str | None, first: int) -> ChangeFeed:
        """The caller's changes after `since`, oldest first; without it, only where now is."""
        if first < 0 or first > self.limits.max_page_size:
            raise ValidationError("first", f"must be between 0 and {self.limits.max_page_size}")
        if since is None:
            version = await change_store.current_version(self.table, user_id=self.user_id)
            return ChangeFeed(
                changes=[],
                sync_token=self.sync_token(version),
                has_more=False,
                resync_required=False,
            )
        position = self.sync_position(since)
        page = await change_store.read_changes(
            self.table,
            user_id=self.user_id,
            after=position.version,
            limit=first,
            issued_at=position.issued_at,
            max_messages=FEED_MESSAGES_PER_PAGE,
        )
        return ChangeFeed(
            changes=page.changes,
            sync_token=self.sync_token(page.version),
            has_more=page.has_more,
            resync_required=page.resync_required,
        )

    async def change_version(self) -> int:
        """The version of the caller's latest change (0 before the first)."""
        return await change_store.current_version(self.table, user_id=self.user_id)

    async def changes_after(
        self, version: int, *, limit: int, issued_at: datetime | None = None
    ) -> ChangePage:
        """Up to `limit` changes after `version`, oldest first (a subscription catching up);
        `issued_at` is when a sync token for `version` was handed out."""
        return await change_store.read_changes(
            self.table, user_id=self.user_id, after=version, limit=limit, issued_at=issued_at
        )

    async def messages_of(
        self, wanted: Sequence[tuple[str, MessagePosition]]
    ) -> dict[tuple[str, str], MessageRecord]:
        """The caller's messages by (conversation id, position), as changes name them."""
        return await change_store.read_messages(
            self.table, user_id=self.user_id, wanted=list(wanted)
        )

    # --- imports, exports and erasure (issue 15) ---------------------------------------------

    def check_import(self, draft: ImportConversationDraft) -> ConversationImport:
        """A whole conversation checked against the rules, whatever its size: the import
        command checks it before sending it in parts."""
        return imports.checked_conversation(
            draft, limits=self.limits, now=self.table.clock(), field="conversation"
        )

    async def import_conversations(
        self, drafts: Sequence[ImportConversationDraft]
    ) -> list[Imported]:
        """Create what is missing, skip what is stored (by id); within rules.IMPORT_MAX_* per
        call. One conversation after another: a failure leaves the earlier ones imported, and
        calling again completes the rest."""
        checked = imports.checked_batch(drafts, limits=self.limits, now=self.table.clock())
        return [
            await import_store.import_conversation(
                self.table, user_id=self.user_id, conversation=conversation
            )
            for conversation in checked
        ]

    async def import_project(self, draft: ImportProjectDraft) -> ProjectRecord:
        """Create the project as it was, unless the caller has it already (then it is left
        as it is); the import command sends a file's projects before its conversations."""
        checked = imports.checked_project(draft, now=self.table.clock())
        return await project_store.create_project(
            self.table,
            user_id=self.user_id,
            project_id=checked.id,
            name=checked.name,
            instructions=checked.instructions,
            max_projects=self.limits.max_projects_per_user,
            created_at=checked.created_at,
            updated_at=checked.updated_at,
        )

    async def delete_all_data(self) -> Erasure:
        """Deletes what one call's time allows (erasure.DEFAULT_BUDGET); call until done."""
        return await erasure.erase_user_data(self.table, user_id=self.user_id)

    async def export_conversations(
        self,
    ) -> AsyncIterator[tuple[ConversationRecord, list[MessageRecord]]]:
        """Every conversation, archived or not, with every message of every branch in time
        order (then id); one conversation in memory at a time. A message whose content is in
        the content bucket holds only its start: `whole` reads the rest. A streaming one holds
        its text so far, and its status says whether it still streams."""
        async for conversation in exports.all_conversations(self.table, user_id=self.user_id):
            messages = [
                message
                async for message in exports.all_messages(
                    self.table, user_id=self.user_id, conversation_id=conversation.id
                )
            ]
            messages.sort(key=lambda message: (message.created_at, message.id))
            # A streaming message is exported with its text so far, as every read shows it.
            yield conversation, await deltas.streamed_in(self.table, messages)

    async def export_projects(self) -> AsyncIterator[ProjectRecord]:
        """Every project (but those being deleted), in id order."""
        async for project in exports.all_projects(self.table, user_id=self.user_id):
            yield project

    async def whole(self, message: MessageRecord) -> MessageRecord:
        """`message` with its content read back from the content bucket, if it is kept there."""
        (full,) = await content_store.filled_in(self.table.content, [message])
        return full


def fork_of(shared: SharedConversation, *, now: datetime) -> ConversationImport:
    """A snapshot as a new conversation to import: fresh ids, one branch in order, each
    message with its own time; the model of its newest answer."""
    models = [message.model_id for message in shared.messages if message.model_id is not None]
    return ConversationImport(
        id=str(uuid.uuid4()),
        title=shared.title,
        model_id=models[-1] if models else None,
        created_at=now,
        messages=[
            MessageImport(
                id=str(uuid.uuid4()),
                # A flat list: the first message starts it, each next follows the one before.
                parent_id=None if index == 0 else UNSET,
                role=message.role,
                content=message.content,
                created_at=message.created_at,
                model_id=message.model_id,
                is_error=message.status == "failed",
                status=message.status,
            )
            for index, message in enumerate(shared.messages)
        ],
    )


def project_count(project: ProjectRecord | None, where: ConversationFilter) -> int:
    """The count of a project's list `where` selects, before a tag or title search, from the
    project as read; ProjectNotFoundError when there is none."""
    if project is None:
        raise ProjectNotFoundError("project not found")
    return project.conversation_count(archived=where.archived, pinned=where.pinned)
