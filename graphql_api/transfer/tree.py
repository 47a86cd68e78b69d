"""From a source's nodes to an ImportedConversation: ids, parent links, timestamps, order.

Every reader reduces its format to `Node`s, one per source message, including the ones it
skips (`message=None`) so that their children can hang from their nearest kept ancestor and
no branch is lost. The rules that make an import idempotent and storable live here, once:

- ids: a source id that is a UUID keeps its value (canonical lowercase); any other id maps to
  a uuid5 of the conversation and the node, so importing the file again gives the same ids;
- time: a child is never before its parent. A missing time inherits its parent's (the
  conversation's for a first message), and a time equal to or before the parent's moves to
  one microsecond after it;
- order: time, then id (the order storage keeps), which puts parents before children; a
  message that follows the active leaf (our format's first message without parentId) comes
  first, where importConversations reads it so.
"""

from __future__ import annotations

import dataclasses
import unicodedata
import uuid
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, NamedTuple

from .errors import MalformedConversation
from .model import Feedback, ImportedConversation, ImportedMessage, Notes, Origin, Role, Status

ONE_TICK: Final = timedelta(microseconds=1)
# The API's own limits (graphql_api.gql.validation), repeated so that this package stays
# importable without the GraphQL layer; an import that breaks them is refused by the server.
TITLE_MAX_CHARS: Final = 200
MODEL_ID_MAX_CHARS: Final = 128
ERROR_MESSAGE_MAX_BYTES: Final = 4 * 1024
UNTITLED: Final = "Untitled"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    role: Role
    content: str
    created_at: datetime | None
    model_id: str | None = None
    is_error: bool = False
    error_message: str | None = None
    feedback: Feedback | None = None
    status: Status = "complete"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """One source message; `message` is None when the reader skipped it (and noted why)."""

    source_id: str
    parent_source_id: str | None
    message: Message | None
    # Without a parent in the source, after whatever the conversation holds where it is
    # stored (ImportedMessage.follows_active_leaf); only for the first node.
    follows_active_leaf: bool = False


class Kept(NamedTuple):
    source_id: str
    message: Message


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Header:
    source_id: str
    title: str | None
    model_id: str | None
    created_at: datetime | None
    updated_at: datetime | None
    active_source_id: str | None = None
    pinned: bool = False
    archived: bool = False
    tags: tuple[str, ...] = ()


def canonical_id(value: str, *, namespace: uuid.UUID, scope: str) -> str:
    """`value` as a canonical UUID, or a stable uuid5 of it within `scope`.

    Non-UUID ids repeat across conversations (ChatGPT's "client-created-root"), hence the scope.
    """
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.uuid5(namespace, f"{scope}/{value}"))


def build(
    header: Header,
    nodes: Sequence[Node],
    *,
    namespace: uuid.UUID,
    origin: Origin,
    notes: Notes,
) -> ImportedConversation:
    conversation_id = canonical_id(header.source_id, namespace=namespace, scope="conversation")
    by_id = _index(nodes)
    kept_parent = _kept_parents(by_id, notes)
    order = _parents_first(nodes, kept_parent)
    created_at = _conversation_start(header, order, notes)
    times = _times(order, kept_parent, created_at, notes)
    ids = _ids(order, namespace=namespace, scope=conversation_id)
    messages = [
        _message(
            node,
            ids=ids,
            parent=kept_parent[node.source_id],
            at=times[node.source_id],
            notes=notes,
            follows_active_leaf=by_id[node.source_id].follows_active_leaf,
        )
        for node in order
    ]
    # Storage's own order (time, then id): a child is strictly later, so it follows its parent.
    # A message that follows the active leaf goes first, the one place where an import reads
    # an omitted parentId so; it has no parent here, so parents still come first.
    messages.sort(key=lambda m: (not m.follows_active_leaf, m.created_at, m.id))
    newest = max(messages, key=lambda m: (m.created_at, m.id), default=None)
    latest = created_at if newest is None else newest.created_at
    updated_at = max(header.updated_at or created_at, latest, created_at)
    return ImportedConversation(
        id=conversation_id,
        title=clean_title(header.title, notes),
        model_id=_clean_model(header.model_id, notes),
        created_at=created_at,
        updated_at=updated_at,
        messages=messages,
        active_leaf_id=_active_leaf(header.active_source_id, by_id, kept_parent, ids, newest),
        pinned=header.pinned,
        archived=header.archived,
        tags=header.tags,
        origin=origin,
        notes=notes,
    )


def _index(nodes: Sequence[Node]) -> dict[str, Node]:
    by_id: dict[str, Node] = {}
    for node in nodes:
        if node.source_id in by_id:
            raise MalformedConversation(f"message id {node.source_id!r} appears twice")
        by_id[node.source_id] = node
    return by_id


def _kept_parents(by_id: dict[str, Node], notes: Notes) -> dict[str, str | None]:
    """For every node, its nearest kept ancestor, walking up through skipped ones."""
    parents: dict[str, str | None] = {}
    for node_id, node in by_id.items():
        parent = node.parent_source_id
        if parent is not None and parent not in by_id:
            notes.repaired["message whose parent is missing, kept as a first message"] += 1
            parent = None
        parents[node_id] = parent
    resolved: dict[str, str | None] = {}
    for start in by_id:
        # Every node on a run of skipped parents shares the answer found at its top.
        chain: list[str] = []
        current = start
        while True:
            if current in resolved:
                answer = resolved[current]
                break
            if current in chain:
                raise MalformedConversation(f"the message tree has a cycle through {current!r}")
            chain.append(current)
            parent = parents[current]
            if parent is None or by_id[parent].message is not None:
                answer = parent
                break
            current = parent
        for node_id in chain:
            resolved[node_id] = answer
    return resolved


