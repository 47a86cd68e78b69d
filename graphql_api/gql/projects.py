"""Projects, their connection and mutations, moving conversations between them, and Relay's
node/nodes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Iterator, Sequence
from datetime import datetime

import strawberry

from graphql_api.context import Context
from graphql_api.domain import rules
from graphql_api.domain.chat import ListFilter, list_group, project_count
from graphql_api.domain.paging import PageArgs
from graphql_api.domain.rules import PROJECT_INSTRUCTIONS_MAX_CHARS, PROJECT_NAME_MAX_CHARS
from graphql_api.errors import ValidationError
from graphql_api.loaders import ConversationPageKey
from graphql_api.storage.records import UNSET, ConversationRecord, Page, ProjectRecord

from .conversations import (
    Conversation,
    ConversationConnection,
    ConversationFilter,
    conversation_connection,
    page_args,
)
from .pagination import PageInfo, edge_cursors, selected, selects_edge_cursors
from .relay import Node

_NAME = f"1 to {PROJECT_NAME_MAX_CHARS} characters once trimmed; one line."
_INSTRUCTIONS = (
    f"At most {PROJECT_INSTRUCTIONS_MAX_CHARS} characters; line breaks and tabs allowed. Blank "
    "is none."
)
_EXPECTED_VERSION = "Refuse with CONFLICT unless the project is at this version."


async def _conversations(
    root: Project,
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
    filter: ConversationFilter | None = None,
) -> ConversationConnection:
    context = info.context
    key = _page_key(
        context, str(root.id), PageArgs(first=first, after=after, last=last, before=before), filter
    )
    # project(id) may have started this very page already (same key).
    page = await context.loaders.conversation_page.load(key)
    return conversation_connection(
        context,
        page,
        project_count(root.record, key.where),
        key.where,
        every_edge_cursor=selects_edge_cursors(info),
    )


def _page_key(
    context: Context, project_id: str, args: PageArgs, given: ConversationFilter | None
) -> ConversationPageKey:
    given = given or ConversationFilter()
    if given.project_id is not None and given.project_id.lower() != project_id:
        raise ValidationError("filter.projectId", "must be this project's id, or left out")
    if given.in_project is not None:
        raise ValidationError("filter.inProject", "cannot be given for a project's list")
    chat = context.chat
    where = chat.conversation_filter(
        ListFilter(
            archived=bool(given.archived),
            pinned=given.pinned,
            tag=given.tag,
            title_contains=given.title_contains,
            project_id=project_id,
        )
    )
    window = chat.conversation_window(args, archived=where.archived, group=list_group(where))
    return ConversationPageKey(where=where, window=window)


@strawberry.type(
    description=(
        "A named place for conversations, with its own instructions (ChatGPT's Projects). A "
        "conversation is in at most one project."
    )
)
class Project(Node):
    id: strawberry.ID
    name: str
    instructions: str | None
    created_at: datetime
    updated_at: datetime = strawberry.field(
        description="When its name or instructions last changed; orders `projects`."
    )
    version: int = strawberry.field(
        description=(
            "Increases with every change of its name or instructions; pass it as "
            "expectedVersion to detect races."
        )
    )
    conversation_count: int = strawberry.field(
        description="Its conversations, archived or not; exact, kept with the project."
    )
    record: strawberry.Private[ProjectRecord]
    conversations: ConversationConnection = strawberry.field(
        resolver=_conversations,
        description=(
            "Its conversations: pinned ones first, then the most recently updated. Without a "
            "filter, the unarchived ones. One Query a page; totalCount is read with the project."
        ),
    )

    @classmethod
    def from_record(cls, record: ProjectRecord) -> Project:
        return cls(
            id=strawberry.ID(record.id),
            name=record.name,
            instructions=record.instructions,
            created_at=record.created_at,
            updated_at=record.updated_at,
            version=record.version,
            conversation_count=record.conversation_count(),
            record=record,
        )


@strawberry.type
class ProjectEdge:
    cursor: str
    node: Project


async def _total_projects(root: ProjectConnection, info: strawberry.Info[Context]) -> int:
    if root.counted is not None:
        return root.counted
    return await info.context.chat.count_projects()


@strawberry.type
class ProjectConnection:
    edges: list[ProjectEdge]
    page_info: PageInfo
    counted: strawberry.Private[int | None] = None
    total_count: int = strawberry.field(
        resolver=_total_projects, description="All the caller's projects, not only this page."
    )


# --- queries -----------------------------------------------------------------------------


async def projects(
    info: strawberry.Info[Context],
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> ProjectConnection:
    """The caller's projects, most recently updated first."""
    context = info.context
    chat = context.chat
    listing = chat.list_projects(
        chat.project_window(PageArgs(first=first, after=after, last=last, before=before))
    )
    total: int | None = None
    if selected(info, "totalCount"):
        # Counted alongside the page rather than after it: one round trip, not two.
        page, total = await asyncio.gather(listing, chat.count_projects())
    else:
        page = await listing
    for record in page.items:
        context.loaders.project.prime(record.id, record)
    cursors = edge_cursors(
        page.items,
        lambda record: chat.cursors.project(record.position),
        every_edge=selects_edge_cursors(info),
    )
    return ProjectConnection(
        edges=[
            ProjectEdge(cursor=cursor, node=Project.from_record(record))
            for cursor, record in zip(cursors, page.items, strict=True)
        ],
        page_info=PageInfo.of(cursors, has_previous=page.has_previous, has_next=page.has_next),
        counted=total,
    )


