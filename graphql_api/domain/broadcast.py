"""Announcing committed changes to live subscribers: in this process, and through Redis in every
other one.

Announcements are best effort by design. The change log is what a subscriber relies on (see
domain.live): an announcement lost on the way (Redis down, an instance that died between its
commit and its publish, a subscriber too slow to keep up) costs that subscriber some latency,
never a change. So nothing here retries, persists or acknowledges anything.

An announcement is the compact change (version, kind, conversation id, message positions): no
title, no content. The subscriber reads what it delivers through the caller's own loaders.

With Redis, each user's changes go to their own channel, and each process listens to the
table's channels with one pattern subscription made at startup, so a subscription starting
later is listening from its first moment without a round trip to Redis. Every process then
receives every announcement and drops those of users with no subscriber here (after reading
the channel name only). A process's own subscribers are told directly, not through Redis.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, cast

from graphql_api.settings import SubscriptionSettings
from graphql_api.storage.items import CHANGE_KINDS
from graphql_api.storage.records import (
    ChangeKind,
    ChangeRecord,
    MessagePosition,
    format_timestamp,
    parse_timestamp,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger(__name__)

# Announcements a subscriber may have waiting before it is told it fell behind (it then reads
# the log instead of the announcements it missed).
INBOX_CAPACITY: Final = 256
# A write waits for its publish; Redis answers in a millisecond, so this only bounds how long
# a Redis outage slows each write.
PUBLISH_TIMEOUT_SECONDS: Final = 1.0
# How long startup waits for Redis to confirm the pattern subscription; without it, the process
# starts anyway and its subscribers rely on reading the log until Redis is back.
SUBSCRIBE_TIMEOUT_SECONDS: Final = 5.0
_READ_TIMEOUT_SECONDS: Final = 1.0
_RETRY_CAP_SECONDS: Final = 5.0
_KINDS: Final = frozenset(CHANGE_KINDS)


class Inbox:
    """One subscription's announced changes, waiting to be delivered. Bounded: past
    INBOX_CAPACITY it drops announcements and remembers that it did."""

    def __init__(self, *, capacity: int = INBOX_CAPACITY) -> None:
        self._pending: collections.deque[ChangeRecord] = collections.deque()
        self._capacity = capacity
        self._overflowed = False
        self._wake = asyncio.Event()

    def put(self, change: ChangeRecord) -> None:
        if len(self._pending) >= self._capacity:
            self._overflowed = True
        else:
            self._pending.append(change)
        self._wake.set()

    async def wait(self, seconds: float) -> bool:
        """Until something is announced (True) or `seconds` pass (False)."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    def take(self) -> tuple[list[ChangeRecord], bool]:
        """What was announced since the last take, and whether some of it was dropped."""
        taken, overflowed = list(self._pending), self._overflowed
        self._pending.clear()
        self._overflowed = False
        self._wake.clear()
        return taken, overflowed


class Listeners:
    """This process's inboxes, by user."""

    def __init__(self) -> None:
        self._by_user: dict[str, set[Inbox]] = {}

    @contextlib.contextmanager
    def listening(self, user_id: str) -> Iterator[Inbox]:
        inbox = Inbox()
        self._by_user.setdefault(user_id, set()).add(inbox)
        try:
            yield inbox
        finally:
            inboxes = self._by_user[user_id]
            inboxes.discard(inbox)
            if not inboxes:
                del self._by_user[user_id]

    def wanted(self, user_id: str) -> bool:
        return user_id in self._by_user

    def deliver(self, user_id: str, change: ChangeRecord) -> None:
        for inbox in self._by_user.get(user_id, ()):
            inbox.put(change)


class Broadcast(Protocol):
    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        """Announce a committed change (the table's listener calls this after each commit)."""

    def listen(self, user_id: str) -> contextlib.AbstractContextManager[Inbox]:
        """An inbox receiving `user_id`'s announcements from the moment this returns."""


class LocalBroadcast:
    """One process: subscribers hear only of writes this process commits (the dev stack, or
    a single instance)."""

    def __init__(self) -> None:
        self.listeners = Listeners()

    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        self.listeners.deliver(user_id, change)

    def listen(self, user_id: str) -> contextlib.AbstractContextManager[Inbox]:
        return self.listeners.listening(user_id)