def _parents_first(nodes: Sequence[Node], kept_parent: dict[str, str | None]) -> list[Kept]:
    kept = [Kept(node.source_id, node.message) for node in nodes if node.message is not None]
    children: dict[str | None, list[Kept]] = {}
    for node in kept:
        children.setdefault(kept_parent[node.source_id], []).append(node)
    order: list[Kept] = []
    stack = list(reversed(children.get(None, [])))
    while stack:
        node = stack.pop()
        order.append(node)
        stack.extend(reversed(children.get(node.source_id, [])))
    if len(order) < len(kept):
        # Kept nodes that no walk from a first message reaches hang from each other.
        raise MalformedConversation("the message tree has a cycle")
    return order


def _conversation_start(header: Header, order: list[Kept], notes: Notes) -> datetime:
    known = [node.message.created_at for node in order if node.message.created_at]
    if header.created_at is not None:
        # A conversation cannot begin after its first message (clock skew between servers).
        if known and min(known) < header.created_at:
            notes.repaired["conversation start moved back to its first message"] += 1
            return min(known)
        return header.created_at
    if known:
        return min(known)
    if header.updated_at is not None:
        return header.updated_at
    raise MalformedConversation("no timestamp anywhere: neither the conversation nor a message")


def _times(
    order: list[Kept], kept_parent: dict[str, str | None], start: datetime, notes: Notes
) -> dict[str, datetime]:
    times: dict[str, datetime] = {}
    for node in order:
        parent = kept_parent[node.source_id]
        floor = None if parent is None else times[parent] + ONE_TICK
        moment = node.message.created_at
        if moment is None:
            notes.repaired["missing message time, taken from the one before"] += 1
            moment = start if floor is None else floor
        elif floor is not None and moment < floor:
            notes.repaired["message time not after its parent's, moved after it"] += 1
            moment = floor
        times[node.source_id] = moment
    return times


def _ids(order: list[Kept], *, namespace: uuid.UUID, scope: str) -> dict[str, str]:
    ids: dict[str, str] = {}
    seen: set[str] = set()
    for node in order:
        mapped = canonical_id(node.source_id, namespace=namespace, scope=scope)
        if mapped in seen:
            raise MalformedConversation(f"message id {node.source_id!r} appears twice")
        seen.add(mapped)
        ids[node.source_id] = mapped
    return ids


def _message(
    node: Kept,
    *,
    ids: dict[str, str],
    parent: str | None,
    at: datetime,
    notes: Notes,
    follows_active_leaf: bool,
) -> ImportedMessage:
    source = node.message
    content = valid_unicode(source.content)
    if content is not source.content:
        notes.repaired["invalid Unicode in a message replaced"] += 1
    error = source.error_message
    if error is not None:
        encoded = valid_unicode(error).encode()
        if len(encoded) > ERROR_MESSAGE_MAX_BYTES:
            notes.repaired["error message shortened"] += 1
        error = encoded[:ERROR_MESSAGE_MAX_BYTES].decode(errors="ignore")
    return ImportedMessage(
        id=ids[node.source_id],
        parent_id=None if parent is None else ids[parent],
        role=source.role,
        content=content,
        created_at=at,
        model_id=_clean_model(source.model_id, notes),
        is_error=source.is_error,
        error_message=error,
        feedback=source.feedback,
        follows_active_leaf=follows_active_leaf,
        status=source.status,
    )


def _active_leaf(
    active: str | None,
    by_id: dict[str, Node],
    kept_parent: dict[str, str | None],
    ids: dict[str, str],
    newest: ImportedMessage | None,
) -> str | None:
    if active in by_id:
        node = by_id[active]
        kept = node.source_id if node.message is not None else kept_parent[node.source_id]
        if kept is not None:
            return ids[kept]
    # Without a usable pointer, the newest message: a leaf, since children come later.
    return None if newest is None else newest.id


# --- text that the API would refuse, repaired rather than refusing the conversation.


def valid_unicode(text: str) -> str:
    """`text` with lone surrogates (which JSON allows and UTF-8 cannot encode) as U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def placeholder(dropped: Counter[str]) -> str:
    """What stands in for a message whose every part was dropped, so the turn is not lost."""
    listed = ", ".join(kind if n == 1 else f"{kind} ({n})" for kind, n in dropped.items())
    return f"[not imported: {listed}]"


def clean_title(title: str | None, notes: Notes) -> str:
    text = "".join(
        " " if unicodedata.category(char) == "Cc" else char for char in valid_unicode(title or "")
    ).strip()
    if not text:
        notes.repaired["empty title, imported as Untitled"] += 1
        return UNTITLED
    if len(text) > TITLE_MAX_CHARS:
        notes.repaired["title shortened"] += 1
        return text[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return text


def _clean_model(model_id: str | None, notes: Notes) -> str | None:
    if model_id is None:
        return None
    model_id = valid_unicode(model_id)
    if len(model_id) > MODEL_ID_MAX_CHARS or any(
        unicodedata.category(char) == "Cc" for char in model_id
    ):
        notes.repaired["unusable model name left out"] += 1
        return None
    return model_id or None
