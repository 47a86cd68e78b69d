"""Every item shape of the single table, built and read here and nowhere else.

Attribute values are written and read in DynamoDB's wire form directly: botocore's
TypeSerializer costs more than the rest of a request on the hot paths. Key strings come from
keys.py; this module puts them, and the attributes beside them, into items.

Item kinds (see keys.py for the key layout):
  conversation   USER#<user> / CONV#<id>, listed through GSI1, with a copy of its last message
  profile        USER#<user> / PROFILE, per-user counters
  message        CONV#<id> / MSG#<timestamp>#<messageId>
  message marker CONV#<id> / MSGID#<messageId>, makes a retried add idempotent
  owner guard    CONV#<id> / OWNER, makes the first user to take a conversation id its owner
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypeAlias

from . import keys
from .records import (
    ROLES,
    ConversationRecord,
    Item,
    MessageRecord,
    format_timestamp,
    parse_timestamp,
)

Key: TypeAlias = dict[str, Any]

# The `type` attribute of each kind, for people reading the table; code never branches on it.
CONVERSATION: Final = "conversation"
MESSAGE: Final = "message"
MESSAGE_MARKER: Final = "messageId"
OWNER: Final = "owner"


def key(pk: str, sk: str) -> Key:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


def _optional_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _s_or_null(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


# --- conversations -------------------------------------------------------------------------


def conversation_key(user_id: str, conversation_id: str) -> Key:
    return key(keys.user_pk(user_id), keys.conversation_sk(conversation_id))


def conversation_item(conversation: ConversationRecord) -> Item:
    updated_at = format_timestamp(conversation.updated_at)
    item: Item = {
        **conversation_key(conversation.user_id, conversation.id),
        "GSI1PK": {"S": keys.user_pk(conversation.user_id)},
        "GSI1SK": {"S": keys.recency_sk(updated_at, conversation.id)},
        "type": {"S": CONVERSATION},
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


def recency(updated_at: str, conversation_id: str) -> dict[str, str]:
    """The GSI1SK value of a conversation last updated at `updated_at`."""
    return {"S": keys.recency_sk(updated_at, conversation_id)}


# --- the per-user profile ----------------------------------------------------------------


def profile_key(user_id: str) -> Key:
    return key(keys.user_pk(user_id), keys.PROFILE_SK)


def profile_item(user_id: str, *, conversation_count: int) -> Item:
    """A whole profile, for tools that write a user's data in bulk (seeding, benchmarks)."""
    return {**profile_key(user_id), "conversationCount": {"N": str(conversation_count)}}


def conversation_count_of(profile: Mapping[str, Any] | None) -> int:
    return int((profile or {}).get("conversationCount", {}).get("N", "0"))


# --- messages ------------------------------------------------------------------------------


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


def message_sort_key(message: MessageRecord) -> str:
    return keys.message_sk(format_timestamp(message.created_at), message.id)


def message_item(message: MessageRecord) -> Item:
    return {
        **key(keys.conversation_partition(message.conversation_id), message_sort_key(message)),
        "type": {"S": MESSAGE},
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


def marker_item(message: MessageRecord) -> Item:
    """The MSGID# item beside each message: a retry with the same id finds it and stops."""
    return {
        **key(keys.conversation_partition(message.conversation_id), keys.message_id_sk(message.id)),
        "type": {"S": MESSAGE_MARKER},
        "messageSK": {"S": message_sort_key(message)},
    }


def marked_message_sk(marker: Mapping[str, Any]) -> str:
    """The sort key of the message a marker item stands for."""
    return str(marker["messageSK"]["S"])


# --- the owner guard -----------------------------------------------------------------------


def owner_key(conversation_id: str) -> Key:
    return key(keys.conversation_partition(conversation_id), keys.OWNER_SK)


def owner_item(conversation_id: str, user_id: str) -> Item:
    return {**owner_key(conversation_id), "userId": {"S": user_id}, "type": {"S": OWNER}}


def owned_by(owner: Mapping[str, Any] | None, user_id: str) -> bool:
    return bool((owner or {}).get("userId", {}).get("S") == user_id)


def marked_deleting(owner: Mapping[str, Any] | None) -> bool:
    """Whether the owner item says the conversation's partition is being purged."""
    return "deleting" in (owner or {})


# --- sizes ---------------------------------------------------------------------------------


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
