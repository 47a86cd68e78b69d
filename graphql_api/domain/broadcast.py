"""Announcing what was written to live subscribers: in this process, and through Redis in every
other one.

Two kinds of announcement travel, each on channels of its own:

- A committed change, on its user's change channel (`chat-history:<table>:changes:<user>`):
  the compact change (version, kind, conversation id, message positions), no title, no
  content. The subscriber reads what it delivers through the caller's own loaders
  (domain.live).
- A stored delta of a streaming message, or its finish, on the message's stream channel
  (`chat-history:<table>:stream:<user>:<message>`): the delta's text itself, so a subscriber
  needs no read per delta (domain.live_stream). The user is in the name so that two users'
  colliding client-chosen message ids never share a channel.

Announcements are best effort by design. The table is what a subscriber relies on (the change
log, the stored deltas): an announcement lost on the way (Redis down, an instance that died
between its write and its publish, a subscriber too slow to keep up) costs that subscriber
some latency, never a change or a delta. So nothing here retries, persists or acknowledges.

With Redis, a process subscribes to a channel only while one of its own subscribers wants it:
the first local listener of a channel has it subscribed, and waits for Redis to confirm before
the subscription fixes its starting point (so nothing published afterwards can pass it by);
the last one to leave has it unsubscribed. A process therefore receives only what its own
subscribers want, and the fan-out grows with readers, not with writers. One reader task per
process owns the subscribing connection: it alone sends SUBSCRIBE and UNSUBSCRIBE and reads,
and after any failure it starts over on a new connection, subscribing again to every channel
still wanted. A process's own subscribers are told of its own writes directly, not through
Redis.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Protocol, TypeVar, cast, get_args

from graphql_api.settings import SubscriptionSettings
from graphql_api.storage.records import (
    ChangeKind,
    ChangeRecord,
    MessagePosition,
    MessageStatus,
    StreamEvent,
    format_timestamp,
    parse_timestamp,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Announcements a subscriber may have waiting before it is told it fell behind (it then reads
# the table instead of the announcements it missed).
INBOX_CAPACITY: Final = 256
# A write waits for its publish; Redis answers in a millisecond, so this only bounds how long
# a Redis outage slows each write.
PUBLISH_TIMEOUT_SECONDS: Final = 1.0
# How long a new subscription waits for Redis to confirm its channel (and startup for the
# reader's first connection); past it, the subscription starts anyway and relies on reading
# the table until the reader has the channel subscribed.
SUBSCRIBE_TIMEOUT_SECONDS: Final = 5.0
_READ_TIMEOUT_SECONDS: Final = 1.0
_RETRY_FIRST_SECONDS: Final = 0.25
_RETRY_CAP_SECONDS: Final = 5.0
_KINDS: Final = frozenset(get_args(ChangeKind))
_STATUSES: Final = frozenset(get_args(MessageStatus))


class Inbox(Generic[T]):
    """One subscription's announcements, waiting to be delivered. Bounded: past
    INBOX_CAPACITY it drops announcements and remembers that it did."""

    def __init__(self, *, capacity: int = INBOX_CAPACITY) -> None:
        self._pending: collections.deque[T] = collections.deque()
        self._capacity = capacity
        self._overflowed = False
        self._wake = asyncio.Event()

    def put(self, announced: T) -> None:
        if len(self._pending) >= self._capacity:
            self._overflowed = True
        else:
            self._pending.append(announced)
        self._wake.set()

    async def wait(self, seconds: float) -> bool:
        """Until something is announced (True) or `seconds` pass (False)."""
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            return False
        return True

    def take(self) -> tuple[list[T], bool]:
        """What was announced since the last take, and whether some of it was dropped."""
        taken, overflowed = list(self._pending), self._overflowed
        self._pending.clear()
        self._overflowed = False
        self._wake.clear()
        return taken, overflowed


class Listeners(Generic[T]):
    """This process's inboxes for one kind of announcement, by channel."""

    def __init__(self) -> None:
        self._by_channel: dict[str, set[Inbox[T]]] = {}

    @contextlib.contextmanager
    def listening(self, channel: str) -> Iterator[Inbox[T]]:
        inbox: Inbox[T] = Inbox()
        self._by_channel.setdefault(channel, set()).add(inbox)
        try:
            yield inbox
        finally:
            inboxes = self._by_channel[channel]
            inboxes.discard(inbox)
            if not inboxes:
                del self._by_channel[channel]

    def wanted(self, channel: str) -> bool:
        return channel in self._by_channel

    def deliver(self, channel: str, announced: T) -> None:
        for inbox in self._by_channel.get(channel, ()):
            inbox.put(announced)