async def project(info: strawberry.Info[Context], id: strawberry.ID) -> Project | None:
    """The caller's project; null when missing, being deleted or not the caller's."""
    context = info.context
    project_id = rules.uuid_id(id, field="id")
    # The pages of its conversations the query asks for go out with the project's read: one
    # wave. The lists are the caller's own index partitions, so a foreign id reads nothing.
    for key in _requested_pages(info, project_id):
        _prefetch(context.loaders.conversation_page.load(key))
    record = await context.loaders.project.load(project_id)
    return None if record is None else Project.from_record(record)


def _requested_pages(
    info: strawberry.Info[Context], project_id: str
) -> Iterator[ConversationPageKey]:
    for child in selected(info, "conversations"):
        args = page_args(child.arguments)
        if args is None or child.arguments.get("filter") is not None:
            # A filtered page is read when the field resolves: one wave more.
            continue
        with contextlib.suppress(ValidationError):
            # Invalid arguments are reported by the conversations field itself.
            yield _page_key(info.context, project_id, args, None)


def _prefetch(pending: Awaitable[Page[ConversationRecord]]) -> None:
    """Start a page nobody may read (its project may be missing), without an
    unretrieved-exception warning."""
    asyncio.ensure_future(pending).add_done_callback(
        lambda done: done.cancelled() or done.exception()
    )


async def node(info: strawberry.Info[Context], id: strawberry.ID) -> Node | None:
    (found,) = await _nodes(info, [id])
    return found


async def nodes(info: strawberry.Info[Context], ids: list[strawberry.ID]) -> list[Node | None]:
    return await _nodes(info, rules.node_ids(ids))


async def _nodes(info: strawberry.Info[Context], ids: Sequence[str]) -> list[Node | None]:
    # Any case of a UUID names the same object; anything else names none.
    found = await info.context.loaders.node.load_many([str(node_id).lower() for node_id in ids])
    return [_as_node(record) for record in found]


def _as_node(record: ConversationRecord | ProjectRecord | None) -> Node | None:
    if isinstance(record, ConversationRecord):
        return Conversation.from_record(record)
    if isinstance(record, ProjectRecord):
        return Project.from_record(record)
    return None


# --- mutations ---------------------------------------------------------------------------


@strawberry.input
class CreateProjectInput:
    id: strawberry.ID = strawberry.field(
        description=(
            "A client-chosen UUID; retrying with it creates one project. Unique among the "
            "caller's conversations and projects (else CONFLICT)."
        )
    )
    name: str = strawberry.field(description=_NAME)
    instructions: str | None = strawberry.field(default=None, description=_INSTRUCTIONS)


@strawberry.type
class CreateProjectPayload:
    project: Project


