"""Plain records the storage layer takes and returns; their item form is built in items.py."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Literal, TypeAlias, TypeVar

from . import keys

Item: TypeAlias = dict[str, Any]
Role: TypeAlias = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = ("user", "assistant", "system")
RecordT = TypeVar("RecordT")

# Fixed width with microseconds and a Z suffix, so string order is time order.
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ONE_TICK = timedelta(microseconds=1)


class Unset:
    """Marks an optional update argument the caller did not give (None clears the value)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = Unset()


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    # fromisoformat reads our fixed-width "...Z" form exactly, at a fraction of strptime's cost
    # (which showed in profiles: every record carries two or three timestamps).
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None or moment.utcoffset():
        raise ValueError(f"not a UTC timestamp: {text!r}")
    return moment


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NewMessage:
    """A message as a client sends it; `id` is the client's idempotency key when given."""

    role: Role
    content: str
    id: str | None = None
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None


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

    @property
    def position(self) -> MessagePosition:
        return MessagePosition(created_at=self.created_at, message_id=self.id)

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
class ConversationRecord:
    id: str
    user_id: str
    title: str
    model_id: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    version: int
    last_message: MessageRecord | None

    @property
    def position(self) -> ConversationPosition:
        return ConversationPosition(updated_at=self.updated_at, conversation_id=self.id)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MessagePosition:
    created_at: datetime
    message_id: str

    def sort_key(self) -> str:
        return keys.message_sk(format_timestamp(self.created_at), self.message_id)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ConversationPosition:
    updated_at: datetime
    conversation_id: str

    def sort_key(self) -> str:
        return keys.recency_sk(format_timestamp(self.updated_at), self.conversation_id)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[RecordT]):
    """One page in display order, with exact knowledge of what lies on either side."""

    items: list[RecordT]
    has_previous: bool
    has_next: bool
