"""Key layout, timestamp encoding, item mapping and sizes: the parts that need no endpoint."""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphql_api.errors import ValidationError
from graphql_api.storage import keys
from graphql_api.storage.checks import checked_id, checked_user
from graphql_api.storage.items import (
    PREVIEW_CHARS,
    base_length,
    conversation_from_item,
    conversation_item,
    delta_from_item,
    delta_item,
    expired,
    item_size,
    marked_position,
    marker_item,
    message_from_attributes,
    message_item,
    started_message,
    still_streaming,
    stream_marker_item,
    streamed_by,
    tombstone_item,
)
from graphql_api.storage.records import (
    ConversationPosition,
    ConversationRecord,
    DeltaRecord,
    Feedback,
    MessageRecord,
    NewMessage,
    format_timestamp,
    parse_timestamp,
)
from graphql_api.storage.table import (
    GSI_GROUPING,
    GSI_RECENCY,
    table_definition,
    table_definition_json,
    time_to_live,
)

SCHEMA_TABLE_JSON = Path(__file__).resolve().parents[2] / "schema" / "table.json"
MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
UTC_MOMENTS = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
)


def a_message(**changes: object) -> MessageRecord:
    fields: dict[str, object] = {
        "id": "5f0c7d56-2b1a-4c59-9a57-0d6a1c8b2f10",
        "conversation_id": "9b2e3a44-7c1d-4e0f-8a6b-3d5c2e1f0a99",
        "user_id": "user-1",
        "role": "assistant",
        "content": "Hello, ünïcode ✓",
        "created_at": MOMENT,
        "model_id": "model-x",
        "is_error": False,
        "error_message": None,
        "parent_id": "0e6f5c1a-7d55-4a47-9d61-6f0b3a7c9e21",
        "segment": 2,
        "depth": 7,
    }
    fields.update(changes)
    return MessageRecord(**fields)  # type: ignore[arg-type]


def a_conversation(*, last_message: MessageRecord | None) -> ConversationRecord:
    return ConversationRecord(
        id="9b2e3a44-7c1d-4e0f-8a6b-3d5c2e1f0a99",
        user_id="user-1",
        title="Trip planning",
        model_id=None,
        created_at=MOMENT,
        updated_at=MOMENT + timedelta(seconds=3),
        message_count=4,
        version=2,
        last_message=last_message,
    )


# --- the table definition


def test_schema_table_json_is_the_table_definition_written_out() -> None:
    assert SCHEMA_TABLE_JSON.read_text() == table_definition_json()


