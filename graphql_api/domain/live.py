"""A live subscription to a user's changes: the log replayed after `since`, then what commits,
in version order, with no gap and no repeat. (A subscription to one streamed message follows
the same steps: domain.live_stream.)

The order of the steps is what makes it so:

1. Listen first (an inbox on the broadcast). Every change that commits from then on is either
   announced to the inbox or, if its announcement is lost, still in the log.
2. Then fix the starting point: `since`'s version, or without `since` the current version
   (read after listening, so nothing committed in between can fall through).
3. Deliver in version order from the log and the inbox together, remembering the last version
   delivered (`sent`): an announcement at or below it is a repeat and is dropped; one exactly
   one past it is delivered as announced; one further ahead means announcements were missed,
   so the missing versions are read from the log first.
4. An announcement can be lost for good (Redis down, an instance that died right after its
   commit, an inbox overflowing). So when nothing has been announced for `poll_seconds`, the
   subscription reads the current version (one strongly consistent GetItem) and catches up
   from the log if it is ahead. A lost announcement is therefore delivered at most
   `poll_seconds` (plus one read) after its commit.

A `conversationId` filter only hides what is delivered: `sent` still moves over every change,
so gap detection keeps working.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Iterable
from datetime import datetime
from typing import Final, Protocol

from graphql_api.errors import ResyncRequiredError, UnavailableError
from graphql_api.storage.records import ChangeRecord

from . import rules
from .broadcast import Broadcast, Inbox
from .chat import UserChat
from .cursors import SyncPosition
from .live_stream import LiveDelta, StreamFollower

logger = logging.getLogger(__name__)

# Changes read from the log per request while catching up.
CATCH_UP_PAGE: Final = 100


class SubscriptionGauge(Protocol):
    """Where open subscriptions are counted (the app's metrics)."""

    def subscription_opened(self) -> None: ...

    def subscription_closed(self) -> None: ...


class _Uncounted:
    def subscription_opened(self) -> None:
        pass

    def subscription_closed(self) -> None:
        pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class LiveChanges:
    """What one process gives its subscriptions."""

    broadcast: Broadcast
    poll_seconds: float
    gauge: SubscriptionGauge = dataclasses.field(default_factory=_Uncounted)

    async def follow(
        self, chat: UserChat, *, since: str | None, conversation_id: str | None = None
    ) -> AsyncGenerator[ChangeRecord]:
        """The caller's changes after `since` (or from now), then live, until closed.

        ValidationError for a bad `since` or `conversationId`; ResyncRequiredError when
        `since` is older than the retained history.
        """
        position = None if since is None else chat.sync_position(since)
        wanted = (
            None
            if conversation_id is None
            else rules.uuid_id(conversation_id, field="conversationId")
        )
        self.gauge.subscription_opened()
        try:
            async with self.broadcast.changes(chat.user_id) as inbox:
                stream = _Stream(chat, inbox, poll_seconds=self.poll_seconds)
                async for change in stream.run(position):
                    if wanted is None or change.conversation_id == wanted:
                        yield change
        finally:
            self.gauge.subscription_closed()

    async def follow_message(
        self, chat: UserChat, *, conversation_id: str, message_id: str, after_seq: int
    ) -> AsyncGenerator[LiveDelta]:
        """The caller's streamed message after `after_seq`, then live, until its last event
        (see domain.live_stream).

        ValidationError for a bad id or afterSeq; NotFoundError when the caller has no such
        streamed message (another user's, one added whole, none), or when it is deleted while
        followed.
        """
        conversation_id = rules.uuid_id(conversation_id, field="conversationId")
        message_id = rules.uuid_id(message_id, field="messageId")
        after = rules.after_seq(after_seq)
        self.gauge.subscription_opened()
        try:
            async with self.broadcast.stream(chat.user_id, message_id) as inbox:
                follower = StreamFollower(
                    chat,
                    inbox,
                    conversation_id=conversation_id,
                    message_id=message_id,
                    poll_seconds=self.poll_seconds,
                )
                async for event in follower.run(after):
                    yield event
        finally:
            self.gauge.subscription_closed()


class _Stream:
    def __init__(self, chat: UserChat, inbox: Inbox[ChangeRecord], *, poll_seconds: float) -> None:
        self._chat = chat
        self._inbox = inbox
        self._poll_seconds = poll_seconds
        self.sent = 0

    async def run(self, since: SyncPosition | None) -> AsyncIterator[ChangeRecord]:
        # The inbox is already listening (the caller opened it): now fix the starting point.
        if since is None:
            self.sent = await self._chat.change_version()
        else:
            self.sent = since.version
            async for change in self._catch_up(issued_at=since.issued_at):
                yield change
        while True:
            announced = await self._inbox.wait(self._poll_seconds)
            changes, overflowed = self._inbox.take()
            try:
                async for change in self._deliver(changes, lost=overflowed, idle=not announced):
                    yield change
            except UnavailableError as exc:
                # Nothing is lost: the log still holds it, read again at the next wake-up.
                logger.warning("a subscription could not read the change log: %s", exc)

    async def _deliver(
        self, announced: Iterable[ChangeRecord], *, lost: bool, idle: bool
    ) -> AsyncIterator[ChangeRecord]:
        for change in sorted(announced, key=lambda change: change.version):
            if change.version <= self.sent:
                continue
            if change.version > self.sent + 1:
                # Announcements were missed in between: the log has them (and this one).
                async for caught in self._catch_up():
                    yield caught
                continue
            self.sent = change.version
            yield change
        if lost or (idle and await self._chat.change_version() > self.sent):
            async for caught in self._catch_up():
                yield caught

    async def _catch_up(self, *, issued_at: datetime | None = None) -> AsyncIterator[ChangeRecord]:
        """Everything in the log after `sent`, in order."""
        while True:
            page = await self._chat.changes_after(
                self.sent, limit=CATCH_UP_PAGE, issued_at=issued_at
            )
            if page.resync_required:
                raise ResyncRequiredError("since is older than the retained history")
            for change in page.changes:
                self.sent = change.version
                yield change
            if not page.has_more:
                return
            issued_at = None
