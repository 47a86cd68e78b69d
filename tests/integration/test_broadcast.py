"""Two instances of the service sharing one table and a real redis-server (Debian's package),
started here on 127.0.0.1 with no persistence.

Every write through instance A reaches a subscriber on instance B through Redis, in order and
once; with A's announcement lost (A never reaches Redis, as if it died right after its
commit), B's subscriber still gets it from the log, by its poll; after Redis restarts,
announcements reach B again.

Nothing here is timed: where a delivery must have come through Redis, B's poll is longer than
the test, and each test first has B deliver a write of its own, which shows the subscription
past its catch-up. How soon a delivery arrives is a benchmark's question.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.api.harness import create_conversation, new_user, sync_token
from tests.api.test_operations import operation
from tests.api.test_streaming import a_stream, append, finish
from tests.apps import AppFactory
from tests.redis_server import free_port, redis_server
from tests.sockets import GraphQLSocket, LiveApi

WRITES = 40
# Longer than any test: no poll runs, so whatever B delivers came to it through Redis.
NO_POLL = {"poll_seconds": 3600.0}
# Bounds every wait for a delivery: only one that never comes reaches it.
DELIVERY_GUARD = 30.0
# Writes after a restart until one is delivered, each given ATTEMPT_SECONDS: together far
# beyond the back-off (5 s at most) in which B's reader subscribes again.
RESTART_ATTEMPTS = 15
ATTEMPT_SECONDS = 2.0

RENAME = """
mutation Rename($id: ID!, $title: String!) {
  renameConversation(input: {id: $id, title: $title}) { conversation { id } }
}
"""
CHANGES = (
    "subscription Changes($since: String) "
    "{ changes(since: $since) { version conversation { title } } }"
)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url


async def renamed(live: LiveApi, user: str, conversation_id: str, title: str) -> None:
    await live.api.data(RENAME, {"id": conversation_id, "title": title}, user=user)


async def test_every_write_through_one_instance_reaches_a_subscriber_on_another_once_in_order(
    redis_url: str, make_api: AppFactory
) -> None:
    through_redis = {"broadcast_url": redis_url, **NO_POLL}
    user = new_user()
    async with (
        make_api.live(subscriptions=through_redis) as a,
        make_api.live(subscriptions=through_redis) as b,
        b.socket() as socket,
    ):
        conversation = await create_conversation(a.api, user, "start")
        await socket.init(b.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
        # B tells its own subscribers of its own writes directly: once this one is delivered,
        # the subscription is past its catch-up, and with no poll only Redis can wake it.
        await renamed(b, user, conversation["id"], "on b")
        live = await socket.next_data(sub, seconds=DELIVERY_GUARD)
        delivered = []
        for n in range(WRITES):
            await renamed(a, user, conversation["id"], f"t{n}")
            delivered.append(await socket.next_data(sub, seconds=DELIVERY_GUARD))
        # Nothing came twice: what follows the last is B's next write, not a repeat.
        await renamed(b, user, conversation["id"], "end")
        end = await socket.next_data(sub, seconds=DELIVERY_GUARD)
    assert live["changes"] == {"version": 2, "conversation": {"title": "on b"}}
    assert [data["changes"] for data in delivered] == [
        {"version": n + 3, "conversation": {"title": f"t{n}"}} for n in range(WRITES)
    ]
    assert end["changes"] == {"version": WRITES + 3, "conversation": {"title": "end"}}


async def test_a_lost_announcement_still_arrives_by_the_poll(
    redis_url: str, make_api: AppFactory
) -> None:
    """Instance A commits but never announces (no Redis: as if it died right after its
    commit); B's subscriber hears of it from the log, when its poll finds the version ahead."""
    # Short, so the test is quick; how long a poll may take is the setting's, not this test's.
    polling = {"broadcast_url": redis_url, "poll_seconds": 0.5}
    user = new_user()
    async with (
        make_api.live() as a,
        make_api.live(subscriptions=polling) as b,
        b.socket() as socket,
    ):
        await socket.init(b.api.token(user))
        sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
        # Once B's own write is delivered, the subscription is past its catch-up from `since`:
        # A's write below can reach it by the poll only.
        await create_conversation(b.api, user, "announced")
        announced = await socket.next_data(sub, seconds=DELIVERY_GUARD)
        await create_conversation(a.api, user, "unannounced")
        polled = await socket.next_data(sub, seconds=DELIVERY_GUARD)
    assert announced["changes"] == {"version": 1, "conversation": {"title": "announced"}}
    assert polled["changes"] == {"version": 2, "conversation": {"title": "unannounced"}}


