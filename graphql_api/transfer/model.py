"""What the readers produce and the writer takes: conversations as trees of messages, and
(our own format only) the projects they are in.

Every id is a canonical lowercase UUID and every timestamp an aware UTC datetime. Along each
parent chain the timestamps strictly increase, and `messages` lists every parent before its
children (in time order, after the one message that follows the active leaf, if any), so a
consumer can store them in one pass.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime
from typing import Literal, TypeAlias

Role: TypeAlias = Literal["user", "assistant", "system"]
Rating: TypeAlias = Literal["UP", "DOWN"]
# A streamed message's state, as the API stores it; every other message is "complete".
Status: TypeAlias = Literal["complete", "streaming", "stopped", "failed", "interrupted"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    rating: Rating | None
    comment: str | None
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ImportedMessage:
    id: str
    parent_id: str | None
    role: Role
    content: str
    created_at: datetime
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    feedback: Feedback | None = None
    # Our format's first message given without parentId (parent_id is then None): it follows
    # the conversation's active leaf where it is stored, and is a first message where
    # nothing is, as importConversations reads an omitted parentId. Only ever the first of
    # `messages`.
    follows_active_leaf: bool = False
    status: Status = "complete"


@dataclasses.dataclass(slots=True)
class Notes:
    """What a reader left out or repaired in one conversation, for the closing summary.

    Keys are short phrases a person can read ("tool message", "image"); values are counts.
    """

    skipped: Counter[str] = dataclasses.field(default_factory=Counter)
    dropped: Counter[str] = dataclasses.field(default_factory=Counter)
    repaired: Counter[str] = dataclasses.field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.skipped or self.dropped or self.repaired)

    def merge(self, other: Notes) -> None:
        self.skipped.update(other.skipped)
        self.dropped.update(other.dropped)
        self.repaired.update(other.repaired)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """Where a conversation was read: the file (or zip member) and its 0-based index there."""

    file: str
    index: int
    source_id: str | None = None
    title: str | None = None

    def describe(self) -> str:
        said = f"{self.file}: conversation #{self.index}"
        details = [f"id {self.source_id}"] if self.source_id else []
        if self.title:
            details.append(repr(self.title if len(self.title) <= 60 else self.title[:57] + "..."))
        return f"{said} ({', '.join(details)})" if details else said


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ImportedConversation:
    id: str
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[ImportedMessage]
    # The newest message of the branch the user was on (ChatGPT's current_node); None when
    # there are no messages.
    active_leaf_id: str | None = None
    pinned: bool = False
    archived: bool = False
    tags: tuple[str, ...] = ()
    # The project it is in (our own format); a reader yields that project before it.
    project_id: str | None = None
    # Where it came from and what was left out describe the reading, not the conversation:
    # a conversation read back from our own export equals the one that was written.
    origin: Origin | None = dataclasses.field(default=None, compare=False)
    notes: Notes = dataclasses.field(default_factory=Notes, compare=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RefusedConversation:
    """A conversation that cannot be imported, and why; the readers go on past it."""

    origin: Origin
    reasons: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.origin.describe()}: {'; '.join(self.reasons)}"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ImportedProject:
    """A project of our own format, yielded before every conversation that names it."""

    id: str
    name: str
    instructions: str | None
    created_at: datetime
    updated_at: datetime


ReadResult: TypeAlias = ImportedConversation | ImportedProject | RefusedConversation
ExportFormat: TypeAlias = Literal["json", "ndjson"]
SourceFormat: TypeAlias = Literal["chatgpt", "claude", "json"]
SOURCE_FORMATS: tuple[SourceFormat, ...] = ("chatgpt", "claude", "json")
