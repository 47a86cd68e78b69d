"""The rules an import is held to, before anything is read or written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graphql_api.domain import rules
from graphql_api.domain.imports import (
    FeedbackDraft,
    ImportConversationDraft,
    ImportMessageDraft,
    checked_batch,
    checked_conversation,
)
from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.records import UNSET, Unset

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CONVERSATION_ID = "0b6a8f6e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"
FIRST = "1b6a8f6e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"
SECOND = "2b6a8f6e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"
THIRD = "3b6a8f6e-2c1d-4e5f-8a9b-0c1d2e3f4a5b"
LIMITS = InputLimits(max_content_bytes=100 * 1024)


def message(
    message_id: str, parent_id: str | Unset | None = None, **fields: object
) -> ImportMessageDraft:
    values: dict[str, object] = {
        "id": message_id,
        "parent_id": parent_id,
        "role": "user",
        "content": "hello",
        "created_at": NOW - timedelta(days=1),
        **fields,
    }
    return ImportMessageDraft(**values)  # type: ignore[arg-type]


def conversation(*messages: ImportMessageDraft, **fields: object) -> ImportConversationDraft:
    values: dict[str, object] = {
        "id": CONVERSATION_ID,
        "title": "  A title  ",
        "created_at": NOW - timedelta(days=2),
        "messages": list(messages),
        **fields,
    }
    return ImportConversationDraft(**values)  # type: ignore[arg-type]


def check(draft: ImportConversationDraft) -> None:
    checked_conversation(draft, limits=LIMITS, now=NOW, field="c")


def test_a_checked_conversation_is_what_storage_takes() -> None:
    rated = FeedbackDraft(rating="up", comment=None, updated_at=NOW)
    checked = checked_conversation(
        conversation(
            message(FIRST.upper()),
            message(SECOND, FIRST, role="assistant", feedback=rated),
            tags=["work", "Work"],
        ),
        limits=LIMITS,
        now=NOW,
        field="c",
    )

    assert (checked.id, checked.title, checked.tags) == (CONVERSATION_ID, "A title", ("work",))
    assert [m.id for m in checked.messages] == [FIRST, SECOND]
    assert checked.messages[1].parent_id == FIRST
    assert checked.messages[1].feedback is not None
    assert checked.messages[1].feedback.rating == "up"


@pytest.mark.parametrize(
    ("draft", "field"),
    [
        (conversation(message(FIRST, SECOND), message(SECOND)), "c.messages[0].parentId"),
        (conversation(message(FIRST, FIRST)), "c.messages[0].parentId"),
        (conversation(message(FIRST), message(FIRST)), "c.messages[1].id"),
        (conversation(message(FIRST, role="tool")), "c.messages[0].role"),
        (conversation(message(FIRST, content="")), "c.messages[0].content"),
        (conversation(message(FIRST, content="x" * 200_000)), "c.messages[0].content"),
        (
            conversation(message(FIRST, created_at=NOW + timedelta(days=2))),
            "c.messages[0].createdAt",
        ),
        (conversation(updated_at=NOW - timedelta(days=3)), "c.updatedAt"),
        (conversation(created_at=datetime(2025, 1, 1)), "c.createdAt"),
        (conversation(active_leaf_id="leaf"), "c.activeLeafId"),
        (
            conversation(
                message(FIRST, feedback=FeedbackDraft(rating="meh", comment=None, updated_at=NOW))
            ),
            "c.messages[0].feedback.rating",
        ),
    ],
)
def test_each_bad_field_is_named(draft: ImportConversationDraft, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        check(draft)

    assert refused.value.field == field


def test_a_parent_left_out_reaches_storage_as_unset_and_a_null_one_as_none() -> None:
    omitted = ImportMessageDraft(id=SECOND, role="user", content="hi", created_at=NOW)
    checked = checked_conversation(
        conversation(message(FIRST, None), omitted, message(THIRD, UNSET)),
        limits=LIMITS,
        now=NOW,
        field="c",
    )

    assert [m.parent_id for m in checked.messages] == [None, UNSET, UNSET]


def test_a_clock_a_little_ahead_is_tolerated() -> None:
    check(conversation(message(FIRST, created_at=NOW + rules.IMPORT_CLOCK_SKEW)))


def test_one_call_holds_each_conversation_once() -> None:
    with pytest.raises(ValidationError) as refused:
        checked_batch([conversation(), conversation()], limits=LIMITS, now=NOW)

    assert refused.value.field == "conversations[1].id"


@pytest.mark.parametrize(
    ("conversations", "messages", "content_bytes"),
    [
        (rules.IMPORT_MAX_CONVERSATIONS + 1, 0, 0),
        (1, rules.IMPORT_MAX_MESSAGES + 1, 0),
        (1, 2, rules.IMPORT_MAX_BYTES + 1),
        (0, 0, 0),
    ],
)
def test_a_call_over_its_bound_is_refused(
    conversations: int, messages: int, content_bytes: int
) -> None:
    with pytest.raises(ValidationError):
        rules.import_size(
            conversations=conversations, messages=messages, content_bytes=content_bytes
        )


def test_a_call_at_its_bound_is_accepted() -> None:
    rules.import_size(
        conversations=rules.IMPORT_MAX_CONVERSATIONS,
        messages=rules.IMPORT_MAX_MESSAGES,
        content_bytes=rules.IMPORT_MAX_BYTES,
    )


def test_one_message_larger_than_a_calls_content_goes_alone() -> None:
    rules.import_size(conversations=1, messages=1, content_bytes=4 * rules.IMPORT_MAX_BYTES)