async def test_subscribers_hear_through_redis_again_after_it_restarts(
    make_api: AppFactory,
) -> None:
    user = new_user()
    with redis_server() as redis:
        through_redis = {"broadcast_url": redis.url, **NO_POLL}
        async with (
            make_api.live(subscriptions=through_redis) as a,
            make_api.live(subscriptions=through_redis) as b,
            b.socket() as socket,
        ):
            await socket.init(b.api.token(user))
            sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
            await create_conversation(a.api, user, "before")
            before = await socket.next_data(sub, seconds=DELIVERY_GUARD)
            redis.stop()
            redis.start()
            # Announcements are lost until B's reader has subscribed again (within its
            # back-off) and A's publisher has reconnected (on a publish): write until one is
            # delivered. With no poll, that delivery came through Redis; the gap it shows makes
            # B read the writes whose announcements were lost from the log, in order.
            titles: list[str] = []
            for attempt in range(RESTART_ATTEMPTS):
                titles.append(f"after {attempt}")
                await create_conversation(a.api, user, titles[-1])
                with contextlib.suppress(TimeoutError):
                    first = await socket.next_data(sub, seconds=ATTEMPT_SECONDS)
                    break
            else:
                raise AssertionError("no write after the restart was ever delivered")
            rest = [await socket.next_data(sub, seconds=DELIVERY_GUARD) for _ in titles[1:]]
    assert before["changes"] == {"version": 1, "conversation": {"title": "before"}}
    assert [data["changes"] for data in (first, *rest)] == [
        {"version": n + 2, "conversation": {"title": title}} for n, title in enumerate(titles)
    ]


async def test_instances_authenticate_with_redis_auth_token_to_a_redis_that_requires_it(
    make_api: AppFactory,
) -> None:
    """The URL carries no password (as the CDK stacks set it); REDIS_AUTH_TOKEN does."""
    token = "Zq3vX9kPm2LwR7tYb4NcH8sJd6FgA1eU"
    user = new_user()
    with redis_server(password=token) as redis:
        through_redis = {"broadcast_url": redis.url, **NO_POLL}
        async with (
            make_api.live(subscriptions=through_redis, redis_auth_token=token) as a,
            make_api.live(subscriptions=through_redis, redis_auth_token=token) as b,
            b.socket() as socket,
        ):
            conversation = await create_conversation(a.api, user, "start")
            await socket.init(b.api.token(user))
            sub = await socket.subscribe(CHANGES, {"since": await sync_token(b.api, user)})
            # Past the catch-up (see the first test), only Redis can bring A's write to B.
            await renamed(b, user, conversation["id"], "on b")
            await socket.next_data(sub, seconds=DELIVERY_GUARD)
            await renamed(a, user, conversation["id"], "on a")
            through = await socket.next_data(sub, seconds=DELIVERY_GUARD)
    assert through["changes"] == {"version": 3, "conversation": {"title": "on a"}}


# --- streamed messages, and channels subscribed on demand --------------------------------

STREAM = operation("MessageStream")
# Bounds each wait for Redis to show a subscription made or given up (the reader does it as
# soon as it is told; only a reader that never does reaches this).
CHANNEL_CHECKS = 200
CHANNEL_CHECK_SECONDS = 0.05


def stream_channel(factory: AppFactory, user: str, message_id: str) -> str:
    return f"chat-history:{factory.table_name}:stream:{user}:{message_id}"


def changes_channel(factory: AppFactory, user: str) -> str:
    return f"chat-history:{factory.table_name}:changes:{user}"


@contextlib.asynccontextmanager
async def inspecting(url: str) -> AsyncIterator[Redis]:
    """A plain client of the test's own, to ask Redis who subscribed to what."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def subscribers(redis: Redis, channel: str) -> int:
    ((_, count),) = await redis.pubsub_numsub(channel)
    return int(count)


async def channels_of(redis: Redis, factory: AppFactory, user: str) -> set[str]:
    """Every channel of `user` some instance is subscribed to."""
    found = await redis.pubsub_channels(f"chat-history:{factory.table_name}:*:{user}*")
    return {str(channel) for channel in found}


async def until_channels(
    redis: Redis, factory: AppFactory, user: str, expected: set[str]
) -> set[str]:
    """`user`'s subscribed channels once they are `expected` (or as they are at the bound)."""
    for _ in range(CHANNEL_CHECKS):
        found = await channels_of(redis, factory, user)
        if found == expected:
            return found
        await asyncio.sleep(CHANNEL_CHECK_SECONDS)
    return await channels_of(redis, factory, user)


