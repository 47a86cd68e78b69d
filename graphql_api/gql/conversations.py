"""Conversation types, the conversations connection, and the conversation mutations."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from graphql_api.context import Context
from graphql_api.domain import rules
from graphql_api.domain.chat import ListFilter, list_group, project_count
from graphql_api.domain.paging import PageArgs
from graphql_api.errors import NotFoundError, ValidationError
from graphql_api.loaders import MessagePageKey
from graphql_api.storage.conversations import ConversationFilter as StoredFilter
from graphql_api.storage.items import PREVIEW_CHARS
from graphql_api.storage.records import UNSET, ConversationRecord, MessageRecord, Page, Tree

from .messages import Message, MessageConnection, message_connection
from .pagination import PageInfo, edge_cursors, selected, selects_edge_cursors
from .relay import Node
from .share_links import ShareLink
from .views import reads_record, record_of

if TYPE_CHECKING:
    from .projects import Project


async def _messages(
    root: Conversation,
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    leaf_id: strawberry.ID | None = None,
) -> MessageConnection:
    context = info.context
    args = PageArgs(first=first, after=after, last=last, before=before)
    leaf = None
    if leaf_id is not None:
        found = await context.chat.find_message(str(root.id), leaf_id)
        if found is None:
            raise NotFoundError("message not found")
        leaf = found.position
    key = MessagePageKey(
        conversation_id=str(root.id),
        window=context.chat.message_window(str(root.id), args, leaf=leaf),
    )
    # The conversation resolver may have started this very page already (same key).
    page = await context.loaders.message_page.load(key)
    thread = await context.loaders.thread.load(str(root.id))
    tree = Tree() if thread is None else thread.tree
    return message_connection(
        context,
        str(root.id),
        page,
        root.message_count,
        tree,
        every_edge_cursor=selects_edge_cursors(info),
    )


async def _project(
    root: Conversation, info: strawberry.Info[Context]
) -> Annotated[Project, strawberry.lazy("graphql_api.gql.projects")] | None:
    if root.project_id is None:
        return None
    # Here, not at the top: projects.py builds on this module's types.
    from .projects import Project

    record = await info.context.loaders.project.load(str(root.project_id))
    return None if record is None else Project.from_record(record)


async def _share_links(root: Conversation, info: strawberry.Info[Context]) -> list[ShareLink]:
    found = await info.context.loaders.share_links.load(str(root.id))
    return [ShareLink.from_record(record) for record in found]


@reads_record(
    ConversationRecord,
    active_leaf_id=lambda record: (
        None if record.active_leaf is None else strawberry.ID(record.active_leaf.message_id)
    ),
    tags=lambda record: list(record.tags),
)
@strawberry.type
class Conversation(Node):
    id: strawberry.ID
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int = strawberry.field(
        description="Every message of the conversation, on every branch."
    )
    version: int = strawberry.field(
        description="Increases with every change; pass it as expectedVersion to detect races."
    )
    last_message: Message | None = strawberry.field(
        description=(
            "The newest message of the active branch; its content is cut to its first "
            f"{PREVIEW_CHARS} characters (read the message itself for all of it)."
        )
    )
    active_leaf_id: strawberry.ID | None = strawberry.field(
        description="The newest message of the branch the user is on."
    )
    pinned: bool
    archived: bool
    tags: list[str]
    expires_at: datetime | None = strawberry.field(
        description="Set for temporary conversations: when it and all its messages disappear."
    )
    project_id: strawberry.ID | None = strawberry.field(
        description="The project it is in; null when in none. Change it with moveConversation."
    )
    project: Annotated[Project, strawberry.lazy("graphql_api.gql.projects")] | None = (
        strawberry.field(resolver=_project, description="The project it is in.")
    )
    share_links: list[ShareLink] = strawberry.field(
        resolver=_share_links,
        description=(
            "Its share links, newest first: one Query of its own partition (all the "
            "conversations of a page asked at once)."
        ),
    )
    messages: MessageConnection = strawberry.field(
        resolver=_messages,
        description=(
            "One branch, in order: the path from the first message to `leafId` (default: "
            "activeLeafId). `last: N` gives the newest N and `before` pages back to older "
            "ones; `first`/`after` page forward. No arguments: the newest page."
        ),
    )

    @classmethod
    def from_record(cls, record: ConversationRecord) -> Conversation:
        return cls(
            id=strawberry.ID(record.id),
            title=record.title,
            model_id=record.model_id,
            created_at=record.created_at,
            updated_at=record.updated_at,
            message_count=record.message_count,
            version=record.version,
            last_message=(
                None if record.last_message is None else Message.from_record(record.last_message)
            ),
            active_leaf_id=(
                None if record.active_leaf is None else strawberry.ID(record.active_leaf.message_id)
            ),
            pinned=record.pinned,
            archived=record.archived,
            tags=list(record.tags),
            expires_at=record.expires_at,
            project_id=None if record.project_id is None else strawberry.ID(record.project_id),
        )


async def _total_count(root: ConversationConnection, info: strawberry.Info[Context]) -> int:
    if root.counted is not None:
        return root.counted
    return await info.context.chat.count_conversations(root.where)


def _conversation_node(root: ConversationEdge) -> Conversation:
    return Conversation.from_record(root.record)


@strawberry.type
class ConversationEdge:
    cursor: str
    record: strawberry.Private[ConversationRecord]
    # Built only when asked: a planned list reads its fields from the record (views.py).
    node: Conversation = strawberry.field(resolver=_conversation_node, metadata=record_of("record"))


@strawberry.type
class ConversationConnection:
    edges: list[ConversationEdge]
    page_info: PageInfo
    where: strawberry.Private[StoredFilter]
    # Counted together with the page when the query asked for it up front.
    counted: strawberry.Private[int | None] = None

    total_count: int = strawberry.field(
        resolver=_total_count,
        description=(
            "All the conversations of the list the filter selects (archived or not, pinned or "
            "not, a tag, a project or none), not only this page. A title search is not "
            "counted: with titleContains, this is the count of the list it searches; so is "
            "a tag with projectId or inProject."
        ),
    )


@strawberry.input
class ConversationFilter:
    archived: bool | None = strawberry.field(
        default=False, description="The archived conversations instead of the home list."
    )
    pinned: bool | None = None
    tag: str | None = strawberry.field(default=None, description="Compared case-insensitively.")
    title_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive, accent-insensitive substring of the title."
    )
    project_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="One project's conversations (the caller's project: else NOT_FOUND).",
    )
    in_project: bool | None = strawberry.field(
        default=None,
        description=(
            "false: the conversations in no project (one Query a page, as the home list); "
            "true: those in some project. Not with projectId."
        ),
    )


@strawberry.type
class TagCount:
    tag: str
    count: int


# --- queries -----------------------------------------------------------------------------


async def conversations(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filter: ConversationFilter | None = None,
) -> ConversationConnection:
    context = info.context
    chat = context.chat
    given = filter or ConversationFilter()
    where = chat.conversation_filter(
        ListFilter(
            archived=bool(given.archived),
            pinned=given.pinned,
            tag=given.tag,
            title_contains=given.title_contains,
            project_id=given.project_id,
            in_project=given.in_project,
        )
    )
    args = PageArgs(first=first, after=after, last=last, before=before)
    page_window = chat.conversation_window(args, archived=where.archived, group=list_group(where))
    listing = chat.list_conversations(page_window, where)
    total: int | None = None
    if where.project_id is not None:
        # The project is read beside the page whether or not its count is asked for: a
        # project that is not the caller's is NOT_FOUND, not an empty list.
        page, project = await asyncio.gather(
            listing, context.loaders.project.load(where.project_id)
        )
        total = project_count(project, where)
    elif selected(info, "totalCount"):
        # Counted alongside the page rather than after it: one round trip, not two.
        page, total = await asyncio.gather(listing, chat.count_conversations(where))
    else:
        page = await listing
    return conversation_connection(
        context, page, total, where, every_edge_cursor=selects_edge_cursors(info)
    )


async def tags(info: strawberry.Info[Context]) -> list[TagCount]:
    """The caller's tags with how many conversations carry each, most used first."""
    return [TagCount(tag=tag, count=count) for tag, count in await info.context.chat.tags()]


