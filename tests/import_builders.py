"""Conversations to import, built from a small shape: named messages and their parents.

Ids are uuid5 of a namespace and a name, so the same shape under two namespaces gives two
conversations that differ only by their ids (two users cannot import the same ids), and a
stored message can be named back.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from graphql_api.storage.imports import ConversationImport, MessageImport

START = datetime.fromisoformat("2023-03-04T05:06:07.000008+00:00")
_NAMESPACE = uuid.UUID("c1f5a0a2-9d4e-4b7e-8f3a-5a1d2e3f4b5c")

# The branches of an edit and a regenerate: a1 answers q1; q2 is asked, answered by a2, then
# a2 is regenerated (a2b); then q2 is edited (q2b) and answered (a2c). Time order.
EDITED: tuple[tuple[str, str | None], ...] = (
    ("q1", None),
    ("a1", "q1"),
    ("q2", "a1"),
    ("a2", "q2"),
    ("a2b", "q2"),
    ("q2b", "a1"),
    ("a2c", "q2b"),
)


def message_id(namespace: str, name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{namespace}/{name}"))


def conversation_id(namespace: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, f"{namespace}/conversation"))


def name_of(namespace: str, shape: Sequence[tuple[str, str | None]], stored_id: str) -> str:
    for name, _ in shape:
        if message_id(namespace, name) == stored_id:
            return name
    raise KeyError(stored_id)


def depth_of(shape: Sequence[tuple[str, str | None]], name: str) -> int:
    parents = dict(shape)
    depth = 1
    while (parent := parents[name]) is not None:
        name = parent
        depth += 1
    return depth


def imported(
    namespace: str,
    shape: Sequence[tuple[str, str | None]],
    *,
    title: str = "Imported",
    start: datetime = START,
    step: timedelta = timedelta(seconds=30),
    updated_at: datetime | None = None,
    active_leaf: str | None = None,
) -> ConversationImport:
    """The conversation of `shape`, its messages `step` apart in the order given; users ask at
    odd depths, the assistant answers at even ones."""
    messages = [
        MessageImport(
            id=message_id(namespace, name),
            parent_id=None if parent is None else message_id(namespace, parent),
            role="user" if depth_of(shape, name) % 2 else "assistant",
            content=f"{name}: {namespace}",
            created_at=start + (index + 1) * step,
            model_id=None if depth_of(shape, name) % 2 else "gpt-4o",
        )
        for index, (name, parent) in enumerate(shape)
    ]
    return ConversationImport(
        id=conversation_id(namespace),
        title=title,
        model_id="gpt-4o",
        created_at=start,
        updated_at=updated_at,
        active_leaf_id=None if active_leaf is None else message_id(namespace, active_leaf),
        messages=messages,
    )


def long_branchy_shape(length: int) -> list[tuple[str, str | None]]:
    """A path of `length` messages, with a regenerated answer every 10 messages and an
    edit every 25, in time order: enough for several transactions and many segments."""
    shape: list[tuple[str, str | None]] = [("m0", None)]
    for index in range(1, length):
        shape.append((f"m{index}", f"m{index - 1}"))
        if index % 10 == 9:
            shape.append((f"r{index}", f"m{index - 1}"))
        if index % 25 == 24:
            shape.append((f"e{index}", f"m{index - 2}"))
            shape.append((f"e{index}a", f"e{index}"))
    return shape
