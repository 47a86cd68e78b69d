"""Our export format: the writer, reading it back, and the published JSON Schema."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphql_api.transfer import (
    ExportFormat,
    ExportReader,
    ExportWriter,
    Feedback,
    ImportedConversation,
    ImportedMessage,
    MalformedExportError,
    Origin,
    Status,
    write_export,
    write_export_async,
)
from tests.transfer_checks import FIXTURES, assert_well_formed, imported, read_all, refused

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schema" / "export.schema.json"
EXPORTED_AT = datetime(2024, 8, 1, 10, 53, 20, 123456, tzinfo=UTC)
LAYOUTS: list[ExportFormat] = ["json", "ndjson"]
RUST = "9e3f1a20-1c2b-4d5e-8f70-000000000001"
EMPTY = "9e3f1a20-1c2b-4d5e-8f70-000000000002"


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


def validate(text: str, layout: ExportFormat, schema: dict[str, Any]) -> None:
    if layout == "json":
        jsonschema.validate(json.loads(text), schema, cls=jsonschema.Draft202012Validator)
        return
    header, *lines = text.splitlines()
    for part, value in [("ndjsonHeader", header)] + [("conversation", line) for line in lines]:
        subschema = {"$ref": f"#/$defs/{part}", "$defs": schema["$defs"]}
        jsonschema.validate(json.loads(value), subschema, cls=jsonschema.Draft202012Validator)


def written(conversations: list[ImportedConversation], layout: ExportFormat) -> str:
    out = io.StringIO()
    write_export(out, conversations, format=layout, exported_at=EXPORTED_AT)
    return out.getvalue()


def fixture_conversations() -> list[ImportedConversation]:
    return imported(read_all(FIXTURES / "chat-history-export.json"))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_published_fixtures_read_and_rewrite_byte_for_byte(layout: ExportFormat) -> None:
    path = FIXTURES / f"chat-history-export.{layout}"
    conversations = imported(read_all(path))
    assert len(conversations) == 3
    assert written(conversations, layout) == path.read_text(encoding="utf-8")


def test_both_layouts_hold_the_same_conversations() -> None:
    assert imported(read_all(FIXTURES / "chat-history-export.ndjson")) == fixture_conversations()


def test_every_field_survives_the_round_trip() -> None:
    rust, empty, siblings = fixture_conversations()
    assert (rust.pinned, rust.archived, rust.tags) == (True, False, ("rust", "learning"))
    assert rust.active_leaf_id == "5b0d7c1e-0000-4000-8000-000000000008"
    error = next(m for m in rust.messages if m.is_error)
    assert error.error_message == "upstream timeout after 30 s"
    assert [m.feedback.rating for m in rust.messages if m.feedback] == ["UP", None, "DOWN"]
    assert rust.messages[0].role == "system"
    assert "🦀" in rust.messages[4].content
    assert (empty.messages, empty.archived, empty.active_leaf_id) == ([], True, None)
    # Siblings at the same microsecond keep storage's order: time, then id.
    assert [m.content for m in siblings.messages] == ["Hi", "Hello!", "Hi there!"]
    for conversation in (rust, empty, siblings):
        assert_well_formed(conversation)
        assert not conversation.notes


@pytest.mark.parametrize("layout", LAYOUTS)
def test_writer_output_validates_against_the_published_schema(
    layout: ExportFormat, schema: dict[str, Any]
) -> None:
    validate(written(fixture_conversations(), layout), layout, schema)


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (lambda doc: doc["conversations"][0]["messages"][0].update(role="system"), ".role"),
        (
            lambda doc: doc["conversations"][0].update(createdAt="2024-08-01T09:30:00Z"),
            ".createdAt",
        ),
        (lambda doc: doc["conversations"][0].update(id="not-a-uuid"), "[0].id"),
        (lambda doc: doc.update(version=2), "$.version"),
    ],
)
def test_the_schema_refuses_what_the_format_does_not_allow(
    change: Any, where: str, schema: dict[str, Any]
) -> None:
    document = json.loads(written(fixture_conversations(), "json"))
    change(document)
    with pytest.raises(jsonschema.ValidationError) as raised:
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    assert raised.value.json_path.endswith(where)


def flat_message(index: int, **fields: Any) -> dict[str, Any]:
    """Message `index` of a hand-written conversation, `index` seconds after 09:00."""
    return {
        "id": f"7c1d2e3f-0000-4000-8000-{index:012d}",
        "role": "ASSISTANT" if index % 2 else "USER",
        "content": f"m{index}",
        "createdAt": f"2024-08-01T09:00:{index:02d}.000000Z",
        "modelId": None,
        "isError": False,
        "errorMessage": None,
        **fields,
    }


def hand_written(tmp_path: Path, messages: list[dict[str, Any]]) -> ImportedConversation:
    conversation = {
        "id": "7c1d2e3f-0000-4000-8000-ffffffffffff",
        "title": "Written by another tool",
        "modelId": None,
        "createdAt": "2024-08-01T08:59:00.000000Z",
        "updatedAt": "2024-08-01T09:10:00.000000Z",
        "messages": messages,
    }
    path = tmp_path / "flat.json"
    header = json.loads(written([], "json"))
    path.write_text(json.dumps({**header, "conversations": [conversation]}))
    (read,) = imported(read_all(path))
    assert_well_formed(read)
    return read


def test_messages_without_parent_id_read_as_import_conversations_reads_them(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    ids = [flat_message(index)["id"] for index in range(6)]
    conversation = hand_written(
        tmp_path,
        [
            flat_message(3),  # first, without parentId: after the stored active leaf
            flat_message(4),  # after 3, the message before it
            flat_message(0, parentId=None),  # a first message, older than 3
            flat_message(5),  # after 0
            flat_message(1, parentId=ids[0]),  # another answer to 0
        ],
    )

    assert [(m.content, m.parent_id, m.follows_active_leaf) for m in conversation.messages] == [
        ("m3", None, True),
        ("m0", None, False),
        ("m1", ids[0], False),
        ("m4", ids[3], False),
        ("m5", ids[0], False),
    ]
    assert conversation.active_leaf_id == ids[5]
    # Written back, only the first message goes without parentId, so it reads the same again.
    text = written([conversation], "json")
    validate(text, "json", schema)
    messages = json.loads(text)["conversations"][0]["messages"]
    assert ["parentId" in message for message in messages] == [False, True, True, True, True]
    path = tmp_path / "again.json"
    path.write_text(text)
    assert imported(read_all(path)) == [conversation]


def test_a_flat_list_reads_as_one_thread_in_order(tmp_path: Path) -> None:
    conversation = hand_written(tmp_path, [flat_message(index) for index in range(5)])

    messages = conversation.messages
    assert [m.content for m in messages] == ["m0", "m1", "m2", "m3", "m4"]
    assert [m.parent_id for m in messages] == [None, *(m.id for m in messages[:-1])]
    assert [m.follows_active_leaf for m in messages] == [True, False, False, False, False]
    assert conversation.active_leaf_id == messages[-1].id


def test_a_damaged_ndjson_line_costs_only_its_conversation() -> None:
    path = FIXTURES / "chat-history-export-damaged.ndjson"
    results = read_all(path)
    assert [c.title for c in imported(results)] == ["Rust lifetimes", "Same-microsecond siblings"]
    reasons = [r.describe() for r in refused(results)]
    assert reasons[0].startswith(f"{path}: conversation #1: line 3 is not JSON:")
    assert reasons[1] == (
        f"{path}: conversation #2 (id 9e3f1a20-1c2b-4d5e-8f70-000000000002, 'Empty one'): "
        "message #0 role is 'ROBOT', not USER, ASSISTANT or SYSTEM"
    )
    assert reasons[2] == (
        f"{path}: conversation #3 (id conversation-3, 'Same-microsecond siblings'): "
        "id 'conversation-3' is not a UUID"
    )


def test_a_newer_version_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"format": "chat-history-api/export", "version": 2, "conversations": []}')
    with pytest.raises(
        MalformedExportError, match="export version 2; this program reads version 1"
    ):
        read_all(path, format="json")


def test_a_file_without_our_header_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text('{"conversations": [], "format": "chat-history-api/export", "version": 1}')
    with pytest.raises(MalformedExportError, match="not a chat-history-api export"):
        read_all(path, format="json")


def test_a_truncated_document_breaks_off_after_the_whole_conversations(tmp_path: Path) -> None:
    text = (FIXTURES / "chat-history-export.json").read_text(encoding="utf-8")
    path = tmp_path / "cut.json"
    path.write_text(text[: text.index('"title":"Same-microsecond')], encoding="utf-8")
    stream = iter(ExportReader([path]))
    first_two = [next(stream), next(stream)]
    assert [r.origin for r in first_two if isinstance(r, ImportedConversation)] == [
        Origin(file=str(path), index=0, source_id=RUST, title="Rust lifetimes"),
        Origin(file=str(path), index=1, source_id=EMPTY, title="Empty one"),
    ]
    with pytest.raises(MalformedExportError, match="breaks off in conversation #2"):
        next(stream)


def test_messages_can_be_streamed_one_at_a_time_for_a_huge_conversation() -> None:
    conversations = fixture_conversations()
    for layout in LAYOUTS:
        out = io.StringIO()
        with ExportWriter(out, format=layout, exported_at=EXPORTED_AT) as writer:
            for conversation in conversations:
                writer.begin(conversation)
                for message in conversation.messages:
                    writer.message(message)
                writer.end()
        assert out.getvalue() == written(conversations, layout)
        assert (writer.conversations, writer.messages) == (3, 11)


def test_the_writer_writes_each_conversation_before_taking_the_next() -> None:
    out = io.StringIO()
    sizes: list[int] = []

    def produce() -> Iterator[ImportedConversation]:
        for conversation in fixture_conversations():
            sizes.append(len(out.getvalue()))
            yield conversation

    write_export(out, produce(), format="ndjson", exported_at=EXPORTED_AT)
    assert sizes[0] < sizes[1] < sizes[2] < len(out.getvalue())


def test_an_export_cut_short_by_an_error_is_not_valid_json() -> None:
    out = io.StringIO()

    def failing() -> Iterator[ImportedConversation]:
        yield fixture_conversations()[0]
        raise RuntimeError("storage went away")

    with pytest.raises(RuntimeError):
        write_export(out, failing(), format="json", exported_at=EXPORTED_AT)
    with pytest.raises(json.JSONDecodeError):
        json.loads(out.getvalue())


def test_the_async_writer_takes_an_async_iterator() -> None:
    async def produce() -> AsyncIterator[ImportedConversation]:
        for conversation in fixture_conversations():
            await asyncio.sleep(0)
            yield conversation

    out = io.StringIO()
    writer = asyncio.run(write_export_async(out, produce(), format="json", exported_at=EXPORTED_AT))
    assert out.getvalue() == written(fixture_conversations(), "json")
    assert writer.conversations == 3


def test_an_empty_export_is_a_valid_document_and_reads_as_nothing(
    tmp_path: Path, schema: dict[str, Any]
) -> None:
    for layout in LAYOUTS:
        text = written([], layout)
        validate(text, layout, schema)
        path = tmp_path / f"empty.{layout}"
        path.write_text(text)
        assert read_all(path) == []


# --- any tree the API can hold survives export and import unchanged.

_T0 = datetime(2020, 1, 1, tzinfo=UTC)
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40).filter(
    lambda text: text.strip() != ""
)
_TITLE = st.text(st.characters(categories=["L", "N"]), min_size=1, max_size=60)
STATUSES: list[Status] = ["complete", "streaming", "stopped", "failed", "interrupted"]


@st.composite
def conversations(draw: st.DrawFn) -> ImportedConversation:
    count = draw(st.integers(min_value=0, max_value=12))
    gaps = draw(st.lists(st.integers(1, 10**9), min_size=count, max_size=count))
    ids = [str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))) for _ in range(count)]
    if len(set(ids)) < count:
        ids = [str(uuid.uuid4()) for _ in range(count)]
    created_at = _T0 + timedelta(microseconds=draw(st.integers(0, 10**15)))
    messages: list[ImportedMessage] = []
    moment = created_at
    for index in range(count):
        moment += timedelta(microseconds=gaps[index])
        parent = draw(st.sampled_from([None, *ids[:index]])) if index else None
        rating = draw(st.sampled_from(["UP", "DOWN", None]))
        status = draw(st.sampled_from(STATUSES))
        messages.append(
            ImportedMessage(
                id=ids[index],
                parent_id=parent,
                role=draw(st.sampled_from(["user", "assistant", "system"])),
                # Only a streamed message that is not complete may have no text yet.
                content=draw(_TEXT if status == "complete" else st.one_of(st.just(""), _TEXT)),
                status=status,
                created_at=moment,
                model_id=draw(st.one_of(st.none(), _TITLE)),
                is_error=draw(st.booleans()),
                error_message=draw(st.one_of(st.none(), _TEXT)),
                feedback=draw(
                    st.one_of(
                        st.none(),
                        st.just(Feedback(rating=rating, comment="ok", updated_at=moment)),  # type: ignore[arg-type]
                    )
                ),
                follows_active_leaf=index == 0 and draw(st.booleans()),
            )
        )
    return ImportedConversation(
        id=str(uuid.uuid4()),
        title=draw(_TITLE),
        model_id=draw(st.one_of(st.none(), _TITLE)),
        created_at=created_at,
        updated_at=moment + timedelta(microseconds=draw(st.integers(0, 10**9))),
        messages=messages,
        active_leaf_id=draw(st.sampled_from(ids)) if ids else None,
        pinned=draw(st.booleans()),
        archived=draw(st.booleans()),
        tags=tuple(draw(st.lists(_TITLE, max_size=3))),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(conversations(), max_size=4), st.sampled_from(LAYOUTS))
def test_any_conversations_round_trip_through_either_layout(
    tmp_path_factory: pytest.TempPathFactory,
    given_conversations: list[ImportedConversation],
    layout: ExportFormat,
) -> None:
    text = written(given_conversations, layout)
    path = tmp_path_factory.mktemp("round-trip") / f"export.{layout}"
    path.write_text(text, encoding="utf-8")
    results = read_all(path)
    assert results == given_conversations
    assert written(imported(results), layout) == text


def test_a_streamed_message_carries_its_status_and_a_complete_one_writes_none(
    schema: dict[str, Any],
) -> None:
    rust, *_ = fixture_conversations()
    stopped = dataclasses.replace(rust.messages[-1], status="stopped", content="")
    conversation = dataclasses.replace(rust, messages=[*rust.messages[:-1], stopped])
    document = json.loads(written([conversation], "json"))
    exported = document["conversations"][0]["messages"]

    assert exported[-1]["status"] == "STOPPED"
    assert all("status" not in message for message in exported[:-1])
    jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
    exported[-1]["status"] = "COMPLETE"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