def conversation_connection(
    context: Context,
    page: Page[ConversationRecord],
    total: int | None,
    where: StoredFilter,
    *,
    every_edge_cursor: bool,
) -> ConversationConnection:
    # A conversation named again in the same request is then served from memory.
    context.loaders.listed(page.items)
    codec = context.chat.cursors
    archived, group = where.archived, list_group(where)
    cursors = edge_cursors(
        page.items,
        lambda record: codec.conversation_of(record, archived=archived, group=group),
        every_edge=every_edge_cursor,
    )
    edges = [
        ConversationEdge(cursor=cursor, record=record)
        for cursor, record in zip(cursors, page.items, strict=True)
    ]
    return ConversationConnection(
        edges=edges,
        page_info=PageInfo.of(cursors, has_previous=page.has_previous, has_next=page.has_next),
        counted=total,
        where=where,
    )


async def conversation(info: strawberry.Info[Context], id: strawberry.ID) -> Conversation | None:
    """The caller's conversation; null when it does not exist or belongs to someone else."""
    context = info.context
    conversation_id = rules.uuid_id(id, field="id")
    # Start the pages the query asks for before awaiting the conversation, so both reads go
    # out together. Storage filters messages on the owner, so a foreign id prefetches nothing.
    prefetched = [
        context.loaders.message_page.load(key)
        for key in _requested_message_pages(info, conversation_id)
    ]
    if selected(info, "shareLinks"):
        # Its links' Query goes out with the conversation's read too (one wave); pointers
        # carry their owner, so a foreign id reads none.
        _prefetch(context.loaders.share_links.load(conversation_id))
    if prefetched:
        # The pages read the conversation with its tree: read it once, that way.
        thread = await context.loaders.thread.load(conversation_id)
        record = None if thread is None else thread.conversation
    else:
        record = await context.loaders.conversation.load(conversation_id)
    if record is None:
        for pending in prefetched:
            _discard(pending)
        return None
    return Conversation.from_record(record)


