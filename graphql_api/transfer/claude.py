"""Claude's export: `conversations.json`, a list of conversations with their `chat_messages`.

A message's answer is in its `text` content blocks. The flat `text` field is read only when a
message has no blocks (older exports): with blocks present it can hold the thinking too.
Newer exports link each message to its parent (`parent_message_uuid`), which keeps the
branches of edited and retried messages; older ones are one chain in list order.
"""

from __future__ import annotations

import io
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any, Final

from . import jsonstream, tree
from .errors import MalformedConversation
from .jsonstream import as_list, as_object, iso_time, optional_str, required_str
from .model import Notes, Origin, ReadResult, RefusedConversation, Role

# See chatgpt.NAMESPACE: fixed forever, so that re-imports give the same ids.
NAMESPACE: Final = uuid.UUID("0b6f5b0e-93c4-4d0a-8d1e-1f2a3c4d5e02")
# What Claude writes as the parent of a conversation's first message.
_ROOT_PARENT: Final = "00000000-0000-4000-8000-000000000000"
_ROLES: Final[dict[str, Role]] = {"human": "user", "assistant": "assistant"}
_DROPPED_BLOCKS: Final = {
    "thinking": "thinking",
    "tool_use": "tool use",
    "tool_result": "tool result",
}


def read(stream: io.BufferedReader, name: str) -> Iterator[ReadResult]:
    for index, raw in jsonstream.conversation_list(stream, name=name, app="Claude"):
        yield convert(raw, file=name, index=index)


def convert(raw: object, *, file: str, index: int) -> ReadResult:
    origin = Origin(file=file, index=index)
    try:
        data = as_object(raw, "the conversation")
        name = data.get("name")
        origin = Origin(
            file=file,
            index=index,
            source_id=data.get("uuid") if isinstance(data.get("uuid"), str) else None,
            title=name if isinstance(name, str) else None,
        )
        notes = Notes()
        header = tree.Header(
            source_id=required_str(data.get("uuid"), "uuid"),
            title=optional_str(name, "name"),
            model_id=optional_str(data.get("model"), "model"),
            created_at=iso_time(data.get("created_at"), "created_at", naive_is_utc=True),
            updated_at=iso_time(data.get("updated_at"), "updated_at", naive_is_utc=True),
            active_source_id=optional_str(
                data.get("current_leaf_message_uuid"), "current_leaf_message_uuid"
            ),
        )
        messages = as_list(data.get("chat_messages") or [], "chat_messages")
        nodes = _nodes(messages, notes)
        return tree.build(header, nodes, namespace=NAMESPACE, origin=origin, notes=notes)
    except MalformedConversation as exc:
        return RefusedConversation(origin=origin, reasons=(str(exc),))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        return RefusedConversation(origin=origin, reasons=(f"unexpected structure: {exc}",))


def _nodes(messages: list[Any], notes: Notes) -> list[tree.Node]:
    nodes: list[tree.Node] = []
    previous: str | None = None
    for position, raw in enumerate(messages):
        what = f"message #{position}"
        message = as_object(raw, what)
        source_id = required_str(message.get("uuid"), f"{what} uuid")
        if "parent_message_uuid" in message:
            parent = optional_str(message["parent_message_uuid"], f"{what} parent_message_uuid")
            parent = None if parent == _ROOT_PARENT else parent
        else:
            parent = previous
        nodes.append(
            tree.Node(
                source_id=source_id,
                parent_source_id=parent,
                message=_message(message, what, notes),
            )
        )
        previous = source_id
    return nodes


def _message(message: Mapping[str, Any], what: str, notes: Notes) -> tree.Message | None:
    sender = optional_str(message.get("sender"), f"{what} sender") or "unknown"
    if sender not in _ROLES:
        notes.skipped[f"{sender} message"] += 1
        return None
    dropped: Counter[str] = Counter()
    blocks = as_list(message.get("content") or [], f"{what} content")
    if blocks:
        text = "\n\n".join(
            piece for piece in (_block(block, what, dropped) for block in blocks) if piece
        )
    else:
        text = optional_str(message.get("text"), f"{what} text") or ""
    dropped["attachment"] += len(as_list(message.get("attachments") or [], f"{what} attachments"))
    dropped["file"] += len(as_list(message.get("files") or [], f"{what} files"))
    dropped = +dropped  # drop the zero counts
    notes.dropped.update(dropped)
    if not text.strip():
        if not dropped:
            notes.skipped["empty message"] += 1
            return None
        text = tree.placeholder(dropped)
    return tree.Message(
        role=_ROLES[sender],
        content=text,
        created_at=iso_time(message.get("created_at"), f"{what} created_at", naive_is_utc=True),
    )


def _block(block: object, what: str, dropped: Counter[str]) -> str:
    content = as_object(block, f"{what} content block")
    kind = optional_str(content.get("type"), f"{what} block type") or "untyped block"
    if kind == "text":
        return optional_str(content.get("text"), f"{what} text block") or ""
    dropped[_DROPPED_BLOCKS.get(kind, kind)] += 1
    return ""