@dataclasses.dataclass(frozen=True)
class ChannelNames:
    """The channels of one table's announcements: deployments sharing a Redis never hear each
    other."""

    table_name: str

    def changes(self, user_id: str) -> str:
        return f"chat-history:{self.table_name}:changes:{user_id}"

    def stream(self, user_id: str, message_id: str) -> str:
        return f"chat-history:{self.table_name}:stream:{user_id}:{message_id}"


class Broadcast(Protocol):
    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        """Announce a committed change (the table's listener)."""

    async def publish_stream(self, user_id: str, event: StreamEvent) -> None:
        """Announce a stored delta or a finish (the table's stream listener)."""

    def changes(self, user_id: str) -> contextlib.AbstractAsyncContextManager[Inbox[ChangeRecord]]:
        """An inbox of `user_id`'s changes, receiving every one announced once it is entered."""

    def stream(
        self, user_id: str, message_id: str
    ) -> contextlib.AbstractAsyncContextManager[Inbox[StreamEvent]]:
        """An inbox of one message's stream events (every conversation's message of that id:
        the subscriber keeps its own), receiving every one announced once it is entered."""


class LocalBroadcast:
    """One process: subscribers hear only of writes this process makes (the dev stack, or a
    single instance)."""

    def __init__(self, names: ChannelNames) -> None:
        self.names = names
        self._changes: Listeners[ChangeRecord] = Listeners()
        self._streams: Listeners[StreamEvent] = Listeners()

    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        self._changes.deliver(self.names.changes(user_id), change)

    async def publish_stream(self, user_id: str, event: StreamEvent) -> None:
        self._streams.deliver(self.names.stream(user_id, event.message_id), event)

    @contextlib.asynccontextmanager
    async def changes(self, user_id: str) -> AsyncIterator[Inbox[ChangeRecord]]:
        with self._changes.listening(self.names.changes(user_id)) as inbox:
            yield inbox

    @contextlib.asynccontextmanager
    async def stream(self, user_id: str, message_id: str) -> AsyncIterator[Inbox[StreamEvent]]:
        with self._streams.listening(self.names.stream(user_id, message_id)) as inbox:
            yield inbox


class Subscriptions:
    """The channels this process wants from Redis, counted by local listener, and whether Redis
    has confirmed each on the reader's current connection."""

    def __init__(self) -> None:
        self._counts: collections.Counter[str] = collections.Counter()
        self._confirmed: dict[str, asyncio.Event] = {}
        # Set whenever the wanted channels change: wakes the reader.
        self.changed = asyncio.Event()

    def add(self, channel: str) -> asyncio.Event:
        """One more listener of `channel`; the event is set once Redis confirms it."""
        self._counts[channel] += 1
        if self._counts[channel] == 1:
            self._confirmed[channel] = asyncio.Event()
            self.changed.set()
        return self._confirmed[channel]

    def remove(self, channel: str) -> None:
        self._counts[channel] -= 1
        if self._counts[channel] <= 0:
            del self._counts[channel]
            del self._confirmed[channel]
            self.changed.set()

    def wanted(self) -> set[str]:
        return set(self._counts)

    def confirm(self, channel: str) -> None:
        confirmed = self._confirmed.get(channel)
        if confirmed is not None:
            confirmed.set()

    def unconfirm_all(self) -> None:
        for confirmed in self._confirmed.values():
            confirmed.clear()