async def until_subscribers(redis: Redis, channel: str, expected: int) -> int:
    """How many subscribe to `channel` once they are `expected` (or as many as at the bound)."""
    for _ in range(CHANNEL_CHECKS):
        count = await subscribers(redis, channel)
        if count == expected:
            return count
        await asyncio.sleep(CHANNEL_CHECK_SECONDS)
    return await subscribers(redis, channel)


def following(message: dict[str, Any], after_seq: int = 0) -> dict[str, Any]:
    return {
        "conversationId": message["conversationId"],
        "messageId": message["id"],
        "afterSeq": after_seq,
    }


async def stream_event(socket: GraphQLSocket, sub: str) -> dict[str, Any]:
    """The next event of messageStream `sub`, beside other operations on the socket."""
    message = await socket.receive_for(sub, DELIVERY_GUARD)
    assert message["type"] == "next", message
    assert "errors" not in message["payload"], message
    delta: dict[str, Any] = message["payload"]["data"]["messageStream"]
    return {key: delta[key] for key in ("seq", "delta", "status")}


async def test_every_delta_stored_through_one_instance_reaches_a_subscriber_on_another(
    redis_url: str, make_api: AppFactory
) -> None:
    """The writer on B, the reader on A, neither polling: each delta comes to A through Redis,
    as its own event, in order, once; then the end."""
    through_redis = {"broadcast_url": redis_url, **NO_POLL}
    user = new_user()
    async with (
        make_api.live(subscriptions=through_redis) as a,
        make_api.live(subscriptions=through_redis) as b,
        a.socket() as socket,
    ):
        message = await a_stream(b.api, user, ["Once "])
        await socket.init(a.api.token(user))
        sub = await socket.subscribe(STREAM, following(message))
        # The subscription has read the table: what follows can reach it only through Redis.
        replayed = await stream_event(socket, sub)
        delivered = []
        for seq in range(2, WRITES + 2):
            await append(b.api, user, message, seq, f"d{seq} ")
            delivered.append(await stream_event(socket, sub))
        await finish(b.api, user, message, "COMPLETE", WRITES + 1)
        last = await stream_event(socket, sub)
        assert await socket.receive(DELIVERY_GUARD) == {"id": sub, "type": "complete"}
    assert replayed == {"seq": 1, "delta": "Once ", "status": "STREAMING"}
    assert delivered == [
        {"seq": seq, "delta": f"d{seq} ", "status": "STREAMING"} for seq in range(2, WRITES + 2)
    ]
    assert last == {"seq": WRITES + 1, "delta": "", "status": "COMPLETE"}


async def test_an_instance_subscribes_to_a_channel_only_while_its_own_subscribers_want_it(
    redis_url: str, make_api: AppFactory
) -> None:
    """With a reader on A only, Redis counts one subscriber of the message's channel (A's): B,
    which writes every delta, receives none of them. B's own reader, once it has one, counts;
    each instance gives a channel up when its last subscriber of it leaves."""
    through_redis = {"broadcast_url": redis_url, **NO_POLL}
    user = new_user()
    async with (
        make_api.live(subscriptions=through_redis) as a,
        make_api.live(subscriptions=through_redis) as b,
        inspecting(redis_url) as redis,
        a.socket() as on_a,
        b.socket() as on_b,
    ):
        message = await a_stream(b.api, user, ["one "])
        deltas = stream_channel(make_api, user, message["id"])
        changes = changes_channel(make_api, user)
        before = await channels_of(redis, make_api, user)

        await on_a.init(a.api.token(user))
        reading = await on_a.subscribe(STREAM, following(message))
        await stream_event(on_a, reading)
        # Confirmed by Redis before the subscription read the table, so counted by now.
        reader_on_a = (await channels_of(redis, make_api, user), await subscribers(redis, deltas))
        for seq in range(2, 6):
            await append(b.api, user, message, seq, f"{seq} ")
            await stream_event(on_a, reading)

        await on_b.init(b.api.token(user))
        also_on_b = await on_b.subscribe(STREAM, following(message, 5))
        # Whether B's subscription reads it or hears of it, its event is the same; either way
        # it subscribed to the channel first.
        await append(b.api, user, message, 6, "six")
        await stream_event(on_a, reading)
        await stream_event(on_b, also_on_b)
        readers_on_both = await subscribers(redis, deltas)
        await on_b.complete(also_on_b)
        one_left = await until_subscribers(redis, deltas, 1)
        after_b_left = await channels_of(redis, make_api, user)

        live_changes = await on_a.subscribe(CHANGES, {"since": await sync_token(a.api, user)})
        await create_conversation(a.api, user, "noted")
        await on_a.receive_for(live_changes, DELIVERY_GUARD)
        with_changes = await channels_of(redis, make_api, user)

        await finish(b.api, user, message, "COMPLETE", 6)
        await stream_event(on_a, reading)
        ended = await on_a.receive_for(reading, DELIVERY_GUARD)
        after_the_end = await until_channels(redis, make_api, user, {changes})
        await on_a.complete(live_changes)
        after_all_left = await until_channels(redis, make_api, user, set())
    assert before == set()
    assert reader_on_a == ({deltas}, 1)
    assert readers_on_both == 2
    assert (after_b_left, one_left) == ({deltas}, 1)
    assert with_changes == {deltas, changes}
    assert ended == {"id": reading, "type": "complete"}
    assert after_the_end == {changes}
    assert after_all_left == set()


