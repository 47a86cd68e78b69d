"""The per-process stream cache: bounded, forgetful after idling, and keyed by the user."""

from __future__ import annotations

import dataclasses

from graphql_api.domain.streams import StreamCache
from graphql_api.storage.streams import StreamTip

TIP = StreamTip(seq=3, end=12, size=14)


@dataclasses.dataclass
class Ticks:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_is_kept_per_user_conversation_and_message() -> None:
    cache = StreamCache()
    cache.put(("alice", "c", "m"), TIP)

    assert cache.get(("alice", "c", "m")) == TIP
    assert cache.get(("bob", "c", "m")) is None
    assert cache.get(("alice", "c", "other")) is None


def test_an_idle_entry_is_forgotten_and_a_used_one_kept() -> None:
    ticks = Ticks()
    cache = StreamCache(idle_seconds=60, clock=ticks)
    cache.put(("u", "c", "used"), TIP)
    cache.put(("u", "c", "idle"), TIP)

    ticks.now = 59
    assert cache.get(("u", "c", "used")) == TIP
    ticks.now = 61
    assert cache.get(("u", "c", "idle")) is None
    assert cache.get(("u", "c", "used")) == TIP
    assert len(cache) == 1


def test_the_least_recently_used_entries_go_past_the_bound() -> None:
    cache = StreamCache(max_entries=2)
    cache.put(("u", "c", "a"), TIP)
    cache.put(("u", "c", "b"), TIP)
    cache.get(("u", "c", "a"))
    cache.put(("u", "c", "c"), TIP)

    assert [cache.get(("u", "c", name)) is not None for name in "abc"] == [True, False, True]


def test_a_forgotten_entry_is_gone() -> None:
    cache = StreamCache()
    cache.put(("u", "c", "m"), TIP)
    cache.forget(("u", "c", "m"))
    cache.forget(("u", "c", "never"))

    assert cache.get(("u", "c", "m")) is None
