"""Cursor encoding and the page window a connection's arguments ask for."""

from __future__ import annotations

import base64
import dataclasses
import uuid
from datetime import UTC, datetime

import pytest

from graphql_api.domain.cursors import NO_PROJECT, CursorCodec, CursorError, SyncPosition
from graphql_api.domain.paging import PageArgs, window
from graphql_api.errors import ValidationError
from graphql_api.settings import InputLimits
from graphql_api.storage.records import (
    ConversationPosition,
    ConversationRecord,
    MessagePosition,
    MessageRecord,
)

SECRET = b"unit-test-secret"
MOMENT = datetime(2025, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
CONVERSATION = str(uuid.uuid4())
MESSAGE = str(uuid.uuid4())


def codec(user: str = "user-1", secret: bytes = SECRET) -> CursorCodec:
    return CursorCodec(secret=secret, user_id=user)


POSITION = MessagePosition(segment=3, depth=41, message_id=MESSAGE)


def message_cursor(user: str = "user-1") -> str:
    return codec(user).message(CONVERSATION, POSITION)


def test_a_message_cursor_round_trips_its_place_in_the_tree() -> None:
    assert codec().decode_message(CONVERSATION, message_cursor()) == POSITION


@pytest.mark.parametrize("pinned", [False, True])
def test_a_conversation_cursor_round_trips_to_the_microsecond(pinned: bool) -> None:
    position = ConversationPosition(pinned=pinned, updated_at=MOMENT, conversation_id=CONVERSATION)
    assert codec().decode_conversation(codec().conversation(position)) == position


def test_a_cursor_of_one_list_is_refused_on_the_other() -> None:
    position = ConversationPosition(pinned=False, updated_at=MOMENT, conversation_id=CONVERSATION)
    archived = codec().conversation(position, archived=True)

    assert codec().decode_conversation(archived, archived=True) == position
    with pytest.raises(CursorError):
        codec().decode_conversation(archived)


def test_a_sync_token_round_trips_and_is_bound_to_its_user() -> None:
    position = SyncPosition(version=123_456, issued_at=MOMENT)
    token = codec().sync_token(position)

    assert codec().decode_sync_token(token) == position
    for other in (codec("user-2"), codec(secret=b"another-secret")):
        with pytest.raises(CursorError):
            other.decode_sync_token(token)
    with pytest.raises(CursorError):
        codec().decode_message(CONVERSATION, token)


# Issued by the code before tags moved from HMAC-SHA256 to keyed BLAKE2b (version 2), for
# user-1 under SECRET: devices keep sync tokens for days, so these must keep working.
V2_SYNC_TOKEN = "AgAAAAAAAeJAAAYvfTsFZkNXEd0l-TN45tNe-kDl9shN"
V2_CONVERSATION = "6f1c2a9e-3b4d-4c5e-8f70-123456789abc"
V2_MESSAGE_CURSOR = "AgAAAAMAAAApChssPU5fSmucfY6foLHC0_oS3LQLKim26rYuZpvBxL0"


def test_sync_tokens_and_cursors_issued_before_blake2b_tags_still_decode() -> None:
    assert codec().decode_sync_token(V2_SYNC_TOKEN) == SyncPosition(
        version=123_456, issued_at=MOMENT
    )
    assert codec().decode_message(V2_CONVERSATION, V2_MESSAGE_CURSOR) == MessagePosition(
        segment=3, depth=41, message_id="0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3"
    )
    for other in (codec("user-2"), codec(secret=b"another-secret")):
        with pytest.raises(CursorError):
            other.decode_sync_token(V2_SYNC_TOKEN)


def raw_of(cursor: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))


def test_version_3_cursors_and_sync_tokens_keep_their_bytes() -> None:
    # Issued under SECRET for user-1: clients hold them (sync tokens for days), so the way they
    # are computed may change but not what they are.
    position = ConversationPosition(pinned=True, updated_at=MOMENT, conversation_id=V2_CONVERSATION)
    message = MessagePosition(
        segment=3, depth=41, message_id="0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3"
    )

    assert codec().conversation(position) == (
        "AwEABi99OwVmQ28cKp47TUxej3ASNFZ4mrwA1AbXGfch-XysCGuU-oG9"
    )
    assert codec().conversation(dataclasses.replace(position, pinned=False), archived=True) == (
        "AwAABi99OwVmQ28cKp47TUxej3ASNFZ4mryWCqlInyhsL4gqob4aeJHX"
    )
    assert codec().conversation(position, group="0a1b2c3d-4e5f-4a6b-9c7d-8e9fa0b1c2d3") == (
        "AwEABi99OwVmQ28cKp47TUxej3ASNFZ4mrxoPOJis3Dgm5AKoWM8Zi_e"
    )
    assert codec().conversation(position, archived=True, group=NO_PROJECT) == (
        "AwEABi99OwVmQ28cKp47TUxej3ASNFZ4mrwggwA01bNE-MRxeXLyo0YV"
    )
    assert codec().message(V2_CONVERSATION, message) == (
        "AwAAAAMAAAApChssPU5fSmucfY6foLHC0xnNkLqvinD4P-Ux6rCZNJs"
    )
    assert codec().sync_token(SyncPosition(version=123_456, issued_at=MOMENT)) == (
        "AwAAAAAAAeJAAAYvfTsFZkMOEvLmmmVs2gJsllEgr17G"
    )


def test_a_records_cursor_is_its_positions() -> None:
    signing = codec()
    conversation = ConversationRecord(
        id=CONVERSATION,
        user_id="user-1",
        title="t",
        model_id=None,
        created_at=MOMENT,
        updated_at=MOMENT,
        message_count=1,
        version=1,
        last_message=None,
        pinned=True,
    )
    message = MessageRecord(
        id=MESSAGE,
        conversation_id=CONVERSATION,
        user_id="user-1",
        role="user",
        content="hi",
        created_at=MOMENT,
        model_id=None,
        is_error=False,
        error_message=None,
        parent_id=None,
        segment=2,
        depth=7,
    )

    # The home list and the archive, a project's list, and the list of those in none.
    for archived in (False, True):
        for group in (None, str(uuid.uuid4()), NO_PROJECT):
            assert signing.conversation_of(
                conversation, archived=archived, group=group
            ) == signing.conversation(conversation.position, archived=archived, group=group)
    assert signing.message_of(CONVERSATION, message) == signing.message(
        CONVERSATION, message.position
    )


def encoded(raw: bytearray) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_new_cursors_are_version_3_and_their_version_byte_is_under_the_tag() -> None:
    cursor = message_cursor()
    raw = raw_of(cursor)
    assert raw[0] == 3
    raw[0] = 2  # claim the older HMAC tag: the BLAKE2b tag cannot pass for one
    with pytest.raises(CursorError, match="does not belong"):
        codec().decode_message(CONVERSATION, encoded(raw))
    raw[0] = 9
    with pytest.raises(CursorError, match="unsupported cursor version"):
        codec().decode_message(CONVERSATION, encoded(raw))


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
        ConversationPosition(pinned=False, updated_at=MOMENT, conversation_id=CONVERSATION)
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
