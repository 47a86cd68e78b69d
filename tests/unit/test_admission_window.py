"""The places a process admits follow how long requests hold them: a request late past half
the deadline halves them (once per round of requests), requests in time give them back up
to MAX_CONCURRENT_REQUESTS, and time a request waited for its user's own writes is not
lateness. The admission's clock is the test's, so nothing here depends on how long anything
takes; a wait of zero sheds at once."""

from __future__ import annotations

import asyncio
import contextlib

from graphql_api import deadline
from graphql_api.admission import Admission
from graphql_api.storage.client import KeyedLocks

DEADLINE = 10.0
LATE = 6.0
IN_TIME = 1.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def admission(clock: Clock, *, limit: int = 8) -> Admission:
    return Admission(limit=limit, wait_seconds=0.0, deadline_seconds=DEADLINE, clock=clock)


async def admitted(places: Admission, count: int) -> tuple[contextlib.AsyncExitStack, int]:
    """Hold up to `count` places; how many were given."""
    stack = contextlib.AsyncExitStack()
    given = 0
    for _ in range(count):
        if await stack.enter_async_context(places.place()):
            given += 1
    return stack, given


async def hold(places: Admission, clock: Clock, seconds: float) -> None:
    async with places.place() as ok:
        assert ok
        clock.now += seconds


async def test_a_late_request_halves_the_places_and_a_request_past_them_is_shed() -> None:
    clock = Clock()
    told: list[int] = []
    places = Admission(
        limit=8, wait_seconds=0.0, deadline_seconds=DEADLINE, clock=clock, on_places=told.append
    )

    await hold(places, clock, LATE)
    stack, given = await admitted(places, 5)
    await stack.aclose()

    assert places.places == 4
    assert given == 4
    # The metric's gauge: the ceiling at the start, each change after.
    assert told == [8, 4]


async def test_requests_admitted_before_a_shrink_do_not_shrink_it_again() -> None:
    clock = Clock()
    places = admission(clock)

    stack, given = await admitted(places, 8)
    clock.now += LATE
    await stack.aclose()

    assert given == 8
    assert places.places == 4


async def test_requests_in_time_give_the_places_back_up_to_the_ceiling() -> None:
    clock = Clock()
    places = admission(clock)
    await hold(places, clock, LATE)
    await hold(places, clock, LATE)
    assert places.places == 2

    grown = []
    for _ in range(60):
        await hold(places, clock, IN_TIME)
        grown.append(places.places)

    # About one place per round of requests (two from two places), as TCP's window grows.
    assert grown[:4] == [2, 2, 3, 3]
    assert sorted(grown) == grown
    assert grown[-1] == 8


async def test_time_queued_behind_the_users_own_writes_is_not_lateness() -> None:
    clock = Clock()
    places = admission(clock)

    async with places.place() as ok:
        assert ok
        deadline.queued(LATE)
        clock.now += LATE + IN_TIME

    assert places.places == 8


async def test_a_request_late_besides_its_queueing_is_late() -> None:
    clock = Clock()
    places = admission(clock)

    async with places.place() as ok:
        assert ok
        deadline.queued(IN_TIME)
        clock.now += IN_TIME + LATE

    assert places.places == 4


async def test_a_write_counts_its_wait_for_the_same_users_write_as_queued() -> None:
    writers = KeyedLocks()
    first_holds = asyncio.Event()
    let_go = asyncio.Event()

    async def first() -> None:
        async with writers.hold("user"):
            first_holds.set()
            await let_go.wait()

    async def second() -> float:
        with deadline.within(DEADLINE) as admitted:
            async with writers.hold("user"):
                return admitted.queued

    async def other_user() -> float:
        with deadline.within(DEADLINE) as admitted:
            async with writers.hold("someone else"):
                return admitted.queued

    holding = asyncio.create_task(first())
    await first_holds.wait()
    waiting = asyncio.create_task(second())
    # As far as it goes: to the lock the first write holds.
    for _ in range(3):
        await asyncio.sleep(0)
    unrelated = await other_user()
    let_go.set()
    await holding

    assert await waiting > 0
    assert unrelated == 0
