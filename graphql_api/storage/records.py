"""Plain records the storage layer takes and returns; their item form is built in items.py."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from . import keys

Item: TypeAlias = dict[str, Any]
Role: TypeAlias = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = ("user", "assistant", "system")
RecordT = TypeVar("RecordT")

ONE_TICK = timedelta(microseconds=1)


class Unset:
    """Marks an optional update argument the caller did not give (None clears the value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


def format_timestamp(moment: datetime) -> str:
    """The one text form of a moment, in storage keys and in every transport's output: fixed
    width with microseconds and a Z, so string order is time order."""
    if moment.tzinfo is None:
        # Every timestamp we hold is aware; a naive one is a bug, not something to guess at.
        raise ValueError("naive datetime")
    # isoformat is fixed-width for every year (strftime's %Y drops the zeros of years before
    # 1000, breaking the order of keys) and under two thirds of strftime's cost.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")[:-6] + "Z"


def parse_timestamp(text: str) -> datetime:
    # fromisoformat reads our fixed-width "...Z" form exactly, at a fraction of strptime's cost
    # (which showed in profiles: every record carries two or three timestamps).
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset():
        raise ValueError(f"not a UTC timestamp: {text!r}")
    return moment


Rating: TypeAlias = Literal["up", "down"]
ChangeKind: TypeAlias = Literal[
    "CONVERSATION_CREATED",
    "CONVERSATION_UPDATED",
    "CONVERSATION_DELETED",
    "MESSAGES_ADDED",
    "MESSAGE_FINISHED",
    "PROJECT_CREATED",
    "PROJECT_UPDATED",
    "PROJECT_DELETED",
]
# A message's state. "complete" for every message not streamed (and every one stored before
# streaming existed); "streaming" while its answer is being appended; "interrupted" is never
# stored: reads say it of a streaming message whose last append is older than the lease.
MessageStatus: TypeAlias = Literal["complete", "streaming", "stopped", "failed", "interrupted"]
MESSAGE_STATUSES: tuple[MessageStatus, ...] = (
    "complete",
    "streaming",
    "stopped",
    "failed",
    "interrupted",
)
# How a stream may end: finishMessage's statuses.
FinishStatus: TypeAlias = Literal["complete", "stopped", "failed"]
FINISH_STATUSES: tuple[FinishStatus, ...] = ("complete", "stopped", "failed")


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NewMessage:
    """A message as a client sends it; `id` is the client's idempotency key when given.

    `parent_id` names the message it answers or follows; None continues the active branch (or
    starts the conversation).
    """

    role: Role
    content: str
    id: str | None = None
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    parent_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Feedback:
    rating: Rating | None
    comment: str | None
    updated_at: datetime


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessagePosition:
    """Where a message sits in its conversation's tree: its segment and its depth."""

    segment: int
    depth: int
    message_id: str

    def sort_key(self) -> str:
        return keys.message_sk(self.segment, self.depth)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessageRecord:
    id: str
    conversation_id: str
    user_id: str
    role: Role
    content: str
    created_at: datetime
    model_id: str | None
    is_error: bool
    error_message: str | None
    parent_id: str | None
    segment: int
    depth: int
    feedback: Feedback | None = None
    # Set when the content is kept in the content bucket under this key; read from an item,
    # `content` is then only its start until storage.content fills it in.
    content_ref: str | None = None
    # Read from an item, a streamed message's `content` is its base (what it started with)
    # until storage.deltas.streamed_in adds the deltas and tells streaming from interrupted.
    status: MessageStatus = "complete"
    # While streaming or interrupted: the last acknowledged seq (0 before the first append).
    stream_seq: int | None = None

    @property
    def position(self) -> MessagePosition:
        return MessagePosition(segment=self.segment, depth=self.depth, message_id=self.id)

    def same_payload(self, new: NewMessage) -> bool:
        """Whether a retried add carries what was stored, so replaying it is safe."""
        return (self.role, self.content, self.model_id, self.is_error, self.error_message) == (
            new.role,
            new.content,
            new.model_id,
            new.is_error,
            new.error_message,
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConversationPosition:
    pinned: bool
    updated_at: datetime
    conversation_id: str

    def sort_key(self) -> str:
        return keys.recency_sk(
            format_timestamp(self.updated_at), self.conversation_id, pinned=self.pinned
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConversationRecord:
    id: str
    user_id: str
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    version: int
    # The newest message of the active branch, as a preview (its content may be cut short).
    last_message: MessageRecord | None
    active_leaf: MessagePosition | None = None
    # Segments ever started; the next new branch gets this number.
    segment_count: int = 1
    pinned: bool = False
    archived: bool = False
    tags: tuple[str, ...] = ()
    # Temporary conversations vanish at this moment, whatever DynamoDB's TTL sweep does.
    expires_at: datetime | None = None
    # The project it is in; None: in none.
    project_id: str | None = None

    @property
    def position(self) -> ConversationPosition:
        return ConversationPosition(
            pinned=self.pinned, updated_at=self.updated_at, conversation_id=self.id
        )

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProjectPosition:
    updated_at: datetime
    project_id: str

    def sort_key(self) -> str:
        return keys.project_recency_sk(format_timestamp(self.updated_at), self.project_id)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ProjectRecord:
    """A named group of conversations with its own instructions.

    `counts` holds how many of its conversations each list has, by (archived, pinned): moved
    in the same transaction as the conversation that moves them, so they are exact.
    """

    id: str
    user_id: str
    name: str
    instructions: str | None
    created_at: datetime
    updated_at: datetime
    # Increases with every change of the name or instructions (not with its conversations).
    version: int
    counts: Mapping[tuple[bool, bool], int] = dataclasses.field(default_factory=dict)
    # Set by deleteProject's first call: the project is gone for every reader, and its
    # conversations are on their way out.
    deleting: bool = False

    @property
    def position(self) -> ProjectPosition:
        return ProjectPosition(updated_at=self.updated_at, project_id=self.id)

    def joined_by(self, conversation: ConversationRecord) -> ProjectRecord:
        """The project once `conversation` has moved in."""
        at = (conversation.archived, conversation.pinned)
        return dataclasses.replace(self, counts={**self.counts, at: self.counts.get(at, 0) + 1})

    def conversation_count(
        self, *, archived: bool | None = None, pinned: bool | None = None
    ) -> int:
        """Its conversations in the lists selected (None: both ways)."""
        return sum(
            count
            for (is_archived, is_pinned), count in self.counts.items()
            if archived in (None, is_archived) and pinned in (None, is_pinned)
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Segment:
    """A branch that starts where its parent segment's message at `fork_depth` forks."""

    number: int
    parent: int
    fork_depth: int


@dataclasses.dataclass(frozen=True, slots=True)
class Tree:
    """Where a conversation's branches fork; empty for a conversation that never forked.

    `children` lists, for each message with more than one child, its children's ids oldest
    first: the "< 2/3 >" of a chat client.
    """

    segments: dict[int, Segment] = dataclasses.field(default_factory=dict)
    children: dict[tuple[int, int], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    revision: int = 0

    def parent_segment(self, segment: int) -> Segment | None:
        return self.segments.get(segment)

    def path(self, segment: int, depth: int) -> list[tuple[int, int, int]]:
        """The path from the first message to (segment, depth), newest part first, as
        (segment, lowest depth, highest depth) runs: one key range each."""
        runs: list[tuple[int, int, int]] = []
        while True:
            start = self.segments[segment].fork_depth + 1 if segment in self.segments else 1
            if depth >= start:
                runs.append((segment, start, depth))
            if segment not in self.segments:
                return runs
            branch = self.segments[segment]
            segment, depth = branch.parent, branch.fork_depth

    def forks_after(self, segment: int, depth: int) -> list[Segment]:
        """The branches that start from `segment` at `depth` or deeper."""
        return [
            branch
            for branch in self.segments.values()
            if branch.parent == segment and branch.fork_depth >= depth
        ]

    def siblings(self, message: MessageRecord) -> tuple[str, ...]:
        """`message` and its alternatives (the children of its parent), oldest first."""
        if message.depth == 1:
            parent = (0, 0)
        elif message.segment in self.segments and (
            message.depth == self.segments[message.segment].fork_depth + 1
        ):
            branch = self.segments[message.segment]
            parent = (branch.parent, branch.fork_depth)
        else:
            parent = (message.segment, message.depth - 1)
        return self.children.get(parent) or (message.id,)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChangeRecord:
    """One committed write, as the change log keeps it."""

    version: int
    kind: ChangeKind
    # The conversation a CONVERSATION_* or MESSAGES_ADDED change is about; None for PROJECT_*.
    conversation_id: str | None
    created_at: datetime
    # What a MESSAGES_ADDED change added, in order; the message a MESSAGE_FINISHED change
    # finished (or a rating rated); empty for the other kinds.
    messages: tuple[MessagePosition, ...] = ()
    # The project a PROJECT_* change is about; None for the other kinds.
    project_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class DeltaRecord:
    """One DELTA# item: an acknowledged append, or the tombstone a finish left in its place.

    `end` and `size` are the length of the streamed text once this delta is in it: the base
    the message started with plus deltas 1..seq, in characters (Python's str length: Unicode
    code points, what AppendMessagePayload.length counts) and in UTF-8 bytes. A tombstone
    keeps them (so a reader still knows where seq N ended) and drops the text.
    """

    seq: int
    text: str
    end: int
    size: int
    at: datetime | None
    folded: bool = False
    # On the tombstone a finish writes after the last delta: whether finishMessage's content
    # replaced the streamed text.
    replaced: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StreamEvent:
    """What a stream's writer announces to live readers (ChatTable.stream_listener), best
    effort: the table is what readers rely on.

    An append: its seq and delta, status "streaming". A finish: seq is the last delta folded,
    delta is "", status is how it ended, and `replaced` says whether finishMessage's content
    replaced the streamed text (a reader then reads the message for the final text).
    """

    conversation_id: str
    message_id: str
    seq: int
    delta: str
    status: MessageStatus
    replaced: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[RecordT]):
    """One page in display order, with exact knowledge of what lies on either side."""

    items: list[RecordT]
    has_previous: bool
    has_next: bool
