"""Cursor encoding and the page window a connection's arguments ask for."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from graphql_api.domain.cursors import CursorCodec, CursorError
from graphql_api.domain.paging import PageArgs, window
from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.records import ConversationPosition, MessagePosition

SECRET = b"unit-test-secret"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
CONVERSATION = str(uuid.uuid4())
MESSAGE = str(uuid.uuid4())


def codec(user: str = "user-1", secret: bytes = SECRET) -> CursorCodec:
    return CursorCodec(secret=secret, user_id=user)


def message_cursor(user: str = "user-1") -> str:
    return codec(user).message(CONVERSATION, MessagePosition(created_at=MOMENT, message_id=MESSAGE))


def test_a_message_cursor_round_trips_to_the_microsecond() -> None:
    position = codec().decode_message(CONVERSATION, message_cursor())
    assert position == MessagePosition(created_at=MOMENT, message_id=MESSAGE)


def test_a_conversation_cursor_round_trips() -> None:
    position = ConversationPosition(updated_at=MOMENT, conversation_id=CONVERSATION)
    assert codec().decode_conversation(codec().conversation(position)) == position


def test_a_cursor_is_compact_url_safe_and_does_not_contain_the_user() -> None:
    user = "a-very-recognisable-user-id"
    cursor = message_cursor(user)
    assert len(cursor) <= 64
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    assert user.encode() not in raw
    assert CONVERSATION.encode() not in raw
    assert uuid.UUID(CONVERSATION).bytes not in raw


@pytest.mark.parametrize(
    "decode",
    [
        lambda cursor: codec("user-2").decode_message(CONVERSATION, cursor),
        lambda cursor: codec().decode_message(str(uuid.uuid4()), cursor),
        lambda cursor: codec().decode_conversation(cursor),
        lambda cursor: codec(secret=b"another-secret").decode_message(CONVERSATION, cursor),
    ],
    ids=["other-user", "other-conversation", "other-kind", "other-secret"],
)
def test_a_cursor_only_decodes_in_its_own_scope(decode: object) -> None:
    with pytest.raises(CursorError):
        decode(message_cursor())  # type: ignore[operator]


@pytest.mark.parametrize(
    "cursor", ["", "=", "not base64!", "AAAA", "é" * 10, "A" * 97, "AQ==" * 14]
)
def test_garbage_is_a_cursor_error(cursor: str) -> None:
    with pytest.raises(CursorError):
        codec().decode_message(CONVERSATION, cursor)


def test_padding_or_whitespace_variants_are_refused() -> None:
    cursor = message_cursor()
    for variant in (cursor + "=", f" {cursor}", cursor + "\n"):
        with pytest.raises(CursorError):
            codec().decode_message(CONVERSATION, variant)


# --- windows ------------------------------------------------------------------------------


def decode(cursor: str) -> ConversationPosition:
    return codec().decode_conversation(cursor)


def conversation_cursor() -> str:
    return codec().conversation(
        ConversationPosition(updated_at=MOMENT, conversation_id=CONVERSATION)
    )


def choose(args: PageArgs, *, default_forward: bool = True) -> tuple[int, bool, bool]:
    chosen = window(
        args,
        limits=InputLimits(default_page_size=20, max_page_size=100),
        default_forward=default_forward,
        decode=decode,
    )
    return chosen.limit, chosen.forward, chosen.cursor is not None


@pytest.mark.parametrize(
    ("args", "default_forward", "expected"),
    [
        (PageArgs(), True, (20, True, False)),
        (PageArgs(), False, (20, False, False)),
        (PageArgs(first=5), False, (5, True, False)),
        (PageArgs(last=7), True, (7, False, False)),
        (PageArgs(first=0), True, (0, True, False)),
        (PageArgs(first=100), True, (100, True, False)),
    ],
)
def test_the_window_follows_the_arguments(
    args: PageArgs, default_forward: bool, expected: tuple[int, bool, bool]
) -> None:
    assert choose(args, default_forward=default_forward) == expected


def test_a_cursor_alone_picks_its_direction_with_the_default_size() -> None:
    cursor = conversation_cursor()
    assert choose(PageArgs(after=cursor), default_forward=False) == (20, True, True)
    assert choose(PageArgs(before=cursor)) == (20, False, True)


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (PageArgs(first=1, last=1), "first"),
        (PageArgs(after="a", before="b"), "after"),
        (PageArgs(first=1, before="b"), "before"),
        (PageArgs(last=1, after="a"), "after"),
        (PageArgs(first=-1), "first"),
        (PageArgs(last=101), "last"),
        (PageArgs(after="tampered"), "after"),
        (PageArgs(last=3, before="tampered"), "before"),
    ],
)
def test_invalid_arguments_name_the_argument(args: PageArgs, field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        choose(args)
    assert caught.value.field == field
