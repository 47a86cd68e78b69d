"""Plain records returned by the storage layer, and their mapping to and from DynamoDB items."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, TypeAlias, TypeVar

from . import keys

Item: TypeAlias = dict[str, Any]
Role: TypeAlias = Literal["user", "assistant", "system"]
ROLES: tuple[Role, ...] = ("user", "assistant", "system")
RecordT = TypeVar("RecordT")

# Fixed width with microseconds and a Z suffix, so string order is time order.
_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
ONE_TICK = timedelta(microseconds=1)


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


# --- item mapping. Attribute values are written and read in DynamoDB's wire form directly:
# botocore's TypeSerializer costs more than the rest of a request on the hot paths.


def _optional_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _s_or_null(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def message_attributes(message: MessageRecord) -> Item:
    """The attributes of a message, shared by the message item and the conversation preview."""
    return {
        "messageId": {"S": message.id},
        "conversationId": {"S": message.conversation_id},
        "userId": {"S": message.user_id},
        "role": {"S": message.role},
        "content": {"S": message.content},
        "timestamp": {"S": format_timestamp(message.created_at)},
        "modelId": _s_or_null(message.model_id),
        "isError": {"BOOL": message.is_error},
        "errorMessage": _s_or_null(message.error_message),
    }


def message_item(message: MessageRecord) -> Item:
    timestamp = format_timestamp(message.created_at)
    return {
        "PK": {"S": keys.conversation_partition(message.conversation_id)},
        "SK": {"S": keys.message_sk(timestamp, message.id)},
        "type": {"S": "message"},
        **message_attributes(message),
    }


def message_from_attributes(item: Mapping[str, Any]) -> MessageRecord:
    role = item["role"]["S"]
    if role not in ROLES:
        raise ValueError(f"stored message has unknown role {role!r}")
    return MessageRecord(
        id=item["messageId"]["S"],
        conversation_id=item["conversationId"]["S"],
        user_id=item["userId"]["S"],
        role=role,
        content=item["content"]["S"],
        created_at=parse_timestamp(item["timestamp"]["S"]),
        model_id=_optional_s(item, "modelId"),
        is_error=bool(item["isError"]["BOOL"]),
        error_message=_optional_s(item, "errorMessage"),
    )


def conversation_item(conversation: ConversationRecord) -> Item:
    updated_at = format_timestamp(conversation.updated_at)
    item: Item = {
        "PK": {"S": keys.user_pk(conversation.user_id)},
        "SK": {"S": keys.conversation_sk(conversation.id)},
        "GSI1PK": {"S": keys.user_pk(conversation.user_id)},
        "GSI1SK": {"S": keys.recency_sk(updated_at, conversation.id)},
        "type": {"S": "conversation"},
        "conversationId": {"S": conversation.id},
        "userId": {"S": conversation.user_id},
        "title": {"S": conversation.title},
        "modelId": _s_or_null(conversation.model_id),
        "createdAt": {"S": format_timestamp(conversation.created_at)},
        "updatedAt": {"S": updated_at},
        "messageCount": {"N": str(conversation.message_count)},
        "version": {"N": str(conversation.version)},
    }
    if conversation.last_message is not None:
        item["lastMessage"] = {"M": message_attributes(conversation.last_message)}
    return item


def conversation_from_item(item: Mapping[str, Any]) -> ConversationRecord:
    last = item.get("lastMessage")
    return ConversationRecord(
        id=item["conversationId"]["S"],
        user_id=item["userId"]["S"],
        title=item["title"]["S"],
        model_id=_optional_s(item, "modelId"),
        created_at=parse_timestamp(item["createdAt"]["S"]),
        updated_at=parse_timestamp(item["updatedAt"]["S"]),
        message_count=int(item["messageCount"]["N"]),
        version=int(item["version"]["N"]),
        last_message=None if last is None else message_from_attributes(last["M"]),
    )


def item_size(item: Mapping[str, Any]) -> int:
    """DynamoDB's billed size of an item: attribute names plus values, in UTF-8 bytes."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind in ("S", "B"):
        return len(inner.encode()) if kind == "S" else len(inner)
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 2
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    raise ValueError(f"unsupported attribute type {kind}")
