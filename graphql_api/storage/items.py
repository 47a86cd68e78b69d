"""Every item shape of the single table, built and read here and nowhere else.

Attribute values are written and read in DynamoDB's wire form directly: botocore's
TypeSerializer costs more than the rest of a request on the hot paths. Key strings come from
keys.py; this module puts them, and the attributes beside them, into items.

Item kinds (see keys.py for the key layout):
  conversation   USER#<user> / CONV#<id>, listed through GSI1 and GSI2, with a preview of its
                 last message
  project        USER#<user> / CONV#<id>, listed through GSI1, with its conversations' counts
  profile        USER#<user> / PROFILE, per-user counters and the change-log version
  change         USER#<user> / CHG#<version>, what one committed write changed
  message        CONV#<id> / MSG#<segment>#<depth>
  message marker CONV#<id> / MSGID#<messageId>, makes a retried add idempotent
  owner guard    CONV#<id> / OWNER, makes the first user to take a conversation id its owner
  tree           CONV#<id> / TREE, where the branches fork
  delta          CONV#<id> / DELTA#<messageId>#<seq>, one append to a streamed message, or
                 the tombstone a finish leaves in its place

Every item of a temporary conversation carries `ttl` (epoch seconds) from the start, so
DynamoDB's TTL sweep removes them all eventually; reads never wait for it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

from . import keys
from .records import (
    ROLES,
    ChangeKind,
    ChangeRecord,
    ConversationRecord,
    DeltaRecord,
    Feedback,
    Item,
    MessagePosition,
    MessageRecord,
    MessageStatus,
    ProjectRecord,
    Segment,
    Tree,
    format_timestamp,
    parse_timestamp,
)
from .text import fold

Key: TypeAlias = dict[str, Any]

# The `type` attribute of each kind, for people reading the table. Code branches on it only
# where two kinds share a key range: conversations and projects under CONV# (see keys.py).
CONVERSATION: Final = "conversation"
PROJECT: Final = "project"
MESSAGE: Final = "message"
MESSAGE_MARKER: Final = "messageId"
OWNER: Final = "owner"
TREE: Final = "tree"
CHANGE: Final = "change"
DELTA: Final = "delta"

TTL_ATTRIBUTE: Final = "ttl"
# The home list shows the start of the last message, never a large one whole.
PREVIEW_CHARS: Final = 1000
CHANGE_KINDS: Final[tuple[ChangeKind, ...]] = (
    "CONVERSATION_CREATED",
    "CONVERSATION_UPDATED",
    "CONVERSATION_DELETED",
    "MESSAGES_ADDED",
    "MESSAGE_FINISHED",
    "PROJECT_CREATED",
    "PROJECT_UPDATED",
    "PROJECT_DELETED",
)
# What a message item's `status` may hold; absent is "complete" (every message stored before
# streaming existed, and every one added whole). "interrupted" is a reading, never stored.
_STORED_STATUSES: Final[tuple[MessageStatus, ...]] = ("streaming", "stopped", "failed")


def key(pk: str, sk: str) -> Key:
    return {"PK": {"S": pk}, "SK": {"S": sk}}


def key_of(item: Mapping[str, Any]) -> tuple[str, str]:
    return item["PK"]["S"], item["SK"]["S"]


def _optional_s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None or "NULL" in value else str(value["S"])


def _s_or_null(value: str | None) -> dict[str, Any]:
    return {"NULL": True} if value is None else {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def ttl_value(expires_at: datetime) -> dict[str, str]:
    """The TTL attribute for an item that may go at `expires_at` (whole seconds, rounded up)."""
    return _n(math.ceil(expires_at.timestamp()))


def _with_ttl(item: Item, expires_at: datetime | None) -> Item:
    if expires_at is not None:
        item[TTL_ATTRIBUTE] = ttl_value(expires_at)
    return item


# --- conversations -------------------------------------------------------------------------


def conversation_key(user_id: str, conversation_id: str) -> Key:
    return key(keys.user_pk(user_id), keys.conversation_sk(conversation_id))


def node_key(user_id: str, node_id: str) -> Key:
    """Where the user's conversation or project with this id is, whichever it is."""
    return key(keys.user_pk(user_id), keys.node_sk(node_id))


