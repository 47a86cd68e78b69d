"""A live subscription to one streamed message: its text after `afterSeq`, then each delta as
it is stored, in seq order with no gap and no repeat, then one last event as it ends.

The steps are domain.live's, applied to a stream's seqs instead of a user's versions:

1. Listen first (an inbox on the message's channel, confirmed by Redis). Every delta stored
   from then on is either announced to the inbox or, if its announcement is lost, in the table.
2. Then fix the starting point: read the stream after `afterSeq` and deliver what is stored
   after it as ONE event (the deltas coalesced; its seq is the last of them).
3. Deliver the announced deltas in seq order, remembering the last seq delivered (`sent`): an
   announcement at or below it is a repeat and is dropped; one exactly past it is delivered as
   announced (the text travels in the announcement: no read); one further ahead means
   announcements were missed, so the stream is read after `sent` and what it holds is
   delivered as one event.
4. A finish announced, or a read finding the message finished, ends it: one read of the final
   state, one last event with the final status and the text after `sent` (or, when
   finishMessage replaced what streamed, the whole final text in `content`), then the
   subscription completes. A message finished before the subscription starts is that one
   event, then complete.
5. Announcements can be lost for good (Redis down, a writer that died between its put and its
   publish, an inbox overflowing), so when nothing is announced for `poll_seconds` the stream
   is read: a lost delta or finish arrives at most that late. It is read too when the lease is
   due to pass: a stream with no append for STREAM_LEASE_SECONDS gets one event with status
   INTERRUPTED and no text, and the subscription stays open (a late append goes on STREAMING,
   a late finish ends it).

The channel is the user's and the message id's: a message of another conversation with the
same id (ids are client-chosen) shares it, and its events are dropped here.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import datetime

from graphql_api.errors import UnavailableError
from graphql_api.storage.deltas import StreamState
from graphql_api.storage.records import MessageStatus, StreamEvent

from .broadcast import Inbox
from .chat import UserChat

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LiveDelta:
    """One event of a followed stream: `delta` follows the text up to the previous event's
    seq; `seq` is where the reader's text ends with it (resubscribe with afterSeq = seq)."""

    message_id: str
    seq: int
    delta: str
    status: MessageStatus
    # On the last event only, when finishMessage replaced what streamed: the whole final text
    # (then `delta` is empty).
    content: str | None = None


class StreamFollower:
    """One subscription's progress through one stream (see the module's docstring)."""

    def __init__(
        self,
        chat: UserChat,
        inbox: Inbox[StreamEvent],
        *,
        conversation_id: str,
        message_id: str,
        poll_seconds: float,
    ) -> None:
        self._chat = chat
        self._inbox = inbox
        self._conversation_id = conversation_id
        self._message_id = message_id
        self._poll_seconds = poll_seconds
        self.sent = 0
        # The status last delivered, and when the stream last moved (by the table's clock).
        self._told: MessageStatus = "streaming"
        self._active_at: datetime | None = None
        self._ended = False
        # Characters given at seq 0: the text an imported message started with.
        self._given_at_zero = 0

    async def run(self, after: int) -> AsyncIterator[LiveDelta]:
        # The inbox is already listening (the caller opened it): now fix the starting point.
        self.sent = after
        for event in self._caught_up(await self._read()):
            yield event
        while not self._ended:
            announced = await self._inbox.wait(self._wait_seconds())
            events, overflowed = self._inbox.take()
            try:
                async for event in self._deliver(events, lost=overflowed, idle=not announced):
                    yield event
            except UnavailableError as exc:
                # Nothing is lost: the table still holds it, read again at the next wake-up.
                logger.warning("a message stream could not read the table: %s", exc)

    async def _deliver(
        self, announced: Iterable[StreamEvent], *, lost: bool, idle: bool
    ) -> AsyncIterator[LiveDelta]:
        mine = sorted(
            (event for event in announced if event.conversation_id == self._conversation_id),
            # A finish comes after the append of its seq.
            key=lambda event: (event.seq, event.status != "streaming"),
        )
        for event in mine:
            if event.status == "streaming" and event.seq <= self.sent:
                continue
            if event.status == "streaming" and event.seq == self.sent + 1:
                self.sent = event.seq
                self._told = "streaming"
                self._active_at = self._chat.table.clock()
                yield LiveDelta(
                    message_id=self._message_id,
                    seq=event.seq,
                    delta=event.delta,
                    status="streaming",
                )
                continue
            # Announcements were missed in between, or this is the finish: the table has it all.
            for caught in self._caught_up(await self._read()):
                yield caught
            if self._ended:
                return
        if lost or idle:
            for caught in self._caught_up(await self._read()):
                yield caught

    async def _read(self) -> StreamState:
        return await self._chat.stream_state(
            conversation_id=self._conversation_id, message_id=self._message_id, after=self.sent
        )

    def _caught_up(self, state: StreamState) -> list[LiveDelta]:
        """What a read of the stream after `sent` gives the reader."""
        text = state.text
        if self.sent == 0 and not state.replaced:
            # Read from seq 0, the text includes what the deltas follow (an imported message's
            # text): only the first event gives it.
            text = text[self._given_at_zero :]
        if state.final is not None:
            self._ended = True
            return [
                LiveDelta(
                    message_id=self._message_id,
                    seq=state.seq,
                    delta="" if state.replaced else text,
                    status=state.status,
                    content=text if state.replaced else None,
                )
            ]
        self._active_at = state.active_at
        if state.seq > self.sent or text:
            if state.seq == 0:
                self._given_at_zero += len(text)
            self.sent = state.seq
            self._told = state.status
            return [
                LiveDelta(
                    message_id=self._message_id, seq=state.seq, delta=text, status=state.status
                )
            ]
        if state.status != self._told and state.status == "interrupted":
            self._told = state.status
            return [
                LiveDelta(
                    message_id=self._message_id, seq=self.sent, delta="", status="interrupted"
                )
            ]
        return []

    def _wait_seconds(self) -> float:
        """Until the next read of the stream if nothing is announced: the poll, or sooner when
        the lease is due to pass (the table's clock)."""
        if self._told != "streaming" or self._active_at is None:
            return self._poll_seconds
        table = self._chat.table
        lease_left = (self._active_at + table.stream_lease - table.clock()).total_seconds()
        return max(0.0, min(self._poll_seconds, lease_left))