async def test_after_redis_restarts_each_channel_still_wanted_is_subscribed_again(
    make_api: AppFactory,
) -> None:
    """A reads two streams and the user's changes; Redis restarts, and meanwhile one stream's
    reader leaves and B stores a delta whose announcement is lost. Once Redis is back, A holds
    exactly the channels still wanted; B's next delta reaches A through Redis, and the gap it
    shows brings the lost one from the table first."""
    user = new_user()
    with redis_server() as redis_process:
        through_redis = {"broadcast_url": redis_process.url, **NO_POLL}
        async with (
            make_api.live(subscriptions=through_redis) as a,
            make_api.live(subscriptions=through_redis) as b,
            a.socket() as socket,
        ):
            kept = await a_stream(b.api, user, ["kept "])
            left = await a_stream(b.api, user, ["left "])
            await socket.init(a.api.token(user))
            reading = await socket.subscribe(STREAM, following(kept))
            leaving = await socket.subscribe(STREAM, following(left))
            live_changes = await socket.subscribe(CHANGES, {"since": await sync_token(a.api, user)})
            first = await socket.receive_for(reading, DELIVERY_GUARD)
            await socket.receive_for(leaving, DELIVERY_GUARD)

            redis_process.stop()
            await socket.complete(leaving)
            # Stored while Redis is away: its announcement is lost.
            await append(b.api, user, kept, 2, "while ")
            redis_process.start()

            wanted = {stream_channel(make_api, user, kept["id"]), changes_channel(make_api, user)}
            async with inspecting(redis_process.url) as redis:
                back = await until_channels(redis, make_api, user, wanted)
            await append(b.api, user, kept, 3, "away")
            caught_up = await socket.receive_for(reading, DELIVERY_GUARD)
            await append(b.api, user, kept, 4, ".")
            after = await socket.receive_for(reading, DELIVERY_GUARD)
            await create_conversation(b.api, user, "after the restart")
            change = await socket.receive_for(live_changes, DELIVERY_GUARD)
    assert back == wanted
    assert first["payload"]["data"]["messageStream"]["seq"] == 1
    assert [
        {key: message["payload"]["data"]["messageStream"][key] for key in ("seq", "delta")}
        for message in (caught_up, after)
    ] == [{"seq": 3, "delta": "while away"}, {"seq": 4, "delta": "."}]
    assert change["payload"]["data"]["changes"]["conversation"]["title"] == "after the restart"


async def test_with_redis_unreachable_a_stream_is_followed_by_polling_the_table(
    make_api: AppFactory,
) -> None:
    """A's Redis never answers (nothing listens at its port): its subscriptions start all the
    same, and B's deltas, which A can hear of from nowhere, come by A's poll of the table."""
    unreachable = {"broadcast_url": f"redis://127.0.0.1:{free_port()}/0", "poll_seconds": 0.5}
    user = new_user()
    async with (
        make_api.live(subscriptions=unreachable) as a,
        make_api.live() as b,
        a.socket() as socket,
    ):
        message = await a_stream(b.api, user, ["first "])
        await socket.init(a.api.token(user))
        sub = await socket.subscribe(STREAM, following(message))
        replayed = await stream_event(socket, sub)
        await append(b.api, user, message, 2, "polled")
        polled = await stream_event(socket, sub)
        await finish(b.api, user, message, "STOPPED", 2)
        last = await stream_event(socket, sub)
    assert [replayed, polled, last] == [
        {"seq": 1, "delta": "first ", "status": "STREAMING"},
        {"seq": 2, "delta": "polled", "status": "STREAMING"},
        {"seq": 2, "delta": "", "status": "STOPPED"},
    ]
