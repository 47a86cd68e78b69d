"""The ChatGPT reader on exports shaped like real ones: branches, tools, media, gaps."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from graphql_api.transfer import (
    ImportedConversation,
    MalformedExportError,
    RefusedConversation,
    read_conversations,
)
from graphql_api.transfer.chatgpt import convert
from tests.transfer_checks import (
    FIXTURES,
    assert_well_formed,
    by_title,
    imported,
    read_all,
    refused,
)

SINGLE = FIXTURES / "chatgpt-conversations.json"
T0 = datetime(2024, 6, 1, 8, 20, tzinfo=UTC)


def test_every_branch_is_kept_and_the_active_leaf_is_current_node() -> None:
    lisbon = by_title(read_all(SINGLE), "Lisbon trip")
    by_content = {message.content: message for message in lisbon.messages}
    first_answer = by_content[
        "**Day 1:** Alfama and the castle.\n**Day 2:** Belém.\n**Day 3:** Sintra."
    ]
    edited = by_content["What about food and wine?"]
    original = by_content["What about food?"]
    assert original.parent_id == edited.parent_id == first_answer.id
    regenerated = [m for m in lisbon.messages if m.parent_id == edited.id]
    assert [m.model_id for m in regenerated] == ["gpt-4o", "gpt-4o-mini"]
    assert lisbon.active_leaf_id == by_content["Bacalhau, then a glass of vinho verde."].id
    assert len(lisbon.messages) == 7
    assert_well_formed(lisbon)


def test_tool_calls_tool_results_and_hidden_system_prompts_are_skipped_and_counted() -> None:
    lisbon = by_title(read_all(SINGLE), "Lisbon trip")
    assert dict(lisbon.notes.skipped) == {
        "hidden system message": 1,
        "tool call": 1,
        "tool message": 1,
    }
    # The answer after the search hangs from the question, past the skipped call and result.
    answer = next(m for m in lisbon.messages if m.content.startswith("Go to a wine bar"))
    question = next(m for m in lisbon.messages if m.content == "What about food and wine?")
    assert answer.parent_id == question.id
    # The first kept message hung from the skipped system prompt: it is now a first message.
    assert lisbon.messages[0].parent_id is None
    assert lisbon.messages[0].role == "user"


def test_citation_markers_are_removed_from_the_text() -> None:
    lisbon = by_title(read_all(SINGLE), "Lisbon trip")
    answer = next(m for m in lisbon.messages if m.content.startswith("Go to a wine bar"))
    assert answer.content == "Go to a wine bar in Bairro Alto and order vinho verde."
    assert lisbon.notes.repaired["citation markers removed"] == 1


def test_multimodal_messages_keep_their_text_and_count_what_was_dropped() -> None:
    photo = by_title(read_all(SINGLE), "Whiteboard photo")
    contents = [m.content for m in photo.messages]
    assert contents[0] == "What does this whiteboard say?"
    # Voice mode: the transcription is the text; the audio is dropped.
    assert contents[2] == "Can you turn that into a checklist?"
    # A message of nothing but an image and a PDF keeps its turn, saying what is missing.
    assert contents[4] == "[not imported: image, file]"
    assert dict(photo.notes.dropped) == {"image": 2, "audio": 1, "file": 1}


def test_reasoning_and_custom_instructions_are_not_messages() -> None:
    photo = by_title(read_all(SINGLE), "Whiteboard photo")
    assert dict(photo.notes.skipped) == {
        "custom instructions": 1,
        "reasoning": 1,
        "reasoning summary": 1,
    }
    checklist = next(m for m in photo.messages if m.content.startswith("- [ ] Read"))
    voice_question = next(m for m in photo.messages if m.content.startswith("Can you turn"))
    assert checklist.parent_id == voice_question.id
    assert checklist.model_id == "o3"


def test_a_missing_message_time_is_one_microsecond_after_its_parent() -> None:
    photo = by_title(read_all(SINGLE), "Whiteboard photo")
    question, answer = photo.messages[:2]
    assert answer.created_at == question.created_at + timedelta(microseconds=1)
    assert photo.notes.repaired["missing message time, taken from the one before"] == 1


def test_an_untitled_conversation_without_its_own_time_takes_its_first_message_time() -> None:
    untitled = [c for c in imported(read_all(SINGLE)) if c.model_id == "gpt-4"]
    (conversation,) = untitled
    assert conversation.title == "Untitled"
    assert conversation.created_at == conversation.messages[0].created_at
    assert conversation.created_at == T0 + timedelta(days=2)


def test_equal_times_along_a_chain_move_forward_by_one_microsecond() -> None:
    (conversation,) = [c for c in imported(read_all(SINGLE)) if c.model_id == "gpt-4"]
    question, code = conversation.messages[:2]
    assert code.content == "```python\n2**100\n```"
    assert code.created_at == question.created_at + timedelta(microseconds=1)
    assert conversation.notes.skipped["tool message"] == 1


def test_a_system_error_becomes_an_error_message() -> None:
    (conversation,) = [c for c in imported(read_all(SINGLE)) if c.model_id == "gpt-4"]
    last = conversation.messages[-1]
    assert last.is_error
    assert last.error_message == "The model is overloaded. Please try again."
    assert conversation.active_leaf_id == last.id


def test_an_archived_conversation_with_no_times_but_its_own_keeps_its_chain_in_order() -> None:
    (pirate,) = [c for c in imported(read_all(SINGLE)) if c.archived]
    assert pirate.title == "Untitled"
    assert [m.role for m in pirate.messages] == ["system", "user", "assistant"]
    assert pirate.messages[0].created_at == pirate.created_at
    assert [m.created_at - pirate.created_at for m in pirate.messages] == [
        timedelta(microseconds=n) for n in range(3)
    ]
    assert pirate.model_id is None
    assert pirate.messages[-1].model_id == "text-davinci-002-render-sha"


def test_a_malformed_conversation_is_refused_by_name_and_the_rest_are_read() -> None:
    results = read_all(SINGLE)
    assert [type(r).__name__ for r in results] == [
        "ImportedConversation",
        "ImportedConversation",
        "ImportedConversation",
        "RefusedConversation",
        "ImportedConversation",
    ]
    (bad,) = refused(results)
    assert bad.describe() == (
        f"{SINGLE}: conversation #3 (id 6653c4d5-3b2a-8003-d4e6-2c3d4e5f6071, 'Broken one'): "
        "mapping is a list, not an object"
    )


def test_every_conversation_read_is_well_formed() -> None:
    for conversation in imported(read_all(SINGLE)):
        assert_well_formed(conversation)


@pytest.mark.parametrize(
    "paths",
    [
        [FIXTURES / "chatgpt-split"],
        [
            FIXTURES / "chatgpt-split" / "conversations-000.json",
            FIXTURES / "chatgpt-split" / "conversations-001.json",
        ],
        [FIXTURES / "chatgpt-export.zip"],
        [FIXTURES / "chatgpt-export-split.zip"],
    ],
    ids=["folder", "split-files", "zip", "split-zip"],
)
def test_split_files_folders_and_zips_read_as_the_single_file(paths: list[Path]) -> None:
    expected = imported(read_all(SINGLE))
    got = imported(read_all(*paths))
    assert got == expected
    assert [c.notes for c in got] == [c.notes for c in expected]
    assert len(refused(read_all(*paths))) == 1


def test_reading_again_gives_the_same_ids() -> None:
    assert imported(read_all(SINGLE)) == imported(read_all(FIXTURES / "chatgpt-export.zip"))
    first, second = read_all(SINGLE), read_all(SINGLE)
    assert [c.id for c in imported(first)] == [c.id for c in imported(second)]


def _small_conversation(conversation_id: str, node_ids: list[str]) -> dict[str, Any]:
    root, *rest = node_ids
    mapping: dict[str, Any] = {root: {"id": root, "message": None, "parent": None, "children": []}}
    parent = root
    for position, node_id in enumerate(rest):
        mapping[parent]["children"].append(node_id)
        mapping[node_id] = {
            "id": node_id,
            "parent": parent,
            "children": [],
            "message": {
                "id": node_id,
                "author": {"role": "user" if position % 2 == 0 else "assistant"},
                "create_time": 1717230000.5 + position,
                "content": {"content_type": "text", "parts": [f"message {position}"]},
                "metadata": {},
                "recipient": "all",
            },
        }
        parent = node_id
    return {
        "title": "Ids",
        "create_time": 1717230000.0,
        "update_time": None,
        "mapping": mapping,
        "current_node": parent,
        "id": conversation_id,
    }


def test_ids_that_are_not_uuids_map_to_the_same_uuids_every_time_within_their_conversation() -> (
    None
):
    raw = _small_conversation("legacy-7", ["client-created-root", "node-a", "node-b"])
    first = convert(raw, file="f", index=0)
    again = convert(copy.deepcopy(raw), file="f", index=0)
    elsewhere = convert(
        _small_conversation("legacy-8", ["client-created-root", "node-a", "node-b"]),
        file="f",
        index=1,
    )
    assert isinstance(first, ImportedConversation)
    assert isinstance(again, ImportedConversation)
    assert isinstance(elsewhere, ImportedConversation)
    assert first == again
    assert str(uuid.UUID(first.id)) == first.id
    assert all(str(uuid.UUID(m.id)) == m.id for m in first.messages)
    assert {m.id for m in first.messages}.isdisjoint(m.id for m in elsewhere.messages)


def test_uppercase_uuids_become_canonical_lowercase() -> None:
    node = "AAA1B2C3-0000-4000-8000-00000000000F"
    raw = _small_conversation("6650F3A1-8C2E-8003-9A1B-2F3E4D5C6B7A", ["root", node])
    conversation = convert(raw, file="f", index=0)
    assert isinstance(conversation, ImportedConversation)
    assert conversation.id == "6650f3a1-8c2e-8003-9a1b-2f3e4d5c6b7a"
    assert conversation.messages[0].id == node.lower()


def test_a_cycle_in_the_mapping_is_refused() -> None:
    raw = _small_conversation("c0ffee00-0000-4000-8000-000000000001", ["r", "a", "b"])
    raw["mapping"]["a"]["parent"] = "b"
    result = convert(raw, file="f", index=4)
    assert isinstance(result, RefusedConversation)
    assert "cycle" in result.describe()
    assert result.describe().startswith("f: conversation #4 (id c0ffee00-")


def test_a_node_whose_parent_is_missing_becomes_a_first_message() -> None:
    raw = _small_conversation("c0ffee00-0000-4000-8000-000000000002", ["r", "a", "b", "c"])
    raw["mapping"]["b"]["parent"] = "gone"
    result = convert(raw, file="f", index=0)
    assert isinstance(result, ImportedConversation)
    assert [m.parent_id is None for m in result.messages] == [True, True, False]
    assert result.notes.repaired["message whose parent is missing, kept as a first message"] == 1


def test_a_conversation_without_any_time_is_refused() -> None:
    raw = _small_conversation("c0ffee00-0000-4000-8000-000000000003", ["r", "a"])
    raw["create_time"] = None
    raw["mapping"]["a"]["message"]["create_time"] = None
    result = convert(raw, file="f", index=0)
    assert isinstance(result, RefusedConversation)
    assert result.reasons == ("no timestamp anywhere: neither the conversation nor a message",)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda raw: raw.pop("id"), "it has no id"),
        (lambda raw: raw.update(create_time="monday"), "create_time is text, not epoch seconds"),
        (lambda raw: raw.update(create_time=1e20), "create_time (1e+20) is out of range"),
        (lambda raw: raw["mapping"].update(r=7), "node 'r' is a number, not an object"),
    ],
)
def test_malformed_fields_are_named_in_the_refusal(change: Any, reason: str) -> None:
    raw = _small_conversation("c0ffee00-0000-4000-8000-000000000004", ["r", "a"])
    change(raw)
    result = convert(raw, file="f", index=0)
    assert isinstance(result, RefusedConversation)
    assert result.reasons == (reason,)


def test_a_file_that_breaks_off_names_the_conversation_after_yielding_the_ones_before() -> None:
    path = FIXTURES / "chatgpt-truncated.json"
    stream = read_conversations([path], "chatgpt")
    got = [next(stream), next(stream)]
    assert [c.title for c in imported(got)] == ["Lisbon trip", "Whiteboard photo"]
    with pytest.raises(MalformedExportError) as raised:
        next(stream)
    assert str(raised.value).startswith(f"{path}: the JSON breaks off in conversation #2:")


def test_a_file_that_is_not_a_list_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    path.write_text(json.dumps({"conversations": []}))
    with pytest.raises(MalformedExportError, match="a ChatGPT export is a JSON list"):
        read_all(path, format="chatgpt")