class RedisBroadcast:
    """Every process sharing one Redis (or Valkey) through its pub/sub."""

    def __init__(self, *, publisher: Redis, pubsub: PubSub, channel_prefix: str) -> None:
        self.listeners = Listeners()
        self._publisher = publisher
        self._pubsub = pubsub
        self._prefix = channel_prefix
        # Tells our own announcements apart when Redis hands them back.
        self._origin = uuid.uuid4().hex
        self.subscribed = asyncio.Event()

    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        self.listeners.deliver(user_id, change)
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            await self._publisher.publish(
                self._prefix + user_id, encode_change(change, origin=self._origin)
            )

    def listen(self, user_id: str) -> contextlib.AbstractContextManager[Inbox]:
        return self.listeners.listening(user_id)

    async def read(self) -> None:
        """Hand what Redis announces to this process's inboxes, until cancelled; through
        Redis outages (redis-py reconnects and subscribes again)."""
        pattern = self._prefix + "*"
        delay = 0.25
        while True:
            try:
                if not self._pubsub.subscribed:
                    await self._pubsub.psubscribe(pattern)
                message = await self._pubsub.get_message(timeout=_READ_TIMEOUT_SECONDS)
            except Exception as exc:  # whatever Redis does, keep listening
                self.subscribed.clear()
                logger.warning("Redis pub/sub unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_CAP_SECONDS)
                continue
            delay = 0.25
            if message is None:
                continue
            if message["type"] == "psubscribe":
                self.subscribed.set()
            elif message["type"] == "pmessage":
                self._dispatch(message["channel"], message["data"])

    def _dispatch(self, channel: bytes, data: bytes) -> None:
        user_id = channel.decode()[len(self._prefix) :]
        if not self.listeners.wanted(user_id):
            return
        try:
            origin, change = decode_change(data)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed change announcement on %s", channel)
            return
        if origin != self._origin:
            self.listeners.deliver(user_id, change)


def channel_prefix(table_name: str) -> str:
    """Channels of one table's users: deployments sharing a Redis never hear each other."""
    return f"chat-history:{table_name}:changes:"


def encode_change(change: ChangeRecord, *, origin: str) -> str:
    return json.dumps(
        {
            "o": origin,
            "v": change.version,
            "k": change.kind,
            "c": change.conversation_id,
            "p": change.project_id,
            "t": format_timestamp(change.created_at),
            "m": [[p.segment, p.depth, p.message_id] for p in change.messages],
        },
        separators=(",", ":"),
    )


def decode_change(data: bytes | str) -> tuple[str, ChangeRecord]:
    """(origin, change); ValueError, KeyError or TypeError for anything else."""
    fields: dict[str, Any] = json.loads(data)
    kind = fields["k"]
    version = fields["v"]
    if kind not in _KINDS or not isinstance(version, int) or isinstance(version, bool):
        raise ValueError("not a change")
    created_at: datetime = parse_timestamp(fields["t"])
    conversation_id, project_id = fields["c"], fields.get("p")
    return str(fields["o"]), ChangeRecord(
        version=version,
        kind=cast(ChangeKind, kind),
        conversation_id=None if conversation_id is None else str(conversation_id),
        project_id=None if project_id is None else str(project_id),
        created_at=created_at,
        messages=tuple(
            MessagePosition(segment=int(segment), depth=int(depth), message_id=str(message_id))
            for segment, depth, message_id in fields["m"]
        ),
    )


@contextlib.asynccontextmanager
async def open_broadcast(
    settings: SubscriptionSettings, *, table_name: str, password: str | None = None
) -> AsyncIterator[Broadcast]:
    """The broadcast `settings.broadcast_url` names: in-process when unset, else Redis, where
    `password` (REDIS_AUTH_TOKEN) authenticates unless the URL carries one."""
    if settings.broadcast_url is None:
        yield LocalBroadcast()
        return
    # Imported only here: a process without Redis (Lambda, the dev stack) never loads it.
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff

    options: dict[str, Any] = {
        # redis-py lets the URL's own password, if any, win over this one.
        "password": password,
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
        # A pooled connection Redis dropped (a restart, a failover) fails its next command:
        # try again on a new one, within PUBLISH_TIMEOUT_SECONDS.
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
    }
    publisher = Redis.from_url(settings.broadcast_url, socket_timeout=2.0, **options)
    # Its own connection: a subscribed connection can run no other command. Pings keep a
    # silent connection from being dropped by anything in between.
    reader = Redis.from_url(settings.broadcast_url, health_check_interval=30, **options)
    pubsub = reader.pubsub()
    broadcast = RedisBroadcast(
        publisher=publisher, pubsub=pubsub, channel_prefix=channel_prefix(table_name)
    )
    reading = asyncio.create_task(broadcast.read(), name="redis-broadcast")
    try:
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await broadcast.subscribed.wait()
        except TimeoutError:
            logger.warning("Redis did not confirm the subscription; subscribers poll the log")
        yield broadcast
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await reader.aclose()
        await publisher.aclose()