def is_project(item: Mapping[str, Any]) -> bool:
    """Whether an item of the CONV# range is a project; anything else there is a
    conversation (conversation items have carried `type` from the start)."""
    return bool(item.get("type", {}).get("S") == PROJECT)


def listing(
    user_id: str, conversation_id: str, *, updated_at: str, pinned: bool, archived: bool
) -> dict[str, dict[str, str]]:
    """The GSI1 keys of a conversation: which list it is in, and where."""
    return {
        "GSI1PK": {"S": keys.listing_pk(user_id, archived=archived)},
        "GSI1SK": {"S": keys.recency_sk(updated_at, conversation_id, pinned=pinned)},
    }


def grouping(
    user_id: str,
    conversation_id: str,
    project_id: str | None,
    *,
    updated_at: str,
    pinned: bool,
    archived: bool,
) -> dict[str, dict[str, str]]:
    """The GSI2 keys of a conversation: its project's list (or the list of those in none),
    in the home list's order."""
    return {
        "GSI2PK": {"S": keys.grouping_pk(user_id, project_id, archived=archived)},
        "GSI2SK": {"S": keys.recency_sk(updated_at, conversation_id, pinned=pinned)},
    }


def conversation_item(conversation: ConversationRecord) -> Item:
    updated_at = format_timestamp(conversation.updated_at)
    item: Item = {
        **conversation_key(conversation.user_id, conversation.id),
        **listing(
            conversation.user_id,
            conversation.id,
            updated_at=updated_at,
            pinned=conversation.pinned,
            archived=conversation.archived,
        ),
        **grouping(
            conversation.user_id,
            conversation.id,
            conversation.project_id,
            updated_at=updated_at,
            pinned=conversation.pinned,
            archived=conversation.archived,
        ),
        "type": {"S": CONVERSATION},
        "conversationId": {"S": conversation.id},
        "userId": {"S": conversation.user_id},
        "title": {"S": conversation.title},
        # Folded copies that the title search and the tag filter compare against.
        "titleKey": {"S": fold(conversation.title)},
        "tagKeys": {"L": [{"S": fold(tag)} for tag in conversation.tags]},
        "modelId": _s_or_null(conversation.model_id),
        "createdAt": {"S": format_timestamp(conversation.created_at)},
        "updatedAt": {"S": updated_at},
        "messageCount": _n(conversation.message_count),
        "version": _n(conversation.version),
        "segmentCount": _n(conversation.segment_count),
        "pinned": {"BOOL": conversation.pinned},
        "archived": {"BOOL": conversation.archived},
        "tags": {"L": [{"S": tag} for tag in conversation.tags]},
    }
    if conversation.last_message is not None:
        item["lastMessage"] = {"M": preview_attributes(conversation.last_message)}
    if conversation.active_leaf is not None:
        item["activeLeaf"] = {"M": position_attributes(conversation.active_leaf)}
    if conversation.expires_at is not None:
        item["expiresAt"] = {"S": format_timestamp(conversation.expires_at)}
    if conversation.project_id is not None:
        item["projectId"] = {"S": conversation.project_id}
    return _with_ttl(item, conversation.expires_at)


def conversation_from_item(item: Mapping[str, Any]) -> ConversationRecord:
    last = item.get("lastMessage")
    leaf = item.get("activeLeaf")
    expires = item.get("expiresAt")
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
        active_leaf=None if leaf is None else position_from_attributes(leaf["M"]),
        segment_count=int(item.get("segmentCount", {"N": "1"})["N"]),
        pinned=bool(item.get("pinned", {}).get("BOOL", False)),
        archived=bool(item.get("archived", {}).get("BOOL", False)),
        tags=tuple(value["S"] for value in item.get("tags", {}).get("L", [])),
        expires_at=None if expires is None else parse_timestamp(expires["S"]),
        project_id=_optional_s(item, "projectId"),
    )


# --- projects ------------------------------------------------------------------------------


