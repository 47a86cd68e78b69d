"""The Claude reader: answers from text blocks only, parent links, attachments noted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from graphql_api.transfer import ImportedConversation, RefusedConversation
from graphql_api.transfer.claude import convert
from tests.transfer_checks import (
    FIXTURES,
    assert_well_formed,
    by_title,
    imported,
    read_all,
    refused,
)

PLAIN = FIXTURES / "claude-conversations.json"


def test_the_answer_comes_from_text_blocks_never_the_flat_text_that_holds_the_thinking() -> None:
    sourdough = by_title(read_all(PLAIN), "Sourdough starter")
    answer = sourdough.messages[1]
    assert answer.role == "assistant"
    assert answer.content == "Not dead: it is hungry. Feed it twice a day at a 1:1:1 ratio."
    assert all("Acetone" not in m.content for m in sourdough.messages)
    assert dict(sourdough.notes.dropped) == {"thinking": 1}


def test_without_parent_links_the_messages_chain_in_list_order() -> None:
    sourdough = by_title(read_all(PLAIN), "Sourdough starter")
    assert [m.role for m in sourdough.messages] == ["user", "assistant", "user", "assistant"]
    assert sourdough.messages[0].parent_id is None
    for parent, child in zip(sourdough.messages, sourdough.messages[1:], strict=False):
        assert child.parent_id == parent.id
    assert sourdough.messages[1].created_at.microsecond == 250000
    assert sourdough.updated_at == sourdough.messages[-1].created_at


def test_parent_links_keep_an_edited_first_question_as_a_second_branch() -> None:
    contract = by_title(read_all(PLAIN), "Contract review")
    first_messages = [m for m in contract.messages if m.parent_id is None]
    assert [m.content for m in first_messages] == [
        "Is clause 7 of this lease fair?",
        "Is clause 7 of this lease fair? I live in Germany.",
    ]
    assert contract.active_leaf_id == "0f1e2d3c-2222-4aaa-8bbb-0000000000b4"
    assert contract.active_leaf_id == contract.messages[-1].id
    assert_well_formed(contract)


def test_attachments_and_files_are_noted_as_dropped_and_the_text_kept() -> None:
    contract = by_title(read_all(PLAIN), "Contract review")
    assert dict(contract.notes.dropped) == {"attachment": 1, "file": 1}
    assert contract.messages[0].content == "Is clause 7 of this lease fair?"


def test_tool_blocks_are_dropped_and_the_text_blocks_around_them_joined() -> None:
    (search,) = [c for c in imported(read_all(PLAIN)) if c.title == "Untitled"]
    assert search.messages[1].content == (
        "Let me look that up.\n\nTadej Pogačar won the 2024 Tour de France."
    )
    assert dict(search.notes.dropped) == {"tool use": 1, "tool result": 1}
    assert search.notes.repaired["empty title, imported as Untitled"] == 1


def test_an_old_export_without_blocks_uses_the_flat_text_and_fills_a_missing_time() -> None:
    haiku = by_title(read_all(PLAIN), "Haiku")
    question, poem = haiku.messages
    assert poem.content.startswith("Grey breath on the bay\n")
    assert poem.created_at == question.created_at + timedelta(microseconds=1)


def test_malformed_conversations_are_refused_with_their_reason_and_the_rest_read() -> None:
    results = read_all(PLAIN)
    assert len(imported(results)) == 4
    assert [r.describe() for r in refused(results)] == [
        f"{PLAIN}: conversation #4 (id 0f1e2d3c-5555-4aaa-8bbb-000000000c05, 'Broken'): "
        "message #0 uuid is missing",
        f"{PLAIN}: conversation #5 (id 0f1e2d3c-6666-4aaa-8bbb-000000000c06, 'Bad date'): "
        "created_at ('yesterday') is not an ISO-8601 timestamp",
    ]


def test_the_zip_reads_as_its_conversations_json() -> None:
    assert imported(read_all(FIXTURES / "claude-export.zip")) == imported(read_all(PLAIN))


def test_ids_are_the_export_uuids() -> None:
    sourdough = by_title(read_all(PLAIN), "Sourdough starter")
    assert sourdough.id == "0f1e2d3c-1111-4aaa-8bbb-000000000c01"
    assert sourdough.messages[0].id == "0f1e2d3c-1111-4aaa-8bbb-0000000000a1"


def _conversation(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "uuid": "1d2c3b4a-0000-4000-8000-000000000001",
        "name": "x",
        "created_at": "2024-07-01T10:00:00Z",
        "updated_at": "2024-07-01T10:00:00Z",
        "chat_messages": messages,
    }


def _message(uuid_tail: int, sender: str, text: str, **fields: Any) -> dict[str, Any]:
    return {
        "uuid": f"1d2c3b4a-0000-4000-8000-{uuid_tail:012x}",
        "sender": sender,
        "text": text,
        "content": [{"type": "text", "text": text}],
        "created_at": f"2024-07-01T10:00:{uuid_tail:02d}Z",
        **fields,
    }


def test_an_unknown_sender_is_skipped_and_its_reply_hangs_from_the_message_before() -> None:
    result = convert(
        _conversation(
            [
                _message(1, "human", "hi"),
                _message(2, "moderator", "..."),
                _message(3, "assistant", "hello"),
            ]
        ),
        file="f",
        index=0,
    )
    assert isinstance(result, ImportedConversation)
    first, reply = result.messages
    assert reply.parent_id == first.id
    assert dict(result.notes.skipped) == {"moderator message": 1}


def test_a_message_of_thinking_only_keeps_its_turn_as_a_note() -> None:
    thinking_only = _message(2, "assistant", "", content=[{"type": "thinking", "thinking": "hm"}])
    result = convert(_conversation([_message(1, "human", "hi"), thinking_only]), file="f", index=0)
    assert isinstance(result, ImportedConversation)
    assert result.messages[1].content == "[not imported: thinking]"


def test_content_that_is_not_a_list_refuses_the_conversation() -> None:
    broken = _message(1, "human", "hi", content="hi")
    result = convert(_conversation([broken]), file="f", index=3)
    assert isinstance(result, RefusedConversation)
    assert result.reasons == ("message #0 content is text, not a list",)
