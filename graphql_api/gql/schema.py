"""The schema: root types, and the SDL export.

The schema carries no extensions: GraphQLRunner (executor.py) parses, limits, validates and
executes every document, over HTTP and WebSocket alike, and makes its errors public.
"""

from __future__ import annotations

from pathlib import Path

import strawberry
from strawberry.schema.config import StrawberryConfig

from graphql_api.domain.rules import MAX_NODES
from graphql_api.settings import Settings

from . import changes as change_api
from . import conversations as conversation_api
from . import message_mutations, transfer
from . import projects as project_api
from . import subscriptions as subscription_api
from .relay import Node
from .scalars import SCALAR_MAP

SDL_PATH = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"


@strawberry.type
class Query:
    conversations: conversation_api.ConversationConnection = strawberry.field(
        resolver=conversation_api.conversations,
        description=(
            "The caller's conversations: pinned ones first, then the most recently updated. "
            "Without a filter, the unarchived ones."
        ),
    )
    conversation: conversation_api.Conversation | None = strawberry.field(
        resolver=conversation_api.conversation,
        description="The caller's conversation; null when missing or not the caller's.",
    )
    changes: change_api.ChangeFeed = strawberry.field(
        resolver=change_api.changes,
        description=(
            "Changes to the caller's data after `since`, oldest first. Without `since`: no "
            "changes, only the current syncToken."
        ),
    )
    tags: list[conversation_api.TagCount] = strawberry.field(
        resolver=conversation_api.tags,
        description="The caller's tags with how many conversations carry each, most used first.",
    )
    # Issue 22: projects, and Relay's Node.
    projects: project_api.ProjectConnection = strawberry.field(
        resolver=project_api.projects,
        description="The caller's projects, most recently updated first.",
    )
    project: project_api.Project | None = strawberry.field(
        resolver=project_api.project,
        description="The caller's project; null when missing, being deleted or not the caller's.",
    )
    node: Node | None = strawberry.field(
        resolver=project_api.node,
        description=(
            "The caller's conversation or project with this id (Relay's refetch); null when "
            "missing or not the caller's."
        ),
    )
    nodes: list[Node | None] = strawberry.field(
        resolver=project_api.nodes,
        description=(f"As node, for up to {MAX_NODES} ids in one read, in the order given."),
    )


@strawberry.type
class Mutation:
    create_conversation: conversation_api.CreateConversationPayload = strawberry.mutation(
        resolver=conversation_api.create_conversation
    )
    rename_conversation: conversation_api.RenameConversationPayload = strawberry.mutation(
        resolver=conversation_api.rename_conversation
    )
    update_conversation: conversation_api.UpdateConversationPayload = strawberry.mutation(
        resolver=conversation_api.update_conversation
    )
    add_message: message_mutations.AddMessagePayload = strawberry.mutation(
        resolver=message_mutations.add_message
    )
    add_messages: message_mutations.AddMessagesPayload = strawberry.mutation(
        resolver=message_mutations.add_messages
    )
    delete_conversation: conversation_api.DeleteConversationPayload = strawberry.mutation(
        resolver=conversation_api.delete_conversation
    )
    set_active_branch: message_mutations.SetActiveBranchPayload = strawberry.mutation(
        resolver=message_mutations.set_active_branch
    )
    set_message_feedback: message_mutations.SetMessageFeedbackPayload = strawberry.mutation(
        resolver=message_mutations.set_message_feedback
    )
    # Issue 21: answers saved as they stream.
    start_message: message_mutations.StartMessagePayload = strawberry.mutation(
        resolver=message_mutations.start_message,
        description=(
            "Start an answer that will stream: an empty message, STREAMING, placed as addMessage "
            "places one. At most MAX_STREAMING_MESSAGES stream per user at once (CONFLICT beyond)."
        ),
    )
    append_message: message_mutations.AppendMessagePayload = strawberry.mutation(
        resolver=message_mutations.append_message,
        description=(
            "Add a delta to a STREAMING (or INTERRUPTED) message. Answered once it is stored: an "
            "acknowledged delta is never lost. Over MAX_CONTENT_BYTES in all is BAD_USER_INPUT; "
            "a finished message is CONFLICT."
        ),
    )
    finish_message: message_mutations.FinishMessagePayload = strawberry.mutation(
        resolver=message_mutations.finish_message,
        description=(
            "End a stream: COMPLETE, STOPPED (the user's stop) or FAILED. The stored deltas "
            "become the message's content, unless `content` replaces them. The same finish "
            "again answers the stored message."
        ),
    )
    # Issue 15: bringing history in, and erasing it.
    import_conversations: transfer.ImportConversationsPayload = strawberry.mutation(
        resolver=transfer.import_conversations,
        description="Idempotent by ids: importing the same conversations again changes nothing.",
    )
    delete_all_my_data: transfer.DeleteAllMyDataPayload = strawberry.mutation(
        resolver=transfer.delete_all_my_data,
        description=(
            "Deletes every conversation, project, message and change of the caller. "
            "Resumable: call again until done."
        ),
    )
    # Issue 22: projects.
    create_project: project_api.CreateProjectPayload = strawberry.mutation(
        resolver=project_api.create_project,
        description="Idempotent by id: creating the same id again returns the project as it is.",
    )
    update_project: project_api.UpdateProjectPayload = strawberry.mutation(
        resolver=project_api.update_project
    )
    delete_project: project_api.DeleteProjectPayload = strawberry.mutation(
        resolver=project_api.delete_project,
        description=(
            "Deletes the project, its conversations moved out of it (or deleted with "
            "deleteConversations). Resumable, a bounded amount per call: call again until done."
        ),
    )
    move_conversation: project_api.MoveConversationPayload = strawberry.mutation(
        resolver=project_api.move_conversation,
        description=(
            "Moves a conversation into a project, or out of any: one write, its messages untouched."
        ),
    )


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    """The schema as `settings` configure it; with None, only its shape (for SDL)."""
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=subscription_api.Subscription,
        config=StrawberryConfig(
            scalar_map=SCALAR_MAP,
            # "Did you mean" hints map the schema out as surely as introspection does.
            disable_field_suggestions=settings is not None and not settings.introspection_enabled,
        ),
    )


def sdl() -> str:
    """The schema's shape alone, as committed in schema/schema.graphql."""
    return str(build_schema()) + "\n"


def export_sdl(path: Path = SDL_PATH) -> None:
    path.write_text(sdl(), encoding="utf-8")