@strawberry.input
class UpdateProjectInput:
    id: strawberry.ID
    name: str | None = strawberry.field(default=strawberry.UNSET, description=_NAME)
    instructions: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"null clears them; omitted leaves them. {_INSTRUCTIONS}",
    )
    expected_version: int | None = strawberry.field(default=None, description=_EXPECTED_VERSION)


@strawberry.type
class UpdateProjectPayload:
    project: Project


@strawberry.input
class DeleteProjectInput:
    id: strawberry.ID
    delete_conversations: bool = strawberry.field(
        default=False,
        description=(
            "false: its conversations move out of it (to no project); true: they are deleted "
            "with their messages."
        ),
    )


@strawberry.type
class DeleteProjectPayload:
    done: bool = strawberry.field(
        description=(
            "The project is gone. Until then call again (it is gone for every reader, and "
            "nothing can move in, from the first call on); once done, the id is NOT_FOUND."
        )
    )
    conversations_remaining: int = strawberry.field(
        description="Conversations still in the project, archived or not."
    )


@strawberry.input
class MoveConversationInput:
    conversation_id: strawberry.ID
    project_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The project to move it into (the caller's: else NOT_FOUND); null: out of any.",
    )
    expected_version: int | None = strawberry.field(
        default=None,
        description=(
            "Refuse with CONFLICT unless the conversation is at this version. A move to where "
            "it is already changes nothing, so a retried move succeeds."
        ),
    )


async def _previous_project(
    root: MoveConversationPayload, info: strawberry.Info[Context]
) -> Project | None:
    if root.previous_project_id is None:
        return None
    record = await info.context.loaders.project.load(root.previous_project_id)
    return None if record is None else Project.from_record(record)


@strawberry.type
class MoveConversationPayload:
    conversation: Conversation
    previous_project_id: strawberry.Private[str | None]
    previous_project: Project | None = strawberry.field(
        resolver=_previous_project,
        description=(
            "The project it left, as it is now (its conversationCount one less); null when "
            "it was in none, or the move changed nothing."
        ),
    )


async def create_project(
    info: strawberry.Info[Context], input: CreateProjectInput
) -> CreateProjectPayload:
    context = info.context
    record = await context.chat.create_project(
        project_id=input.id, name=input.name, instructions=input.instructions
    )
    context.loaders.remember_project(record, record.id)
    return CreateProjectPayload(project=Project.from_record(record))


async def update_project(
    info: strawberry.Info[Context], input: UpdateProjectInput
) -> UpdateProjectPayload:
    context = info.context
    record = await context.chat.update_project(
        project_id=input.id,
        name=UNSET if input.name is strawberry.UNSET else input.name,
        instructions=UNSET if input.instructions is strawberry.UNSET else input.instructions,
        expected_version=input.expected_version,
    )
    context.loaders.remember_project(record, record.id)
    return UpdateProjectPayload(project=Project.from_record(record))


async def delete_project(
    info: strawberry.Info[Context], input: DeleteProjectInput
) -> DeleteProjectPayload:
    context = info.context
    deletion = await context.chat.delete_project(
        project_id=input.id, delete_conversations=input.delete_conversations
    )
    context.loaders.remember_project(None, rules.uuid_id(input.id, field="id"))
    return DeleteProjectPayload(
        done=deletion.done, conversations_remaining=deletion.conversations_remaining
    )


async def move_conversation(
    info: strawberry.Info[Context], input: MoveConversationInput
) -> MoveConversationPayload:
    context = info.context
    moved = await context.chat.move_conversation(
        conversation_id=input.conversation_id,
        project_id=input.project_id,
        expected_version=input.expected_version,
    )
    record = moved.conversation
    context.loaders.forget_conversation(record.id)
    context.loaders.remember(record)
    if moved.project is not None:
        # Read by the move itself: `conversation { project }` costs no request.
        context.loaders.remember_project(moved.project, moved.project.id)
    if moved.left is not None:
        # Its counts changed without being read: a later read is fresh.
        context.loaders.forget_project(moved.left)
    return MoveConversationPayload(
        conversation=Conversation.from_record(record), previous_project_id=moved.left
    )
