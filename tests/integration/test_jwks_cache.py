"""JwksCache against a real JWKS endpoint on loopback: sharing, penalty window, outages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator

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
CONNECT_TIMEOUT = 0.2
TOTAL_TIMEOUT = 0.3
# Scheduling slack on a loaded CI machine; still far below the 60 s the hang would last.
MARGIN = 0.7
ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Jwks"


class FakeMonotonic:
    """Time for the penalty window, which a test cannot wait out for real."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


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


@pytest.fixture
def verifier(cache: JwksCache) -> TokenVerifier:
    return TokenVerifier(
        issuer=ISSUER,
        app_client_ids=["client"],
        token_use="access",
        leeway_seconds=0,
        jwks=cache,
    )


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

    started = time.monotonic()
    miss = asyncio.create_task(verifier.verify(new_tokens.access_token()))
    await asyncio.sleep(0.05)
    assert not miss.done(), "the fetch should be hanging now"
    cached = await asyncio.wait_for(verifier.verify(old_tokens.access_token()), timeout=0.1)
    with pytest.raises(SigningKeysUnavailableError):
        await miss
    elapsed = time.monotonic() - started

    assert cached.sub == "user-1"
    assert TOTAL_TIMEOUT * 0.9 <= elapsed < TOTAL_TIMEOUT + MARGIN


async def test_inside_the_penalty_window_an_outage_fails_fast_without_a_fetch(
    cache: JwksCache, server: JwksServer, verifier: TokenVerifier, new_tokens: TokenMinter
) -> None:
    await cache.warm()
    server.hang()
    with pytest.raises(SigningKeysUnavailableError):
        await verifier.verify(new_tokens.access_token())

    started = time.monotonic()
    with pytest.raises(SigningKeysUnavailableError):
        await verifier.verify(new_tokens.access_token())

    assert time.monotonic() - started < 0.1
    assert server.fetch_count == 2


async def test_an_endpoint_that_is_down_fails_fast_while_cached_keys_keep_working(
    cache: JwksCache,
    server: JwksServer,
    verifier: TokenVerifier,
    old_tokens: TokenMinter,
    new_tokens: TokenMinter,
) -> None:
    await cache.warm()
    server.stop()

    started = time.monotonic()
    with pytest.raises(SigningKeysUnavailableError):
        await verifier.verify(new_tokens.access_token())
    elapsed = time.monotonic() - started

    assert elapsed < TOTAL_TIMEOUT + MARGIN
    assert (await verifier.verify(old_tokens.access_token())).sub == "user-1"
    assert cache.fetch_count == 2


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