def project_key(user_id: str, project_id: str) -> Key:
    return key(keys.user_pk(user_id), keys.project_sk(project_id))


def project_counter(*, archived: bool, pinned: bool) -> str:
    """The project item's count of its conversations in one list."""
    return f"count#{'archived' if archived else 'active'}#{'pinned' if pinned else 'unpinned'}"


PROJECT_LISTS: Final = tuple(
    (archived, pinned) for archived in (False, True) for pinned in (False, True)
)


def project_listing(user_id: str, project_id: str, *, updated_at: str) -> Item:
    """The GSI1 keys of a project: the user's project list, most recently updated first."""
    return {
        "GSI1PK": {"S": keys.projects_pk(user_id)},
        "GSI1SK": {"S": keys.project_recency_sk(updated_at, project_id)},
    }


def project_item(project: ProjectRecord) -> Item:
    """A whole project item, as created (its counts as the record has them)."""
    updated_at = format_timestamp(project.updated_at)
    item: Item = {
        **project_key(project.user_id, project.id),
        **project_listing(project.user_id, project.id, updated_at=updated_at),
        "type": {"S": PROJECT},
        "projectId": {"S": project.id},
        "userId": {"S": project.user_id},
        "name": {"S": project.name},
        "instructions": _s_or_null(project.instructions),
        "createdAt": {"S": format_timestamp(project.created_at)},
        "updatedAt": {"S": updated_at},
        "version": _n(project.version),
    }
    for archived, pinned in PROJECT_LISTS:
        item[project_counter(archived=archived, pinned=pinned)] = _n(
            project.counts.get((archived, pinned), 0)
        )
    return item


def project_from_item(item: Mapping[str, Any]) -> ProjectRecord:
    counts = {
        (archived, pinned): int(value["N"])
        for archived, pinned in PROJECT_LISTS
        if (value := item.get(project_counter(archived=archived, pinned=pinned))) is not None
    }
    return ProjectRecord(
        id=item["projectId"]["S"],
        user_id=item["userId"]["S"],
        name=item["name"]["S"],
        instructions=_optional_s(item, "instructions"),
        created_at=parse_timestamp(item["createdAt"]["S"]),
        updated_at=parse_timestamp(item["updatedAt"]["S"]),
        version=int(item["version"]["N"]),
        counts=counts,
        deleting="deleting" in item,
    )


# --- the per-user profile ----------------------------------------------------------------


def profile_key(user_id: str) -> Key:
    return key(keys.user_pk(user_id), keys.PROFILE_SK)


def profile_item(user_id: str, *, counters: Mapping[str, int]) -> Item:
    """A whole profile holding `counters` (see profile.list_counter), for tools that write a
    user's data in bulk (seeding, benchmarks)."""
    return {**profile_key(user_id), **{name: _n(count) for name, count in counters.items()}}


def change_version_of(profile: Mapping[str, Any] | None) -> int:
    """How many changes the user's log holds, counting from 1; 0 before the first write."""
    return int((profile or {}).get("changeVersion", {}).get("N", "0"))


# --- the change log ------------------------------------------------------------------------


def change_item(user_id: str, change: ChangeRecord, *, expires_at: datetime) -> Item:
    item: Item = {
        **key(keys.user_pk(user_id), keys.change_sk(change.version)),
        "type": {"S": CHANGE},
        "version": _n(change.version),
        "kind": {"S": change.kind},
        "createdAt": {"S": format_timestamp(change.created_at)},
    }
    if change.conversation_id is not None:
        item["conversationId"] = {"S": change.conversation_id}
    if change.project_id is not None:
        item["projectId"] = {"S": change.project_id}
    if change.messages:
        item["messages"] = {"L": [{"M": position_attributes(p)} for p in change.messages]}
    return _with_ttl(item, expires_at)


def change_from_item(item: Mapping[str, Any]) -> ChangeRecord:
    kind = item["kind"]["S"]
    if kind not in CHANGE_KINDS:
        raise ValueError(f"stored change has unknown kind {kind!r}")
    return ChangeRecord(
        version=int(item["version"]["N"]),
        kind=kind,
        conversation_id=_optional_s(item, "conversationId"),
        created_at=parse_timestamp(item["createdAt"]["S"]),
        messages=tuple(
            position_from_attributes(value["M"]) for value in item.get("messages", {}).get("L", [])
        ),
        project_id=_optional_s(item, "projectId"),
    )