class RedisBroadcast:
    """Every process sharing one Redis (or Valkey) through its pub/sub, each subscribed to the
    channels its own subscribers want (see the module's docstring)."""

    def __init__(self, *, publisher: Redis, pubsub: PubSub, names: ChannelNames) -> None:
        self.names = names
        self.subscriptions = Subscriptions()
        # Set while the reader holds a connection to Redis.
        self.connected = asyncio.Event()
        self._changes: Listeners[ChangeRecord] = Listeners()
        self._streams: Listeners[StreamEvent] = Listeners()
        self._publisher = publisher
        self._pubsub = pubsub
        # Channels the reader asked Redis for on its current connection, and of those the
        # confirmations still to come (Redis answers in order, so a channel asked, left and
        # asked again is confirmed by the last of its answers, not the first).
        self._asked: set[str] = set()
        self._unanswered: collections.Counter[str] = collections.Counter()
        # Tells our own announcements apart when Redis hands them back.
        self._origin = uuid.uuid4().hex

    async def publish(self, user_id: str, change: ChangeRecord) -> None:
        channel = self.names.changes(user_id)
        self._changes.deliver(channel, change)
        await self._publish(channel, encode_change(change, origin=self._origin))

    async def publish_stream(self, user_id: str, event: StreamEvent) -> None:
        channel = self.names.stream(user_id, event.message_id)
        self._streams.deliver(channel, event)
        await self._publish(channel, encode_stream_event(event, origin=self._origin))

    async def _publish(self, channel: str, data: str) -> None:
        async with asyncio.timeout(PUBLISH_TIMEOUT_SECONDS):
            await self._publisher.publish(channel, data)

    def changes(self, user_id: str) -> contextlib.AbstractAsyncContextManager[Inbox[ChangeRecord]]:
        return self._listening(self._changes, self.names.changes(user_id))

    def stream(
        self, user_id: str, message_id: str
    ) -> contextlib.AbstractAsyncContextManager[Inbox[StreamEvent]]:
        return self._listening(self._streams, self.names.stream(user_id, message_id))

    @contextlib.asynccontextmanager
    async def _listening(self, listeners: Listeners[T], channel: str) -> AsyncIterator[Inbox[T]]:
        with listeners.listening(channel) as inbox:
            confirmed = self.subscriptions.add(channel)
            try:
                await self._confirmation(channel, confirmed)
                yield inbox
            finally:
                self.subscriptions.remove(channel)

    async def _confirmation(self, channel: str, confirmed: asyncio.Event) -> None:
        if not self.connected.is_set():
            # Redis is away: no point waiting; the reader subscribes once it is back.
            return
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await confirmed.wait()
        except TimeoutError:
            logger.warning("Redis did not confirm %s; its subscriber reads the table", channel)

    async def read(self) -> None:
        """Subscribe to the wanted channels and hand what Redis announces on them to this
        process's inboxes, until cancelled; through Redis outages, starting over on a new
        connection after each failure."""
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                await self._ask_for_wanted()
                message = await self._next_message()
            except Exception as exc:  # whatever Redis does, keep listening
                await self._start_over()
                logger.warning("Redis pub/sub unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_CAP_SECONDS)
                continue
            delay = _RETRY_FIRST_SECONDS
            if message is not None:
                self._handle(message)

    async def _ask_for_wanted(self) -> None:
        """On a change of the wanted channels (or a new connection): SUBSCRIBE what is wanted
        and not asked for yet, UNSUBSCRIBE what is asked for and no longer wanted."""
        if self._pubsub.connection is None:
            await self._pubsub.connect()  # type: ignore[no-untyped-call]
            self.connected.set()
            self.subscriptions.changed.set()
        if not self.subscriptions.changed.is_set():
            return
        # Cleared first: a change while the commands below are sent wakes the next round.
        self.subscriptions.changed.clear()
        wanted = self.subscriptions.wanted()
        new, gone = wanted - self._asked, self._asked - wanted
        # Left and wanted again before this round: still subscribed, and confirmed unless its
        # answer is yet to come (which then confirms it).
        for channel in wanted - new:
            if channel not in self._unanswered:
                self.subscriptions.confirm(channel)
        if new:
            await self._pubsub.subscribe(*sorted(new))
            self._asked.update(new)
            self._unanswered.update(new)
        if gone:
            await self._pubsub.unsubscribe(*sorted(gone))
            self._asked.difference_update(gone)

    async def _next_message(self) -> dict[str, Any] | None:
        """What Redis sends next; None after _READ_TIMEOUT_SECONDS, or as soon as the wanted
        channels change. A read cut short that way is what redis-py's own read timeout does:
        its parser keeps the bytes it has for the next read, so nothing is lost."""
        if self.subscriptions.changed.is_set():
            return None
        reading = asyncio.ensure_future(self._pubsub.get_message(timeout=_READ_TIMEOUT_SECONDS))
        changed = asyncio.ensure_future(self.subscriptions.changed.wait())
        try:
            await asyncio.wait((reading, changed), return_when=asyncio.FIRST_COMPLETED)
        finally:
            changed.cancel()
            reading.cancel()
            # The read unwinds before the connection carries the next command.
            await asyncio.wait((reading, changed))
        if reading.cancelled():
            return None
        return cast(dict[str, Any] | None, reading.result())

    async def _start_over(self) -> None:
        """Drop the connection and what was asked on it: the next round connects afresh and
        subscribes to every channel still wanted (redis-py's own resubscription after a
        reconnect would also bring back channels given up meanwhile)."""
        self.connected.clear()
        self._asked.clear()
        self._unanswered.clear()
        self.subscriptions.unconfirm_all()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "subscribe":
            channel = message["channel"].decode()
            self._unanswered[channel] -= 1
            if self._unanswered[channel] <= 0:
                del self._unanswered[channel]
                if channel in self._asked:
                    self.subscriptions.confirm(channel)
        elif kind == "message":
            self._dispatch(message["channel"].decode(), message["data"])

    def _dispatch(self, channel: str, data: bytes) -> None:
        try:
            if self._changes.wanted(channel):
                origin, change = decode_change(data)
                if origin != self._origin:
                    self._changes.deliver(channel, change)
            elif self._streams.wanted(channel):
                origin, event = decode_stream_event(data)
                if origin != self._origin:
                    self._streams.deliver(channel, event)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed announcement on %s", channel)


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
    if kind not in _KINDS or not _is_int(version):
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


def encode_stream_event(event: StreamEvent, *, origin: str) -> str:
    return json.dumps(
        {
            "o": origin,
            "c": event.conversation_id,
            "m": event.message_id,
            "s": event.seq,
            "d": event.delta,
            "st": event.status,
            "r": event.replaced,
        },
        separators=(",", ":"),
    )


def decode_stream_event(data: bytes | str) -> tuple[str, StreamEvent]:
    """(origin, event); ValueError, KeyError or TypeError for anything else."""
    fields: dict[str, Any] = json.loads(data)
    seq, delta, status = fields["s"], fields["d"], fields["st"]
    if not _is_int(seq) or not isinstance(delta, str) or status not in _STATUSES:
        raise ValueError("not a stream event")
    return str(fields["o"]), StreamEvent(
        conversation_id=str(fields["c"]),
        message_id=str(fields["m"]),
        seq=seq,
        delta=delta,
        status=cast(MessageStatus, status),
        replaced=fields["r"] is True,
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@contextlib.asynccontextmanager
async def open_broadcast(
    settings: SubscriptionSettings, *, table_name: str, password: str | None = None
) -> AsyncIterator[Broadcast]:
    """The broadcast `settings.broadcast_url` names: in-process when unset, else Redis, where
    `password` (REDIS_AUTH_TOKEN) authenticates unless the URL carries one."""
    names = ChannelNames(table_name)
    if settings.broadcast_url is None:
        yield LocalBroadcast(names)
        return
    # Imported only here: a process without Redis (Lambda, the dev stack) never loads it.
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff, NoBackoff

    options: dict[str, Any] = {
        # redis-py lets the URL's own password, if any, win over this one.
        "password": password,
        "socket_connect_timeout": 2.0,
        "socket_keepalive": True,
    }
    publisher = Redis.from_url(
        settings.broadcast_url,
        socket_timeout=2.0,
        # A pooled connection Redis dropped (a restart, a failover) fails its next command:
        # try again on a new one, within PUBLISH_TIMEOUT_SECONDS.
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
        retry_on_error=[redis_errors.ConnectionError, redis_errors.TimeoutError],
        **options,
    )
    # Its own connection: a subscribed connection can run no other command. Pings keep a
    # silent connection from being dropped by anything in between. No retries of redis-py's:
    # the reader starts over itself (RedisBroadcast._start_over).
    reader = Redis.from_url(
        settings.broadcast_url, health_check_interval=30, retry=Retry(NoBackoff(), 0), **options
    )
    pubsub = reader.pubsub()
    broadcast = RedisBroadcast(publisher=publisher, pubsub=pubsub, names=names)
    reading = asyncio.create_task(broadcast.read(), name="redis-broadcast")
    try:
        try:
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_SECONDS):
                await broadcast.connected.wait()
        except TimeoutError:
            logger.warning("Redis did not answer; subscribers read the table until it does")
        yield broadcast
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reading
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await reader.aclose()
        await publisher.aclose()