def _requested_message_pages(
    info: strawberry.Info[Context], conversation_id: str
) -> Iterator[MessagePageKey]:
    for child in selected(info, "messages"):
        args = page_args(child.arguments)
        if args is None or child.arguments.get("leafId") is not None:
            # A page along another branch needs its leaf found first.
            continue
        with contextlib.suppress(ValidationError):
            # Invalid arguments are reported by the messages field itself.
            yield MessagePageKey(
                conversation_id=conversation_id,
                window=info.context.chat.message_window(conversation_id, args),
            )


def page_args(arguments: dict[str, Any]) -> PageArgs | None:
    """The arguments as the field will receive them; None if they are not plainly valid.

    Literal integers arrive as strings here (graphql-core's node values); variables arrive
    already coerced.
    """
    try:
        sizes = {
            name: None if arguments.get(name) is None else int(arguments[name])
            for name in ("first", "last")
        }
    except (TypeError, ValueError):
        return None
    cursors = {name: arguments.get(name) for name in ("after", "before")}
    if not all(value is None or isinstance(value, str) for value in cursors.values()):
        return None
    return PageArgs(
        first=sizes["first"], last=sizes["last"], after=cursors["after"], before=cursors["before"]
    )


def _prefetch(pending: Awaitable[object]) -> None:
    """Start a read the field will await (its loader holds it), without an
    unretrieved-exception warning should nobody (a conversation that is not the caller's)."""
    asyncio.ensure_future(pending).add_done_callback(
        lambda done: done.cancelled() or done.exception()
    )


def _discard(pending: Awaitable[Page[MessageRecord]]) -> None:
    """Drop a prefetched page nobody will read, without an unretrieved-exception warning."""
    asyncio.ensure_future(pending).add_done_callback(
        lambda done: done.cancelled() or done.exception()
    )


# --- mutations ---------------------------------------------------------------------------