# --- messages ------------------------------------------------------------------------------


def position_attributes(position: MessagePosition) -> Item:
    return {
        "messageId": {"S": position.message_id},
        "segment": _n(position.segment),
        "depth": _n(position.depth),
    }


def position_from_attributes(item: Mapping[str, Any]) -> MessagePosition:
    return MessagePosition(
        segment=int(item["segment"]["N"]),
        depth=int(item["depth"]["N"]),
        message_id=item["messageId"]["S"],
    )


def message_attributes(message: MessageRecord) -> Item:
    """The attributes of a message, as its own item holds them. Content kept in the content
    bucket is named by its key, beside its start."""
    content = message.content if message.content_ref is None else message.content[:PREVIEW_CHARS]
    attributes: Item = {
        **position_attributes(message.position),
        "conversationId": {"S": message.conversation_id},
        "userId": {"S": message.user_id},
        "role": {"S": message.role},
        "content": {"S": content},
        "timestamp": {"S": format_timestamp(message.created_at)},
        "modelId": _s_or_null(message.model_id),
        "isError": {"BOOL": message.is_error},
        "errorMessage": _s_or_null(message.error_message),
        "parentId": _s_or_null(message.parent_id),
    }
    if message.feedback is not None:
        attributes["feedback"] = {"M": feedback_attributes(message.feedback)}
    if message.content_ref is not None:
        attributes["contentRef"] = {"S": message.content_ref}
    if message.status != "complete":
        stored = "streaming" if message.status == "interrupted" else message.status
        attributes["status"] = {"S": stored}
    return attributes


def _status_of(item: Mapping[str, Any]) -> MessageStatus:
    value = item.get("status")
    if value is None:
        return "complete"
    status = value["S"]
    if status not in _STORED_STATUSES:
        raise ValueError(f"stored message has unknown status {status!r}")
    return status  # type: ignore[no-any-return]


def preview_attributes(message: MessageRecord) -> Item:
    """A message as the conversation's lastMessage: its content cut to a bounded prefix."""
    attributes = message_attributes(message)
    attributes["content"] = {"S": message.content[:PREVIEW_CHARS]}
    attributes.pop("feedback", None)
    attributes.pop("contentRef", None)
    return attributes


def preview(message: MessageRecord) -> MessageRecord:
    """`message` as a conversation keeps it for its lastMessage (what preview_attributes
    stores): its content's start, no feedback."""
    return dataclasses.replace(
        message, content=message.content[:PREVIEW_CHARS], feedback=None, content_ref=None
    )


def content_ref_of(item: Mapping[str, Any]) -> str | None:
    """The content bucket key a message item names, if its content is kept there."""
    return _optional_s(item, "contentRef")


def message_item(message: MessageRecord, *, expires_at: datetime | None = None) -> Item:
    item: Item = {
        **key(
            keys.conversation_partition(message.conversation_id),
            keys.message_sk(message.segment, message.depth),
        ),
        "type": {"S": MESSAGE},
        **message_attributes(message),
    }
    return _with_ttl(item, expires_at)


def message_from_attributes(item: Mapping[str, Any]) -> MessageRecord:
    role = item["role"]["S"]
    if role not in ROLES:
        raise ValueError(f"stored message has unknown role {role!r}")
    feedback = item.get("feedback")
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
        parent_id=_optional_s(item, "parentId"),
        segment=int(item["segment"]["N"]),
        depth=int(item["depth"]["N"]),
        feedback=None if feedback is None else feedback_from_attributes(feedback["M"]),
        content_ref=_optional_s(item, "contentRef"),
        status=_status_of(item),
    )


def message_key(conversation_id: str, position: MessagePosition) -> Key:
    return key(keys.conversation_partition(conversation_id), position.sort_key())


