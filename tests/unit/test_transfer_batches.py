"""Cutting a large conversation into import calls."""

from __future__ import annotations

import pytest

from graphql_api.transfer import import_batches
from graphql_api.transfer.batches import MESSAGE_OVERHEAD_BYTES
from tests.transfer_checks import FIXTURES, by_title, read_all


def test_parts_respect_the_message_count_and_keep_parents_first() -> None:
    lisbon = by_title(read_all(FIXTURES / "chatgpt-conversations.json"), "Lisbon trip")
    parts = list(import_batches(lisbon, max_messages=3, max_bytes=10**6))
    assert [len(part.messages) for part in parts] == [3, 3, 1]
    assert [m for part in parts for m in part.messages] == lisbon.messages
    assert all(part.id == lisbon.id and part.title == lisbon.title for part in parts)
    stored: set[str] = set()
    for part in parts:
        for message in part.messages:
            assert message.parent_id is None or message.parent_id in stored
            stored.add(message.id)


def test_parts_respect_the_byte_budget_and_a_big_message_travels_alone() -> None:
    lisbon = by_title(read_all(FIXTURES / "chatgpt-conversations.json"), "Lisbon trip")
    budget = 2 * MESSAGE_OVERHEAD_BYTES + 100
    parts = list(import_batches(lisbon, max_messages=100, max_bytes=budget))
    for part in parts:
        size = sum(len(m.content.encode()) + MESSAGE_OVERHEAD_BYTES for m in part.messages)
        assert size <= budget or len(part.messages) == 1
    assert len(parts) == 4


def test_an_empty_conversation_is_one_part() -> None:
    (empty,) = [
        c
        for c in read_all(FIXTURES / "chat-history-export.json")
        if getattr(c, "title", None) == "Empty one"
    ]
    assert list(import_batches(empty, max_messages=10, max_bytes=1000)) == [empty]  # type: ignore[arg-type]


def test_a_part_of_no_messages_is_refused_as_a_setting() -> None:
    lisbon = by_title(read_all(FIXTURES / "chatgpt-conversations.json"), "Lisbon trip")
    with pytest.raises(ValueError, match="max_messages"):
        list(import_batches(lisbon, max_messages=0, max_bytes=10))
