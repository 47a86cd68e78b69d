"""JwksCache against a real JWKS endpoint on loopback: sharing, penalty window, outages.

No test here reads a stopwatch. The penalty window runs on an injected clock; "fails fast"
means the answer comes without waiting for anything (`answered_at_once`); interleavings are
set up with the endpoint's `hold()` and with a hook on the moment a fetch ends; and the only
real time bound is a hang guard far above every timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

import aiohttp
import pytest

from graphql_api.auth import (
    AuthenticationError,
    JwksCache,
    SigningKeysUnavailableError,
    TokenVerifier,
)
from tests.tokens import JwksServer, SigningKey, TokenMinter

PENALTY = 10.0
# Long enough for the in-process JWKS server to answer on a loaded two-core CI machine: a fetch
# that times out by accident would fail a test about something else.
CONNECT_TIMEOUT = 1.0
TOTAL_TIMEOUT = 2.0
# Far above every timeout here: only a wait that never ends reaches it. Whether our own
# timeout ended a fetch is told by the endpoint still holding it (JwksServer.held); that a
# refused connection did, by timeouts set beyond the guard.
HANG_GUARD = 20.0
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Jwks"

T = TypeVar("T")


class FakeMonotonic:
    """Time for the penalty window, which a test cannot wait out for real."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def answered_at_once(call: Coroutine[Any, Any, T]) -> T:
    """Run `call` to its end in one step, failing if it would wait for anything (a fetch, I/O).

    This is "fails fast" without a stopwatch: the answer needs no await at all.
    """
    try:
        call.send(None)
    except StopIteration as finished:
        result: T = finished.value
        return result
    call.close()
    raise AssertionError("it waited instead of answering at once")


def outcome(call: Coroutine[Any, Any, object]) -> object:
    """What `call` answers at once: its result or its exception."""
    try:
        return answered_at_once(call)
    except Exception as exc:
        return exc