def feedback_attributes(feedback: Feedback) -> Item:
    return {
        "rating": _s_or_null(feedback.rating),
        "comment": _s_or_null(feedback.comment),
        "updatedAt": {"S": format_timestamp(feedback.updated_at)},
    }


def feedback_from_attributes(item: Mapping[str, Any]) -> Feedback:
    rating = _optional_s(item, "rating")
    if rating not in (None, "up", "down"):
        raise ValueError(f"stored feedback has unknown rating {rating!r}")
    return Feedback(
        rating=rating,  # type: ignore[arg-type]
        comment=_optional_s(item, "comment"),
        updated_at=parse_timestamp(item["updatedAt"]["S"]),
    )


def marker_key(conversation_id: str, message_id: str) -> Key:
    return key(keys.conversation_partition(conversation_id), keys.message_id_sk(message_id))


def marker_item(message: MessageRecord, *, expires_at: datetime | None = None) -> Item:
    """The MSGID# item beside each message: a retry with the same id finds it and stops, and a
    message named by id (a parent, a leaf) is found in one read."""
    item: Item = {
        **marker_key(message.conversation_id, message.id),
        "type": {"S": MESSAGE_MARKER},
        **position_attributes(message.position),
    }
    return _with_ttl(item, expires_at)


def marked_position(marker: Mapping[str, Any]) -> MessagePosition:
    """The position of the message a marker item stands for."""
    return position_from_attributes(marker)


def stream_marker_item(
    message: MessageRecord, *, base: str, expires_at: datetime | None = None
) -> Item:
    """The marker of a streamed message. Beside the position it says who owns the stream
    (an append that misses its cache reads this item alone, before knowing the position),
    whether it still streams (a finish removes `streaming`), the message as started (so a
    finish answers, and refreshes the conversation's preview, without reading the message
    item) and the length of the base text the deltas follow (an imported message's text)."""
    item = marker_item(message, expires_at=expires_at)
    started = dataclasses.replace(message, content="", content_ref=None, stream_seq=None)
    item["userId"] = {"S": message.user_id}
    item["streaming"] = {"BOOL": True}
    item["message"] = {"M": message_attributes(started)}
    item["baseEnd"] = _n(len(base))
    item["baseBytes"] = _n(len(base.encode()))
    return item


def streamed_by(marker: Mapping[str, Any] | None) -> str | None:
    """Who streamed the message a marker stands for; None for one added whole (or no marker)."""
    return _optional_s(marker or {}, "userId")


def still_streaming(marker: Mapping[str, Any]) -> bool:
    return "streaming" in marker


def started_message(marker: Mapping[str, Any]) -> MessageRecord:
    """The message as a streaming marker keeps it: all but its text."""
    return message_from_attributes(marker["message"]["M"])


def base_length(marker: Mapping[str, Any]) -> tuple[int, int]:
    """(characters, UTF-8 bytes) of the text a streamed message started with."""
    return int(marker["baseEnd"]["N"]), int(marker["baseBytes"]["N"])


# --- deltas of streamed messages -------------------------------------------------------------


def delta_key(conversation_id: str, message_id: str, seq: int) -> Key:
    return key(keys.conversation_partition(conversation_id), keys.delta_sk(message_id, seq))


def delta_item(
    conversation_id: str,
    user_id: str,
    message_id: str,
    delta: DeltaRecord,
    *,
    expires_at: datetime | None = None,
) -> Item:
    """An append as stored: its text and where the streamed text ends with it. It holds only
    this delta, so its write units follow the delta's size, never the text before it."""
    item: Item = {
        **delta_key(conversation_id, message_id, delta.seq),
        "type": {"S": DELTA},
        "userId": {"S": user_id},
        "delta": {"S": delta.text},
        "end": _n(delta.end),
        "bytes": _n(delta.size),
    }
    if delta.at is not None:
        item["at"] = {"S": format_timestamp(delta.at)}
    return _with_ttl(item, expires_at)


