"""Imports as every transport hands them in (importConversations, the import command): the
drafts it fills, checked against the rules into what storage takes.

A draft is checked whole before anything is written, so a conversation is refused with the
field at fault (`conversations[2].messages[7].content`) rather than stored in part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.imports import ConversationImport, MessageImport
from graphql_api.storage.records import UNSET, Feedback, Unset

from . import rules


@dataclasses.dataclass(frozen=True, kw_only=True)
class FeedbackDraft:
    rating: str | None
    comment: str | None
    updated_at: datetime


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImportMessageDraft:
    id: str
    role: str
    content: str
    created_at: datetime
    # None: a first message; UNSET (omitted): the message before it in the list, or for the
    # first one the conversation's active leaf (storage.imports.MessageImport).
    parent_id: str | Unset | None = UNSET
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    feedback: FeedbackDraft | None = None
    # A streamed message's status where it comes from (lowercase, as records spell it).
    status: str = "complete"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImportConversationDraft:
    """A conversation to import; `messages` lists every parent before its children."""

    id: str
    title: str
    created_at: datetime
    messages: Sequence[ImportMessageDraft]
    model_id: str | None = None
    updated_at: datetime | None = None
    active_leaf_id: str | None = None
    pinned: bool = False
    archived: bool = False
    tags: Sequence[str] = ()
    # The caller's project it goes in, when the import creates it.
    project_id: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class ImportProjectDraft:
    """A project to import (our own format carries them): created as it was unless the
    caller has it already, then left as it is."""

    id: str
    name: str
    created_at: datetime
    updated_at: datetime | None = None
    instructions: str | None = None


def checked_project(draft: ImportProjectDraft, *, now: datetime) -> ImportProjectDraft:
    created_at = rules.past_moment(draft.created_at, now=now, field="createdAt")
    updated_at = created_at
    if draft.updated_at is not None:
        updated_at = rules.past_moment(draft.updated_at, now=now, field="updatedAt")
        if updated_at < created_at:
            raise ValidationError("updatedAt", "must not be before createdAt")
    return ImportProjectDraft(
        id=rules.uuid_id(draft.id, field="id"),
        name=rules.project_name(draft.name),
        instructions=rules.project_instructions(draft.instructions),
        created_at=created_at,
        updated_at=updated_at,
    )


def checked_batch(
    drafts: Sequence[ImportConversationDraft], *, limits: InputLimits, now: datetime
) -> list[ConversationImport]:
    """One call's conversations, within the call's bound, each id once."""
    messages = [message for draft in drafts for message in draft.messages]
    rules.import_size(
        conversations=len(drafts),
        messages=len(messages),
        content_bytes=sum(_size(message) for message in messages),
    )
    checked = [
        checked_conversation(draft, limits=limits, now=now, field=f"conversations[{index}]")
        for index, draft in enumerate(drafts)
    ]
    seen: set[str] = set()
    for index, conversation in enumerate(checked):
        if conversation.id in seen:
            raise ValidationError(f"conversations[{index}].id", "appears twice in this call")
        seen.add(conversation.id)
    return checked


def _size(message: ImportMessageDraft) -> int:
    # Counted as sent: a lone surrogate (refused later, by the content rule) counts as 3 bytes.
    content = message.content.encode(errors="surrogatepass")
    return len(content) + len((message.error_message or "").encode(errors="surrogatepass"))


def checked_conversation(
    draft: ImportConversationDraft, *, limits: InputLimits, now: datetime, field: str
) -> ConversationImport:
    created_at = rules.past_moment(draft.created_at, now=now, field=f"{field}.createdAt")
    updated_at = None
    if draft.updated_at is not None:
        updated_at = rules.past_moment(draft.updated_at, now=now, field=f"{field}.updatedAt")
        if updated_at < created_at:
            raise ValidationError(f"{field}.updatedAt", "must not be before createdAt")
    messages = _checked_messages(draft.messages, limits=limits, now=now, field=field)
    leaf = draft.active_leaf_id
    return ConversationImport(
        id=rules.uuid_id(draft.id, field=f"{field}.id"),
        title=rules.title(draft.title, field=f"{field}.title"),
        model_id=rules.model_id(draft.model_id, field=f"{field}.modelId"),
        created_at=created_at,
        updated_at=updated_at,
        active_leaf_id=None if leaf is None else rules.uuid_id(leaf, field=f"{field}.activeLeafId"),
        pinned=draft.pinned,
        archived=draft.archived,
        tags=rules.tags(draft.tags, field=f"{field}.tags"),
        messages=messages,
        project_id=(
            None
            if draft.project_id is None
            else rules.uuid_id(draft.project_id, field=f"{field}.projectId")
        ),
    )


def _checked_messages(
    drafts: Sequence[ImportMessageDraft], *, limits: InputLimits, now: datetime, field: str
) -> list[MessageImport]:
    checked: list[MessageImport] = []
    seen: set[str] = set()
    # Where each id is given, to refuse a parent named after its child in one pass.
    index_of = {draft.id.lower(): index for index, draft in enumerate(drafts)}
    for index, draft in enumerate(drafts):
        at = f"{field}.messages[{index}]"
        message_id = rules.uuid_id(draft.id, field=f"{at}.id")
        if message_id in seen:
            raise ValidationError(f"{at}.id", "appears twice in this conversation")
        parent_id = draft.parent_id
        if isinstance(parent_id, str):
            parent_id = rules.uuid_id(parent_id, field=f"{at}.parentId")
            if index_of.get(parent_id, -1) >= index:
                raise ValidationError(
                    f"{at}.parentId", "must name a message before this one (or one stored)"
                )
        seen.add(message_id)
        status = rules.message_status(draft.status, field=f"{at}.status")
        checked.append(
            MessageImport(
                id=message_id,
                parent_id=parent_id,
                role=rules.role(draft.role, field=f"{at}.role"),
                content=rules.imported_content(
                    draft.content,
                    status=status,
                    max_bytes=limits.max_content_bytes,
                    field=f"{at}.content",
                ),
                status=status,
                created_at=rules.past_moment(draft.created_at, now=now, field=f"{at}.createdAt"),
                model_id=rules.model_id(draft.model_id, field=f"{at}.modelId"),
                is_error=draft.is_error,
                error_message=rules.error_message(draft.error_message, field=f"{at}.errorMessage"),
                feedback=_feedback(draft.feedback, now=now, field=f"{at}.feedback"),
            )
        )
    return checked


def _feedback(draft: FeedbackDraft | None, *, now: datetime, field: str) -> Feedback | None:
    if draft is None or (draft.rating is None and draft.comment is None):
        return None
    return Feedback(
        rating=rules.rating(draft.rating, field=f"{field}.rating"),
        comment=rules.feedback_comment(draft.comment, field=f"{field}.comment"),
        updated_at=rules.past_moment(draft.updated_at, now=now, field=f"{field}.updatedAt"),
    )