def test_the_table_expires_items_by_their_ttl_attribute() -> None:
    written = json.loads(table_definition_json("t"))

    assert written["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}
    assert {**table_definition("t"), "TimeToLiveSpecification": time_to_live()} == written


def test_the_table_is_keyed_pk_sk_with_a_recency_and_a_grouping_index() -> None:
    definition = table_definition("t")

    assert definition["KeySchema"] == [
        {"AttributeName": "PK", "KeyType": "HASH"},
        {"AttributeName": "SK", "KeyType": "RANGE"},
    ]
    recency, grouping = definition["GlobalSecondaryIndexes"]
    assert recency["IndexName"] == GSI_RECENCY == "GSI1"
    assert recency["KeySchema"] == [
        {"AttributeName": "GSI1PK", "KeyType": "HASH"},
        {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
    ]
    assert grouping["IndexName"] == GSI_GROUPING == "GSI2"
    assert grouping["KeySchema"] == [
        {"AttributeName": "GSI2PK", "KeyType": "HASH"},
        {"AttributeName": "GSI2SK", "KeyType": "RANGE"},
    ]
    for index in (recency, grouping):
        assert index["Projection"] == {"ProjectionType": "ALL"}
    written = json.loads(table_definition_json("t"))
    del written["TimeToLiveSpecification"]
    assert written == definition


# --- keys


def test_keys_follow_the_documented_layout() -> None:
    assert keys.user_pk("u1") == "USER#u1"
    assert keys.conversation_sk("c1") == "CONV#c1"
    assert keys.conversation_partition("c1") == "CONV#c1"
    assert keys.message_sk(3, 42) == "MSG#000003#0000042"
    assert keys.message_id_sk("m1") == "MSGID#m1"
    assert keys.recency_sk("2024-01-01T00:00:00.000000Z", "c1", pinned=False) == (
        "0#2024-01-01T00:00:00.000000Z#c1"
    )
    assert keys.recency_sk("2024-01-01T00:00:00.000000Z", "c1", pinned=True) == (
        "1#2024-01-01T00:00:00.000000Z#c1"
    )
    assert keys.listing_pk("u1", archived=False) == "USER#u1"
    assert keys.listing_pk("u1", archived=True) == "ARCHIVED#u1"
    assert keys.change_sk(7) == "CHG#000000000007"


def test_a_message_key_parses_back_to_its_segment_and_depth() -> None:
    assert keys.parse_message_sk(keys.message_sk(12, 3456)) == (12, 3456)


@pytest.mark.parametrize(
    "sk", ["MSGID#m1", "OWNER", "TREE", "MSG##1", "MSG#000001#", "MSG#1#1", "CONV#a#b"]
)
def test_parse_message_sk_rejects_keys_that_are_not_messages(sk: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - the contract is only "ValueError"
        keys.parse_message_sk(sk)


@pytest.mark.parametrize(("segment", "depth"), [(-1, 1), (0, 0), (keys.MAX_SEGMENT + 1, 1)])
def test_positions_outside_the_key_widths_are_refused(segment: int, depth: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        keys.message_sk(segment, depth)


@given(
    st.integers(0, keys.MAX_SEGMENT),
    st.integers(1, keys.MAX_DEPTH),
    st.integers(0, keys.MAX_SEGMENT),
    st.integers(1, keys.MAX_DEPTH),
)
def test_message_keys_sort_by_segment_then_depth(
    segment: int, depth: int, other_segment: int, other_depth: int
) -> None:
    a, b = keys.message_sk(segment, depth), keys.message_sk(other_segment, other_depth)

    assert (a < b) == ((segment, depth) < (other_segment, other_depth))


@given(st.integers(0, keys.MAX_SEGMENT), st.integers(1, keys.MAX_DEPTH), st.uuids())
def test_the_message_range_holds_every_message_and_no_other_item(
    segment: int, depth: int, message_id: uuid.UUID
) -> None:
    message_sk = keys.message_sk(segment, depth)

    assert keys.MESSAGES_LOW <= message_sk <= keys.MESSAGES_HIGH
    for other in (keys.message_id_sk(str(message_id)), keys.OWNER_SK, keys.TREE_SK):
        assert not keys.MESSAGES_LOW <= other <= keys.MESSAGES_HIGH


def test_pinned_conversations_sort_above_every_unpinned_one() -> None:
    newest_unpinned = keys.recency_sk("9999-12-31T23:59:59.999999Z", "c", pinned=False)
    oldest_pinned = keys.recency_sk("1970-01-01T00:00:00.000000Z", "c", pinned=True)

    assert oldest_pinned > newest_unpinned
    assert keys.pinned_prefix(True) == "1#"


# --- timestamps


@given(UTC_MOMENTS)
def test_timestamps_are_fixed_width_utc_with_z_and_round_trip(moment: datetime) -> None:
    text = format_timestamp(moment)

    assert len(text) == len("2024-01-01T00:00:00.000000Z")
    assert text.endswith("Z")
    assert parse_timestamp(text) == moment


@given(UTC_MOMENTS, UTC_MOMENTS)
def test_timestamp_string_order_is_time_order(first: datetime, second: datetime) -> None:
    a, b = format_timestamp(first), format_timestamp(second)

    assert (a < b) == (first < second)
    assert (a == b) == (first == second)


def test_a_timestamp_in_another_zone_is_written_in_utc() -> None:
    local = datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))

    assert format_timestamp(local) == "2024-05-06T07:08:09.123456Z"


def test_positions_are_the_sort_keys_the_items_are_stored_under() -> None:
    message = a_message()
    conversation = a_conversation(last_message=None)

    assert message.position.sort_key() == message_item(message)["SK"]["S"]
    assert conversation.position.sort_key() == conversation_item(conversation)["GSI1SK"]["S"]
    assert conversation.position == ConversationPosition(
        pinned=False, updated_at=conversation.updated_at, conversation_id=conversation.id
    )


# --- item mapping


def test_a_message_item_is_keyed_under_its_conversation_and_maps_back() -> None:
    message = a_message(error_message="boom", is_error=True, model_id=None)
    item = message_item(message)

    assert item["PK"] == {"S": "CONV#9b2e3a44-7c1d-4e0f-8a6b-3d5c2e1f0a99"}
    assert item["SK"] == {"S": "MSG#000002#0000007"}
    assert message_from_attributes(item) == message


def test_a_marker_names_its_message_by_position() -> None:
    message = a_message()
    marker = marker_item(message)

    assert marker["SK"] == {"S": f"MSGID#{message.id}"}
    assert marked_position(marker) == message.position


def test_feedback_round_trips_with_the_message() -> None:
    rated = a_message(feedback=Feedback(rating="down", comment="wrong", updated_at=MOMENT))

    assert message_from_attributes(message_item(rated)) == rated


def test_a_temporary_conversations_items_carry_the_ttl_rounded_up() -> None:
    expires = MOMENT + timedelta(days=30)
    item = message_item(a_message(), expires_at=expires)

    assert int(item["ttl"]["N"]) == math.ceil(expires.timestamp())
    whole_second = datetime.fromtimestamp(math.ceil(expires.timestamp()), UTC)
    assert expired(item, whole_second)
    assert not expired(item, whole_second - timedelta(microseconds=1))


@pytest.mark.parametrize("last", [None, a_message()], ids=["empty", "with preview"])
def test_a_conversation_item_is_keyed_under_its_user_and_maps_back(
    last: MessageRecord | None,
) -> None:
    conversation = a_conversation(last_message=last)
    item = conversation_item(conversation)

    assert (item["PK"], item["SK"]) == ({"S": "USER#user-1"}, {"S": f"CONV#{conversation.id}"})
    assert item["GSI1PK"] == {"S": "USER#user-1"}
    assert item["GSI1SK"] == {"S": f"0#2024-05-06T07:08:12.123456Z#{conversation.id}"}
    assert conversation_from_item(item) == conversation


def test_an_archived_pinned_tagged_conversation_is_listed_where_it_belongs() -> None:
    conversation = dataclasses.replace(
        a_conversation(last_message=None), pinned=True, archived=True, tags=("Café", "work")
    )
    item = conversation_item(conversation)

    assert item["GSI1PK"] == {"S": "ARCHIVED#user-1"}
    assert item["GSI1SK"]["S"].startswith("1#")
    assert item["tagKeys"] == {"L": [{"S": "cafe"}, {"S": "work"}]}
    assert item["titleKey"] == {"S": "trip planning"}
    assert conversation_from_item(item) == conversation


def test_the_last_message_preview_is_cut_to_a_bounded_prefix() -> None:
    long = a_message(content="x" * (PREVIEW_CHARS * 3))
    item = conversation_item(a_conversation(last_message=long))

    preview = conversation_from_item(item).last_message
    assert preview is not None
    assert preview.content == "x" * PREVIEW_CHARS
    assert preview.id == long.id


def test_a_stored_message_with_an_unknown_role_is_refused() -> None:
    item = message_item(a_message())
    item["role"] = {"S": "wizard"}

    with pytest.raises(ValueError, match="unknown role"):
        message_from_attributes(item)


def test_same_payload_compares_everything_a_client_sends_but_the_id() -> None:
    message = a_message()
    same = NewMessage(role="assistant", content=message.content, id="other", model_id="model-x")

    assert message.same_payload(same)
    assert not message.same_payload(
        NewMessage(role="assistant", content="else", model_id="model-x")
    )
    assert not message.same_payload(NewMessage(role="user", content=message.content))


# --- item size


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"a": {"S": "xyz"}}, 1 + 3),
        ({"é": {"S": "✓"}}, 2 + 3),  # UTF-8 bytes, names included
        ({"flag": {"BOOL": True}, "none": {"NULL": True}}, 4 + 1 + 4 + 1),
        ({"n": {"N": "12345"}}, 1 + 2 + 2),
        ({"m": {"M": {"k": {"S": "v"}}}}, 1 + 3 + 1 + 1 + 1),
        ({"l": {"L": [{"S": "ab"}, {"S": "c"}]}}, 1 + 3 + (1 + 2) + (1 + 1)),
    ],
)
def test_item_size_counts_names_and_values_in_utf8_bytes(
    item: dict[str, object], size: int
) -> None:
    assert item_size(item) == size


