"""Shared checks and paths for the transfer tests: the invariants every reader promises."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from graphql_api.transfer import (
    ExportReader,
    ImportedConversation,
    ReadResult,
    RefusedConversation,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "exports"
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def read_all(*paths: Path | str, format: str = "auto") -> list[ReadResult]:
    return list(ExportReader(list(paths), format=format))  # type: ignore[arg-type]


def imported(results: Sequence[ReadResult]) -> list[ImportedConversation]:
    return [result for result in results if isinstance(result, ImportedConversation)]


def refused(results: Sequence[ReadResult]) -> list[RefusedConversation]:
    return [result for result in results if isinstance(result, RefusedConversation)]


def by_title(results: Sequence[ReadResult], title: str) -> ImportedConversation:
    (found,) = [conversation for conversation in imported(results) if conversation.title == title]
    return found


def assert_well_formed(conversation: ImportedConversation) -> None:
    """Canonical ids, UTC times, parents first and strictly earlier, storage's order after
    the one message that follows the active leaf, if any."""
    assert _CANONICAL_UUID.fullmatch(conversation.id)
    assert conversation.created_at.utcoffset() == timedelta(0)
    assert conversation.updated_at >= conversation.created_at
    seen: set[str] = set()
    times: dict[str, datetime] = {}
    for index, message in enumerate(conversation.messages):
        assert _CANONICAL_UUID.fullmatch(message.id), message.id
        assert index == 0 or not message.follows_active_leaf
        assert message.parent_id is None or not message.follows_active_leaf
        assert message.id not in seen
        assert message.created_at.utcoffset() == timedelta(0)
        assert message.content
        if message.parent_id is not None:
            assert message.parent_id in times, "a parent comes before its children"
            assert message.created_at > times[message.parent_id]
        seen.add(message.id)
        times[message.id] = message.created_at
    order = [(m.created_at, m.id) for m in conversation.messages if not m.follows_active_leaf]
    assert order == sorted(order)
    if conversation.messages:
        assert conversation.created_at <= min(times.values())
        assert conversation.active_leaf_id in times
        assert conversation.updated_at >= max(times.values())
    else:
        assert conversation.active_leaf_id is None
