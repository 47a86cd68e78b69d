"""The rules every reader shares: kept ancestors, ids, times, order and repairs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from graphql_api.transfer.errors import MalformedConversation
from graphql_api.transfer.model import ImportedConversation, Notes, Origin
from graphql_api.transfer.tree import Header, Message, Node, build, canonical_id
from tests.transfer_checks import assert_well_formed

NAMESPACE = uuid.UUID("00000000-0000-4000-8000-0000000000ee")
T0 = datetime(2024, 1, 1, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def say(text: str, at: datetime | None, role: str = "user") -> Message:
    return Message(role=role, content=text, created_at=at)  # type: ignore[arg-type]


def header(**changes: object) -> Header:
    fields: dict[str, object] = {
        "source_id": "conversation-1",
        "title": "A title",
        "model_id": None,
        "created_at": T0,
        "updated_at": None,
    }
    fields.update(changes)
    return Header(**fields)  # type: ignore[arg-type]


def built(nodes: list[Node], **changes: object) -> ImportedConversation:
    conversation = build(
        header(**changes),
        nodes,
        namespace=NAMESPACE,
        origin=Origin(file="f", index=0),
        notes=Notes(),
    )
    assert_well_formed(conversation)
    return conversation


def contents(conversation: ImportedConversation) -> dict[str, str | None]:
    by_id = {m.id: m.content for m in conversation.messages}
    return {m.content: by_id.get(m.parent_id or "") for m in conversation.messages}


def test_children_of_a_run_of_skipped_nodes_hang_from_the_nearest_kept_ancestor() -> None:
    conversation = built(
        [
            Node(source_id="a", parent_source_id=None, message=say("a", T0)),
            Node(source_id="s1", parent_source_id="a", message=None),
            Node(source_id="s2", parent_source_id="s1", message=None),
            Node(source_id="b", parent_source_id="s2", message=say("b", T0 + TICK * 5)),
            Node(source_id="c", parent_source_id="s1", message=say("c", T0 + TICK * 6)),
            Node(source_id="s3", parent_source_id=None, message=None),
            Node(source_id="d", parent_source_id="s3", message=say("d", T0 + TICK * 7)),
        ]
    )
    assert contents(conversation) == {"a": None, "b": "a", "c": "a", "d": None}


def test_a_child_dated_before_its_parent_moves_after_it_and_its_descendants_follow() -> None:
    conversation = built(
        [
            Node(source_id="a", parent_source_id=None, message=say("a", T0 + timedelta(hours=1))),
            Node(source_id="b", parent_source_id="a", message=say("b", T0)),
            Node(source_id="c", parent_source_id="b", message=say("c", T0 + TICK)),
        ]
    )
    a, b, c = conversation.messages
    assert (b.created_at - a.created_at, c.created_at - b.created_at) == (TICK, TICK)
    assert conversation.notes.repaired["message time not after its parent's, moved after it"] == 2


def test_messages_are_ordered_by_time_then_id_whatever_the_source_order() -> None:
    conversation = built(
        [
            Node(source_id="late", parent_source_id="root", message=say("late", T0 + TICK * 9)),
            Node(source_id="root", parent_source_id=None, message=say("root", T0)),
            Node(source_id="early", parent_source_id="root", message=say("early", T0 + TICK)),
        ]
    )
    assert [m.content for m in conversation.messages] == ["root", "early", "late"]


def test_the_active_leaf_follows_a_skipped_pointer_up_and_defaults_to_the_newest() -> None:
    nodes = [
        Node(source_id="a", parent_source_id=None, message=say("a", T0)),
        Node(source_id="b", parent_source_id="a", message=say("b", T0 + TICK)),
        Node(source_id="hidden", parent_source_id="a", message=None),
    ]
    pointed = built(nodes, active_source_id="hidden")
    assert pointed.active_leaf_id == pointed.messages[0].id
    unknown = built(nodes, active_source_id="elsewhere")
    assert unknown.active_leaf_id == unknown.messages[-1].id


def test_updated_at_is_never_before_the_newest_message() -> None:
    conversation = built(
        [Node(source_id="a", parent_source_id=None, message=say("a", T0 + timedelta(days=1)))],
        updated_at=T0,
    )
    assert conversation.updated_at == T0 + timedelta(days=1)


@pytest.mark.parametrize(
    ("nodes", "reason"),
    [
        (
            [
                Node(source_id="a", parent_source_id="b", message=say("a", T0)),
                Node(source_id="b", parent_source_id="a", message=say("b", T0)),
            ],
            "the message tree has a cycle",
        ),
        (
            [
                Node(source_id="a", parent_source_id="s", message=say("a", T0)),
                Node(source_id="s", parent_source_id="a", message=None),
            ],
            "the message tree has a cycle",
        ),
        (
            [
                Node(source_id="a", parent_source_id=None, message=say("a", T0)),
                Node(source_id="a", parent_source_id=None, message=say("again", T0)),
            ],
            "message id 'a' appears twice",
        ),
        (
            [
                Node(
                    source_id="0F1E2D3C-1111-4AAA-8BBB-0000000000A1",
                    parent_source_id=None,
                    message=say("a", T0),
                ),
                Node(
                    source_id="0f1e2d3c-1111-4aaa-8bbb-0000000000a1",
                    parent_source_id=None,
                    message=say("b", T0),
                ),
            ],
            "appears twice",
        ),
    ],
    ids=["kept-cycle", "cycle-through-skipped", "duplicate", "duplicate-after-lowercasing"],
)
def test_trees_that_cannot_be_stored_are_refused(nodes: list[Node], reason: str) -> None:
    with pytest.raises(MalformedConversation, match=reason):
        built(nodes)


def test_canonical_ids_keep_uuids_and_map_other_ids_stably_per_scope() -> None:
    upper = "0F1E2D3C-1111-4AAA-8BBB-0000000000A1"
    assert canonical_id(upper, namespace=NAMESPACE, scope="x") == upper.lower()
    mapped = canonical_id("node-1", namespace=NAMESPACE, scope="conversation-a")
    assert mapped == canonical_id("node-1", namespace=NAMESPACE, scope="conversation-a")
    assert mapped != canonical_id("node-1", namespace=NAMESPACE, scope="conversation-b")
    assert mapped == str(uuid.uuid5(NAMESPACE, "conversation-a/node-1"))


@pytest.mark.parametrize(
    ("title", "expected", "note"),
    [
        ("  Trip\nplanning\t ", "Trip planning", None),
        ("", "Untitled", "empty title, imported as Untitled"),
        (None, "Untitled", "empty title, imported as Untitled"),
        ("\x00\x07", "Untitled", "empty title, imported as Untitled"),
        ("x" * 250, "x" * 199 + "…", "title shortened"),
    ],
)
def test_titles_are_made_acceptable_to_the_api(
    title: str | None, expected: str, note: str | None
) -> None:
    conversation = built([], title=title)
    assert conversation.title == expected
    assert list(conversation.notes.repaired) == ([note] if note else [])


def test_text_the_api_would_refuse_is_repaired_not_refused() -> None:
    message = Message(
        role="assistant",
        content="broken emoji \ud83d here",
        created_at=T0,
        model_id="m" * 200,
        is_error=True,
        error_message="é" * 3000,
    )
    conversation = built([Node(source_id="a", parent_source_id=None, message=message)])
    (stored,) = conversation.messages
    assert stored.content == "broken emoji \ufffd here"
    assert stored.model_id is None
    assert stored.error_message is not None
    assert len(stored.error_message.encode()) <= 4096
    assert dict(conversation.notes.repaired) == {
        "invalid Unicode in a message replaced": 1,
        "unusable model name left out": 1,
        "error message shortened": 1,
    }


def test_without_any_time_the_conversation_is_refused() -> None:
    with pytest.raises(MalformedConversation, match="no timestamp anywhere"):
        built([Node(source_id="a", parent_source_id=None, message=say("a", None))], created_at=None)


def test_a_conversation_does_not_begin_after_its_first_message() -> None:
    conversation = built(
        [Node(source_id="a", parent_source_id=None, message=say("a", T0 - timedelta(seconds=3)))]
    )
    assert conversation.created_at == T0 - timedelta(seconds=3)
    assert dict(conversation.notes.repaired) == {
        "conversation start moved back to its first message": 1
    }
