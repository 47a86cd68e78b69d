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

import contextlib
from collections.abc import Iterator

import pytest

from tests.api.harness import create_conversation, new_user, sync_token
from tests.apps import AppFactory
from tests.redis_server import redis_server
from tests.sockets import LiveApi

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
