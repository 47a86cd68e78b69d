"""Property tests: no string a client sends as a cursor gets past the codec unless we issued it."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from graphql_api.domain.cursors import CursorCodec, CursorError
from graphql_api.storage.records import ConversationPosition, MessagePosition

SECRET = b"property-test-secret"
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
ids = st.uuids().map(str)
users = st.text(min_size=1, max_size=60)


@given(user=users, moment=moments, item=ids)
def test_a_conversation_cursor_round_trips_for_its_owner(
    user: str, moment: datetime, item: str
) -> None:
    codec = CursorCodec(secret=SECRET, user_id=user)
    position = ConversationPosition(updated_at=moment, conversation_id=item)
    assert codec.decode_conversation(codec.conversation(position)) == position


@given(user=users, moment=moments, item=ids, conversation=ids)
def test_a_message_cursor_round_trips_in_its_conversation(
    user: str, moment: datetime, item: str, conversation: str
) -> None:
    codec = CursorCodec(secret=SECRET, user_id=user)
    position = MessagePosition(created_at=moment, message_id=item)
    assert codec.decode_message(conversation, codec.message(conversation, position)) == position


@given(owner=users, other=users, moment=moments, item=ids)
def test_another_users_cursor_is_refused(
    owner: str, other: str, moment: datetime, item: str
) -> None:
    if owner == other:
        return
    cursor = CursorCodec(secret=SECRET, user_id=owner).conversation(
        ConversationPosition(updated_at=moment, conversation_id=item)
    )
    try:
        CursorCodec(secret=SECRET, user_id=other).decode_conversation(cursor)
    except CursorError:
        return
    raise AssertionError("a cursor issued to one user was accepted for another")


@given(moment=moments, item=ids, conversation=ids, other=ids)
def test_a_cursor_from_another_conversation_or_list_is_refused(
    moment: datetime, item: str, conversation: str, other: str
) -> None:
    codec = CursorCodec(secret=SECRET, user_id="u")
    cursor = codec.message(conversation, MessagePosition(created_at=moment, message_id=item))
    refused = 0
    for decode in (
        lambda: codec.decode_message(other, cursor) if other != conversation else None,
        lambda: codec.decode_conversation(cursor),
    ):
        try:
            decode()
        except CursorError:
            refused += 1
    assert refused == (2 if other != conversation else 1)


@given(moment=moments, item=ids, flip=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_flipped_bit_is_detected(moment: datetime, item: str, flip: int, bit: int) -> None:
    codec = CursorCodec(secret=SECRET, user_id="u")
    cursor = codec.conversation(ConversationPosition(updated_at=moment, conversation_id=item))
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[flip % len(raw)] ^= 1 << bit
    tampered = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    try:
        codec.decode_conversation(tampered)
    except CursorError:
        return
    raise AssertionError("a tampered cursor was accepted")


@given(text=st.text(max_size=200))
def test_arbitrary_text_is_refused_with_a_cursor_error_only(text: str) -> None:
    codec = CursorCodec(secret=SECRET, user_id="u")
    for decode in (codec.decode_conversation, lambda c: codec.decode_message(str(uuid.uuid4()), c)):
        try:
            decode(text)
        except CursorError:
            continue
        raise AssertionError(f"{text!r} decoded as a cursor")