@strawberry.input
class CreateConversationInput:
    id: strawberry.ID | None = strawberry.field(
        default=None, description="A client-chosen UUID; retrying with it creates one conversation."
    )
    title: str
    model_id: str | None = None
    tags: list[str] | None = strawberry.field(
        default=None,
        description="At most 20, each 1 to 40 characters; compared case-insensitively.",
    )
    temporary: bool | None = strawberry.field(
        default=False,
        description="Deleted with all its messages TEMPORARY_RETENTION_DAYS after creation.",
    )
    project_id: strawberry.ID | None = strawberry.field(
        default=None,
        description=(
            "Start it in this project (the caller's: else NOT_FOUND). Not for a temporary one."
        ),
    )


@strawberry.type
class CreateConversationPayload:
    conversation: Conversation


@strawberry.input
class RenameConversationInput:
    id: strawberry.ID
    title: str
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with CONFLICT unless the conversation is at this version."
    )


@strawberry.type
class RenameConversationPayload:
    conversation: Conversation


@strawberry.input
class UpdateConversationInput:
    id: strawberry.ID
    title: str | None = strawberry.UNSET
    model_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="null clears the model; omitted leaves it."
    )
    expected_version: int | None = strawberry.field(
        default=None, description="Refuse with CONFLICT unless the conversation is at this version."
    )
    pinned: bool | None = strawberry.field(
        default=strawberry.UNSET, description="Pinned conversations head the list."
    )
    archived: bool | None = strawberry.field(
        default=strawberry.UNSET,
        description="Archived conversations leave the home list for `filter: {archived: true}`.",
    )
    tags: list[str] | None = strawberry.field(
        default=strawberry.UNSET, description="Replaces the tags; [] removes them all."
    )


@strawberry.type
class UpdateConversationPayload:
    conversation: Conversation


@strawberry.input
class DeleteConversationInput:
    id: strawberry.ID


@strawberry.type
class DeleteConversationPayload:
    deleted_conversation_id: strawberry.ID


def _remember(context: Context, record: ConversationRecord) -> Conversation:
    context.loaders.forget_conversation(record.id)
    context.loaders.remember(record)
    return Conversation.from_record(record)


async def create_conversation(
    info: strawberry.Info[Context], input: CreateConversationInput
) -> CreateConversationPayload:
    context = info.context
    record = await context.chat.create_conversation(
        title=input.title,
        model_id=input.model_id,
        conversation_id=input.id,
        tags=input.tags or (),
        temporary=bool(input.temporary),
        project_id=input.project_id,
    )
    return CreateConversationPayload(conversation=_remember(context, record))


async def rename_conversation(
    info: strawberry.Info[Context], input: RenameConversationInput
) -> RenameConversationPayload:
    context = info.context
    record = await context.chat.update_conversation(
        conversation_id=input.id, title=input.title, expected_version=input.expected_version
    )
    return RenameConversationPayload(conversation=_remember(context, record))


async def update_conversation(
    info: strawberry.Info[Context], input: UpdateConversationInput
) -> UpdateConversationPayload:
    context = info.context
    record = await context.chat.update_conversation(
        conversation_id=input.id,
        title=UNSET if input.title is strawberry.UNSET else input.title,
        model_id=UNSET if input.model_id is strawberry.UNSET else input.model_id,
        expected_version=input.expected_version,
        pinned=UNSET if input.pinned is strawberry.UNSET else input.pinned,
        archived=UNSET if input.archived is strawberry.UNSET else input.archived,
        tags=UNSET if input.tags is strawberry.UNSET else input.tags,
    )
    return UpdateConversationPayload(conversation=_remember(context, record))


async def delete_conversation(
    info: strawberry.Info[Context], input: DeleteConversationInput
) -> DeleteConversationPayload:
    context = info.context
    conversation_id = await context.chat.delete_conversation(conversation_id=input.id)
    context.loaders.forget_conversation(conversation_id)
    context.loaders.conversation.prime(conversation_id, None, force=True)
    return DeleteConversationPayload(deleted_conversation_id=strawberry.ID(conversation_id))