def tombstone_item(
    conversation_id: str, user_id: str, message_id: str, delta: DeltaRecord, *, expires_at: datetime
) -> Item:
    """What a finished stream leaves at a delta's key: no text, where it ended, and a TTL. It
    must stay long after the last stream cache entry that may admit this seq has expired (see
    storage/streams.py): a key left empty would let such an entry append to a finished message."""
    item: Item = {
        **delta_key(conversation_id, message_id, delta.seq),
        "type": {"S": DELTA},
        "userId": {"S": user_id},
        "folded": {"BOOL": True},
        "end": _n(delta.end),
        "bytes": _n(delta.size),
    }
    if delta.replaced:
        item["replaced"] = {"BOOL": True}
    return _with_ttl(item, expires_at)


def delta_from_item(item: Mapping[str, Any]) -> DeltaRecord:
    at = item.get("at")
    return DeltaRecord(
        seq=keys.parse_delta_seq(item["SK"]["S"]),
        text=item.get("delta", {"S": ""})["S"],
        end=int(item["end"]["N"]),
        size=int(item["bytes"]["N"]),
        at=None if at is None else parse_timestamp(at["S"]),
        folded="folded" in item,
        replaced="replaced" in item,
    )


# --- the owner guard -----------------------------------------------------------------------


def owner_key(conversation_id: str) -> Key:
    return key(keys.conversation_partition(conversation_id), keys.OWNER_SK)


def owner_item(conversation_id: str, user_id: str, *, expires_at: datetime | None = None) -> Item:
    item = {**owner_key(conversation_id), "userId": {"S": user_id}, "type": {"S": OWNER}}
    return _with_ttl(item, expires_at)


def owned_by(owner: Mapping[str, Any] | None, user_id: str) -> bool:
    return bool((owner or {}).get("userId", {}).get("S") == user_id)


def marked_deleting(owner: Mapping[str, Any] | None) -> bool:
    """Whether the owner item says the conversation's partition is being purged."""
    return "deleting" in (owner or {})


# --- the branch tree -----------------------------------------------------------------------


def tree_key(conversation_id: str) -> Key:
    return key(keys.conversation_partition(conversation_id), keys.TREE_SK)


def _fork_name(segment: int, depth: int) -> str:
    return f"{segment}:{depth}"


def tree_item(conversation_id: str, tree: Tree, *, expires_at: datetime | None = None) -> Item:
    item: Item = {
        **tree_key(conversation_id),
        "type": {"S": TREE},
        "revision": _n(tree.revision),
        "segments": {
            "M": {
                str(number): {"M": {"parent": _n(s.parent), "forkDepth": _n(s.fork_depth)}}
                for number, s in tree.segments.items()
            }
        },
        "children": {
            "M": {
                _fork_name(*at): {"L": [{"S": child} for child in ids]}
                for at, ids in tree.children.items()
            }
        },
    }
    return _with_ttl(item, expires_at)


def tree_from_item(item: Mapping[str, Any] | None) -> Tree:
    if item is None:
        return Tree()
    segments = {
        int(number): Segment(
            number=int(number),
            parent=int(value["M"]["parent"]["N"]),
            fork_depth=int(value["M"]["forkDepth"]["N"]),
        )
        for number, value in item["segments"]["M"].items()
    }
    children: dict[tuple[int, int], tuple[str, ...]] = {}
    for name, value in item["children"]["M"].items():
        segment, depth = name.split(":")
        children[(int(segment), int(depth))] = tuple(child["S"] for child in value["L"])
    return Tree(segments=segments, children=children, revision=int(item["revision"]["N"]))


# --- expiry --------------------------------------------------------------------------------


def expired(item: Mapping[str, Any], now: datetime) -> bool:
    """Whether a temporary conversation's item is past its time, swept or not."""
    value = item.get(TTL_ATTRIBUTE)
    return value is not None and int(value["N"]) <= now.timestamp()


def expiry_of(item: Mapping[str, Any]) -> datetime | None:
    """When a temporary conversation's item may go (its TTL); None for every other item."""
    value = item.get(TTL_ATTRIBUTE)
    return None if value is None else datetime.fromtimestamp(int(value["N"]), UTC)


def now_epoch(now: datetime) -> dict[str, str]:
    return _n(int(now.astimezone(UTC).timestamp()))


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