@contextlib.contextmanager
def as_each_fetch_ends(hook: Callable[[], None]) -> Iterator[None]:
    """Call `hook` the moment a JWKS fetch task finishes, before anything awaiting it resumes.

    A finished task's callbacks run in the order they were added, and whatever awaits the task
    resumes from one of them (or later still, through asyncio.shield). This one is added as the
    task is created, ahead of any waiter's, so the hook sees the cache exactly as a request
    arriving between the end of the fetch and the waiters' wake-up would.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_task_factory()

    def on_done(task: asyncio.Future[Any]) -> None:
        if isinstance(task, asyncio.Task) and task.get_name() == "jwks-fetch":
            hook()

    def factory(
        loop: asyncio.AbstractEventLoop,
        coro: Generator[Any, None, T] | Coroutine[Any, Any, T],
        /,
        **kwargs: Any,
    ) -> asyncio.Future[T]:
        if previous is None:
            task: asyncio.Future[T] = asyncio.Task(coro, loop=loop, **kwargs)
        else:
            task = previous(loop, coro, **kwargs)
        task.add_done_callback(on_done)
        return task

    loop.set_task_factory(factory)
    try:
        yield
    finally:
        loop.set_task_factory(previous)


@pytest.fixture(scope="module")
def old_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def new_key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def server(old_key: SigningKey) -> Iterator[JwksServer]:
    with JwksServer(keys=[old_key]) as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def cache(server: JwksServer, http: aiohttp.ClientSession, clock: FakeMonotonic) -> JwksCache:
    return JwksCache(
        url=server.url,
        session=http,
        penalty_seconds=PENALTY,
        connect_timeout=CONNECT_TIMEOUT,
        total_timeout=TOTAL_TIMEOUT,
        clock=clock,
    )


def verifier_for(cache: JwksCache) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        app_client_ids=["client"],
        token_use="access",
        leeway_seconds=0,
        jwks=cache,
    )


@pytest.fixture
def verifier(cache: JwksCache) -> TokenVerifier:
    return verifier_for(cache)


@pytest.fixture
def old_tokens(old_key: SigningKey) -> TokenMinter:
    return TokenMinter(issuer=ISSUER, client_id="client", key=old_key)


@pytest.fixture
def new_tokens(new_key: SigningKey) -> TokenMinter:
    return TokenMinter(issuer=ISSUER, client_id="client", key=new_key)


async def test_warm_fetches_once_and_cached_keys_need_no_more_fetches(
    cache: JwksCache, server: JwksServer, verifier: TokenVerifier, old_tokens: TokenMinter
) -> None:
    assert not cache.has_keys

    await cache.warm()
    for _ in range(5):
        await verifier.verify(old_tokens.access_token())

    assert cache.has_keys
    assert server.fetch_count == cache.fetch_count == 1


async def test_concurrent_tokens_with_a_new_kid_share_one_fetch(
    cache: JwksCache,
    server: JwksServer,
    verifier: TokenVerifier,
    old_key: SigningKey,
    new_key: SigningKey,
    new_tokens: TokenMinter,
) -> None:
    await cache.warm()
    server.rotate_to(old_key, new_key)

    identities = await asyncio.gather(
        *(verifier.verify(new_tokens.access_token(sub=f"user-{n}")) for n in range(20))
    )

    assert [identity.sub for identity in identities] == [f"user-{n}" for n in range(20)]
    assert server.fetch_count == 2, "one fetch to warm, exactly one for all 20 misses"


async def test_concurrent_misses_on_a_cold_cache_share_one_fetch(
    server: JwksServer, verifier: TokenVerifier, old_tokens: TokenMinter
) -> None:
    await asyncio.gather(*(verifier.verify(old_tokens.access_token()) for _ in range(20)))

    assert server.fetch_count == 1


async def test_an_unknown_kid_refetches_only_after_the_penalty_window(
    cache: JwksCache,
    server: JwksServer,
    clock: FakeMonotonic,
    old_key: SigningKey,
    new_key: SigningKey,
) -> None:
    await cache.warm()

    with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
        await cache.get_key(new_key.kid)
    assert server.fetch_count == 2

    server.rotate_to(old_key, new_key)
    clock.now += PENALTY - 0.1
    with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
        await cache.get_key(new_key.kid)
    assert server.fetch_count == 2, "no fetch inside the penalty window"

    clock.now += 0.2
    await cache.get_key(new_key.kid)
    assert server.fetch_count == 3


async def test_a_refetch_drops_keys_the_endpoint_withdrew(
    cache: JwksCache, server: JwksServer, old_key: SigningKey, new_key: SigningKey
) -> None:
    await cache.warm()
    server.rotate_to(new_key)

    await cache.get_key(new_key.kid)

    with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
        await cache.get_key(old_key.kid)


async def test_a_waiter_that_is_cancelled_does_not_cancel_the_shared_fetch(
    cache: JwksCache, server: JwksServer, old_key: SigningKey
) -> None:
    first = asyncio.create_task(cache.get_key(old_key.kid))
    await asyncio.sleep(0)  # let it start the fetch
    first.cancel()

    await cache.get_key(old_key.kid)

    assert first.cancelled()
    assert server.fetch_count == 1


async def test_a_hanging_endpoint_fails_in_bounded_time_while_cached_keys_keep_working(
    cache: JwksCache,
    server: JwksServer,
    verifier: TokenVerifier,
    old_tokens: TokenMinter,
    new_tokens: TokenMinter,
) -> None:
    await cache.warm()
    server.hang()

    miss = asyncio.create_task(verifier.verify(new_tokens.access_token()))
    await asyncio.sleep(0)  # one step: the miss has started the fetch and waits on it
    cached = answered_at_once(verifier.verify(old_tokens.access_token()))
    assert not miss.done()
    # The endpoint never answers: the total timeout ends the fetch, which the endpoint still
    # holds when the miss has failed.
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(SigningKeysUnavailableError):
            await miss

    assert server.held == 1
    assert cached.sub == "user-1"
    assert cache.fetch_count == 2


async def test_inside_the_penalty_window_an_outage_fails_fast_without_a_fetch(
    cache: JwksCache, server: JwksServer, verifier: TokenVerifier, new_tokens: TokenMinter
) -> None:
    await cache.warm()
    server.hang()
    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(SigningKeysUnavailableError):
            await verifier.verify(new_tokens.access_token())
    assert server.held == 1

    with pytest.raises(SigningKeysUnavailableError):
        answered_at_once(verifier.verify(new_tokens.access_token()))

    assert cache.fetch_count == 2


async def test_an_endpoint_that_is_down_fails_fast_while_cached_keys_keep_working(
    server: JwksServer,
    http: aiohttp.ClientSession,
    clock: FakeMonotonic,
    old_tokens: TokenMinter,
    new_tokens: TokenMinter,
) -> None:
    # Timeouts beyond the guard: the refused connection itself must end the fetch.
    patient = JwksCache(
        url=server.url,
        session=http,
        penalty_seconds=PENALTY,
        connect_timeout=HANG_GUARD * 2,
        total_timeout=HANG_GUARD * 2,
        clock=clock,
    )
    verifier = verifier_for(patient)
    await patient.warm()
    server.stop()

    async with asyncio.timeout(HANG_GUARD):
        with pytest.raises(SigningKeysUnavailableError):
            await verifier.verify(new_tokens.access_token())

    assert answered_at_once(verifier.verify(old_tokens.access_token())).sub == "user-1"
    assert patient.fetch_count == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        pytest.param(500, b'{"message": "internal error"}', id="500"),
        pytest.param(200, b"<html>maintenance</html>", id="not json"),
        pytest.param(200, b'{"keys": {"kid": "x"}}', id="keys not a list"),
        pytest.param(200, b"[]", id="not an object"),
        pytest.param(200, b"[" * 100_000, id="deeply nested"),
        pytest.param(200, b'{"keys": []' + b" " * 300_000 + b"}", id="too large"),
    ],
)
async def test_a_broken_endpoint_means_the_keys_are_unavailable(
    cache: JwksCache, server: JwksServer, old_key: SigningKey, status: int, body: bytes
) -> None:
    server.respond(status=status, body=body)

    with pytest.raises(SigningKeysUnavailableError):
        await cache.warm()
    with pytest.raises(SigningKeysUnavailableError):
        await cache.get_key(old_key.kid)

    assert not cache.has_keys
    assert server.fetch_count == 2


@pytest.mark.parametrize("status", [203, 404, 500, 503])
async def test_only_a_200_answer_is_taken_as_the_jwks(
    cache: JwksCache, server: JwksServer, old_key: SigningKey, status: int
) -> None:
    # A gateway's error page could be any JSON; only a 200 from the endpoint is the pool's keys.
    server.respond(status=status, body=json.dumps({"keys": [old_key.public_jwk()]}).encode())

    with pytest.raises(SigningKeysUnavailableError):
        await cache.warm()

    assert not cache.has_keys


async def test_keys_survive_a_broken_refetch(
    cache: JwksCache, server: JwksServer, old_key: SigningKey, new_key: SigningKey
) -> None:
    await cache.warm()
    server.respond(status=200, body=b'{"keys": "gone"}')

    with pytest.raises(SigningKeysUnavailableError):
        await cache.get_key(new_key.kid)

    assert await cache.get_key(old_key.kid) is not None
    assert cache.has_keys


async def test_the_endpoint_is_asked_again_once_the_penalty_after_an_outage_ends(
    cache: JwksCache, server: JwksServer, clock: FakeMonotonic, old_key: SigningKey
) -> None:
    server.fail()
    with pytest.raises(SigningKeysUnavailableError):
        await cache.get_key(old_key.kid)

    server.recover()
    clock.now += PENALTY

    await cache.get_key(old_key.kid)
    assert server.fetch_count == 2


# --- exactly one fetch per miss, whatever the interleaving


@pytest.mark.parametrize(
    ("fetch_fails", "answer"),
    [
        pytest.param(False, AuthenticationError("unknown signing key"), id="keys fetched"),
        pytest.param(True, SigningKeysUnavailableError(), id="fetch failed"),
    ],
)
async def test_a_miss_arriving_as_the_shared_fetch_ends_finds_the_window_already_open(
    cache: JwksCache,
    server: JwksServer,
    new_key: SigningKey,
    fetch_fails: bool,
    answer: AuthenticationError,
) -> None:
    await cache.warm()  # opens no window
    if fetch_fails:
        server.fail()
    waiting: list[asyncio.Task[object]] = []
    arrivals: list[tuple[bool, object]] = []

    def arrive() -> None:
        resumed = any(task.done() for task in waiting)
        arrivals.append((resumed, outcome(cache.get_key(new_key.kid))))

    with as_each_fetch_ends(arrive):
        waiting.append(asyncio.create_task(cache.get_key(new_key.kid)))
        with pytest.raises(type(answer)):
            await waiting[0]

    ((resumed, arrived),) = arrivals
    assert not resumed, "the hook ran before the waiter resumed"
    assert type(arrived) is type(answer)
    assert str(arrived) == str(answer)
    assert server.fetch_count == cache.fetch_count == 2, "one to warm, one for the miss"


async def test_a_burst_of_twenty_misses_on_one_unknown_kid_makes_exactly_one_fetch(
    cache: JwksCache, server: JwksServer, verifier: TokenVerifier, new_tokens: TokenMinter
) -> None:
    await cache.warm()
    tokens = [new_tokens.access_token(sub=f"user-{n}") for n in range(20)]
    in_the_gap: list[object] = []

    def arrive() -> None:
        in_the_gap.extend(outcome(verifier.verify(token)) for token in tokens[10:15])

    with as_each_fetch_ends(arrive):
        # Ten misses while the fetch is held at the endpoint, five the moment it ends...
        server.hold()
        early = [asyncio.create_task(verifier.verify(token)) for token in tokens[:10]]
        await asyncio.to_thread(server.wait_for_fetches, 2)
        server.release()
        async with asyncio.timeout(HANG_GUARD):
            waited = await asyncio.gather(*early, return_exceptions=True)
    # ...and five once everyone has had an answer.
    late = [outcome(verifier.verify(token)) for token in tokens[15:]]

    answers = [*waited, *in_the_gap, *late]
    assert [type(answer) for answer in answers] == [AuthenticationError] * 20
    assert {str(answer) for answer in answers} == {"unknown signing key"}
    assert server.fetch_count == cache.fetch_count == 2, "one to warm, one for all 20"


async def test_a_miss_that_shares_a_warm_up_fetch_opens_the_window_when_it_ends(
    cache: JwksCache, server: JwksServer, clock: FakeMonotonic, new_key: SigningKey
) -> None:
    server.hold()
    warming = asyncio.create_task(cache.warm())
    miss = asyncio.create_task(cache.get_key(new_key.kid))
    await asyncio.to_thread(server.wait_for_fetches, 1)
    server.release()
    async with asyncio.timeout(HANG_GUARD):
        await warming
        with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
            await miss

    with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
        answered_at_once(cache.get_key(new_key.kid))
    assert server.fetch_count == 1

    clock.now += PENALTY
    with pytest.raises(AuthenticationError, match=r"^unknown signing key$"):
        await cache.get_key(new_key.kid)
    assert server.fetch_count == 2