def test_item_size_grows_with_content_byte_for_byte() -> None:
    small = message_item(a_message(content="x"))
    large = message_item(a_message(content="x" * 1001))

    assert item_size(large) - item_size(small) == 1000


# --- streamed messages

# A Cognito sub, as the service stores users.
SUB = "3f8a1c2e-5b7d-4e9f-a0c1-2d3e4f5a6b7c"


def a_delta(text: str, *, seq: int = 1_000, end: int = 150_000) -> DeltaRecord:
    """A delta deep into a long answer: the large seq, length and size are the worst case for
    the item's numbers, which grow with their digits."""
    return DeltaRecord(seq=seq, text=text, end=end, size=end * 4, at=MOMENT + timedelta(minutes=59))


def write_units(item: dict[str, object]) -> int:
    """DynamoDB's write units for putting `item` over an absent key: one per started KB."""
    return math.ceil(item_size(item) / 1024)


@pytest.mark.parametrize("delta_bytes", [20, 100])
def test_a_delta_put_costs_one_write_unit_whatever_was_streamed_before(delta_bytes: int) -> None:
    message = a_message(user_id=SUB)
    item = delta_item(message.conversation_id, SUB, message.id, a_delta("x" * delta_bytes))

    assert write_units(item) == 1


def test_a_delta_item_grows_with_its_delta_only() -> None:
    message = a_message(user_id=SUB)
    early = delta_item(message.conversation_id, SUB, message.id, a_delta("ab", seq=2, end=2))
    late = delta_item(message.conversation_id, SUB, message.id, a_delta("ab"))
    longer = delta_item(message.conversation_id, SUB, message.id, a_delta("ab" * 500))

    # A thousand deltas later the item is a few digits larger, not a text larger.
    assert item_size(late) - item_size(early) <= 10
    assert item_size(longer) - item_size(late) == 998
    # Up to about 800 bytes of delta, a put stays one write unit.
    assert (
        write_units(delta_item(message.conversation_id, SUB, message.id, a_delta("x" * 800))) == 1
    )


