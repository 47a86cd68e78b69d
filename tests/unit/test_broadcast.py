"""Announcements as they travel through Redis, the in-process fan-out by channel, and the
count of each channel's local listeners that decides when Redis is asked for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, get_args

import pytest

from graphql_api.domain.broadcast import (
    ChannelNames,
    LocalBroadcast,
    Subscriptions,
    decode_change,
    decode_stream_event,
    encode_change,
    encode_stream_event,
)
from graphql_api.storage.records import ChangeKind, ChangeRecord, MessagePosition, StreamEvent

NAMES = ChannelNames("chat")
EVENT = StreamEvent(
    conversation_id="c1", message_id="m1", seq=7, delta="Grüße, 👋", status="streaming"
)


@pytest.mark.parametrize("kind", get_args(ChangeKind))
def test_every_kind_of_change_comes_back_from_redis_as_it_was_sent(kind: ChangeKind) -> None:
    change = ChangeRecord(
        version=12,
        kind=kind,
        conversation_id="c1",
        created_at=datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        messages=(MessagePosition(segment=0, depth=3, message_id="m1"),),
    )
    assert decode_change(encode_change(change, origin="here")) == ("here", change)


@pytest.mark.parametrize(
    "event",
    [
        EVENT,
        StreamEvent(
            conversation_id="c1",
            message_id="m1",
            seq=9,
            delta="",
            status="stopped",
            replaced=True,
        ),
    ],
)
def test_a_stream_event_comes_back_from_redis_as_it_was_sent(event: StreamEvent) -> None:
    assert decode_stream_event(encode_stream_event(event, origin="there")) == ("there", event)


@pytest.mark.parametrize(
    "change",
    [
        {"s": "7"},
        {"s": True},
        {"d": 3},
        {"st": "finished"},
        {"s": None},
    ],
)
def test_a_malformed_stream_event_is_refused(change: dict[str, Any]) -> None:
    fields = json.loads(encode_stream_event(EVENT, origin="o"))
    with pytest.raises((ValueError, KeyError, TypeError)):
        decode_stream_event(json.dumps({**fields, **change}))


def test_channels_are_per_table_and_per_user_and_message() -> None:
    assert NAMES.changes("u1") == "chat-history:chat:changes:u1"
    assert NAMES.stream("u1", "m1") == "chat-history:chat:stream:u1:m1"
    assert len({NAMES.stream("u1", "m1"), NAMES.stream("u2", "m1"), NAMES.changes("u1")}) == 3
    assert ChannelNames("other").stream("u1", "m1") != NAMES.stream("u1", "m1")


async def test_locally_a_stream_event_reaches_that_users_listeners_of_that_message_only() -> None:
    broadcast = LocalBroadcast(NAMES)
    async with (
        broadcast.stream("u1", "m1") as mine,
        broadcast.stream("u2", "m1") as same_id_other_user,
        broadcast.stream("u1", "m2") as other_message,
        broadcast.changes("u1") as changes,
    ):
        await broadcast.publish_stream("u1", EVENT)
        assert mine.take() == ([EVENT], False)
        assert same_id_other_user.take() == ([], False)
        assert other_message.take() == ([], False)
        assert changes.take() == ([], False)


def test_redis_is_asked_for_a_channel_by_its_first_listener_and_left_by_its_last() -> None:
    subscriptions = Subscriptions()
    first = subscriptions.add("ch")
    assert subscriptions.changed.is_set()
    subscriptions.changed.clear()

    second = subscriptions.add("ch")
    assert second is first
    assert not subscriptions.changed.is_set()
    subscriptions.confirm("ch")
    assert second.is_set()

    subscriptions.remove("ch")
    assert not subscriptions.changed.is_set()
    assert subscriptions.wanted() == {"ch"}
    subscriptions.remove("ch")
    assert subscriptions.changed.is_set()
    assert subscriptions.wanted() == set()
    # Wanted again: a confirmation of its own, not the one given before.
    assert not subscriptions.add("ch").is_set()


def test_after_a_lost_connection_no_channel_counts_as_confirmed() -> None:
    subscriptions = Subscriptions()
    confirmed = subscriptions.add("ch")
    subscriptions.confirm("ch")
    subscriptions.unconfirm_all()
    assert not confirmed.is_set()
