"""Where this process last saw each stream: what makes a steady-state append one PutItem.

An entry is (user id, conversation id, message id) -> the stream's newest stored delta
(storage.streams.StreamTip). It is made only from what storage verified for that user (a
read of the stream's marker naming the user as its owner, or the user's own stored put), so a
request of another user never finds one, and dropped on any failure of an append (the
stream's state is then unknown: the next append reads it).

A stale entry is harmless by construction: it admits only the seq after the one it holds,
and storage's put of that seq is conditioned on its key being free. Once a stream is finished
each of its delta keys up to the one after the last holds a delta or a tombstone, so the put
fails and the append is refused. Tombstones last storage.streams.TOMBSTONE_LIFETIME (a day),
far longer than an entry lives without a successful put (STREAM_CACHE_IDLE).
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Final, TypeAlias

from graphql_api.storage.streams import StreamTip

# An entry not used for this long is forgotten; see the module's docstring for the bound it
# must keep against the tombstones' lifetime.
STREAM_CACHE_IDLE_SECONDS: Final = 60.0
# Far more streams than one instance serves at once; beyond, the least recently used go.
STREAM_CACHE_ENTRIES: Final = 10_000

StreamKey: TypeAlias = tuple[str, str, str]


class StreamCache:
    """An LRU of stream tips with an idle expiry, one per process (owned by domain.Chat)."""

    def __init__(
        self,
        *,
        max_entries: int = STREAM_CACHE_ENTRIES,
        idle_seconds: float = STREAM_CACHE_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._entries: collections.OrderedDict[StreamKey, tuple[StreamTip, float]] = (
            collections.OrderedDict()
        )
        self._max_entries = max_entries
        self._idle = idle_seconds
        self._clock = clock

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: StreamKey) -> StreamTip | None:
        found = self._entries.get(key)
        if found is None:
            return None
        tip, used = found
        now = self._clock()
        if now - used >= self._idle:
            del self._entries[key]
            return None
        self._entries[key] = (tip, now)
        self._entries.move_to_end(key)
        return tip

    def put(self, key: StreamKey, tip: StreamTip) -> None:
        self._entries[key] = (tip, self._clock())
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: StreamKey) -> None:
        self._entries.pop(key, None)