def test_a_delta_and_its_tombstone_map_back() -> None:
    message = a_message()
    delta = a_delta("chunk", seq=7, end=12)
    stored = delta_item(message.conversation_id, "user-1", message.id, delta)
    assert stored["SK"]["S"] == keys.delta_sk(message.id, 7)
    assert delta_from_item(stored) == delta

    folded = dataclasses.replace(delta, text="", at=None, folded=True, replaced=True)
    tombstone = tombstone_item(
        message.conversation_id, "user-1", message.id, folded, expires_at=MOMENT
    )
    assert delta_from_item(tombstone) == folded
    assert "delta" not in tombstone
    assert expired(tombstone, MOMENT + timedelta(seconds=1))


def test_delta_keys_sort_by_seq_and_stay_outside_every_message_range() -> None:
    message_id = "5f0c7d56-2b1a-4c59-9a57-0d6a1c8b2f10"
    sks = [keys.delta_sk(message_id, seq) for seq in (0, 1, 9, 10, 11, keys.MAX_SEQ)]
    assert sks == sorted(sks)
    assert [keys.parse_delta_seq(sk) for sk in sks] == [0, 1, 9, 10, 11, keys.MAX_SEQ]
    for sk in (*sks, keys.deltas_high(message_id)):
        assert not keys.MESSAGES_LOW <= sk <= keys.MESSAGES_HIGH
        assert not sk.startswith(keys.message_id_sk(""))
    other = keys.delta_sk("5f0c7d56-2b1a-4c59-9a57-0d6a1c8b2f11", 0)
    assert not sks[0] <= other <= keys.deltas_high(message_id)
    with pytest.raises(ValueError, match="out of range"):
        keys.delta_sk(message_id, keys.MAX_SEQ + 1)


def test_a_message_status_is_stored_unless_complete_and_interrupted_is_stored_streaming() -> None:
    assert "status" not in message_item(a_message())
    for status, stored in (
        ("stopped", "stopped"),
        ("failed", "failed"),
        ("interrupted", "streaming"),
    ):
        item = message_item(a_message(status=status))
        assert item["status"] == {"S": stored}
        assert message_from_attributes(item).status == stored
    with pytest.raises(ValueError, match="unknown status"):
        message_from_attributes({**message_item(a_message()), "status": {"S": "paused"}})


def test_a_stream_marker_keeps_the_owner_the_message_and_the_base_length() -> None:
    message = a_message(content="", status="streaming", stream_seq=0)
    marker = stream_marker_item(message, base="déjà")

    assert (streamed_by(marker), still_streaming(marker)) == ("user-1", True)
    assert marked_position(marker) == message.position
    assert started_message(marker) == dataclasses.replace(message, stream_seq=None)
    assert base_length(marker) == (4, 6)
    assert streamed_by(marker_item(message)) is None


# --- identifiers


def test_ids_must_be_canonical_uuids_and_come_back_lowercase() -> None:
    value = "5F0C7D56-2B1A-4C59-9A57-0D6A1C8B2F10"

    assert checked_id(value, field="id") == value.lower()


@pytest.mark.parametrize(
    "value",
    [
        "",
        "not-a-uuid",
        "5f0c7d562b1a4c599a570d6a1c8b2f10",
        "{5f0c7d56-2b1a-4c59-9a57-0d6a1c8b2f10}",
    ],
)
def test_ids_that_are_not_canonical_uuids_are_refused_naming_the_field(value: str) -> None:
    with pytest.raises(ValidationError) as raised:
        checked_id(value, field="conversationId")

    assert raised.value.field == "conversationId"


@pytest.mark.parametrize("user_id", ["", "a#b", "#"])
def test_user_ids_that_could_forge_a_key_are_refused(user_id: str) -> None:
    with pytest.raises(ValidationError) as raised:
        checked_user(user_id)

    assert raised.value.field == "userId"
