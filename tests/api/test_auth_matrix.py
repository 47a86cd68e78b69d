"""Every forged, stale or misdirected token is refused over HTTP, and the key cache holds up.

Each app here gets its own user pool (own key, own JWKS server), so fetch counts and faults of
one test cannot leak into another.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
import pytest_asyncio

from graphql_api.auth.errors import SigningKeysUnavailableError
from tests.api.harness import Api, new_user
from tests.apps import AppFactory
from tests.tokens import (
    FakeUserPool,
    SigningKey,
    TokenMinter,
    hs256,
    tamper_payload,
    tamper_signature,
    unsigned,
)

QUERY = {"query": "{ conversations { totalCount } }"}
SKEW = 3600
# Far above the JWKS timeouts below: only a request that never ends reaches it. Whether the
# app's own timeout ended a fetch is told by the endpoint still holding it (JwksServer.held).
HANG_GUARD = 20.0


@pytest.fixture
def pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as fresh:
        yield fresh


@pytest_asyncio.fixture
async def guarded(pool: FakeUserPool, make_api: AppFactory) -> AsyncIterator[Api]:
    cognito = {
        # Short enough that a hanging endpoint ends well within HANG_GUARD, long enough that
        # the in-process JWKS server answers in time on a loaded two-core CI machine.
        "jwks_connect_timeout": 1.0,
        "jwks_total_timeout": 2.0,
        # Longer than any test: a second fetch in one test is a bug, never the window expiring.
        "jwks_penalty_seconds": 3600,
    }
    async with make_api(pool=pool, cognito=cognito) as api:
        # Every test here starts where a running service is: with the keys cached. The startup
        # fetch only logs a failure, so a slow one would leave the cache empty and turn "cached
        # keys keep working" into a second fetch against the endpoint the test has hung.
        for _ in range(3):
            if api.services.jwks.has_keys:
                break
            with contextlib.suppress(SigningKeysUnavailableError):
                await api.services.jwks.warm()
        assert api.services.jwks.has_keys, "the JWKS server never answered the warm-up"
        yield api


async def call(api: Api, headers: list[tuple[str, str]]) -> httpx.Response:
    return await api.http.post("/graphql", json=QUERY, headers=httpx.Headers(headers))


def assert_refused(response: httpx.Response, token: str | None = None) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"] == "Bearer"
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    if token:
        assert token not in response.text
        for segment in token.split("."):
            assert len(segment) < 12 or segment[:12] not in response.text
    message: str = error["message"]
    return message


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


Forgery = Callable[[TokenMinter, SigningKey], str]
USER = "user-isolated"

FORGERIES: dict[str, tuple[Forgery, str]] = {
    "expired": (lambda m, k: m.access_token(sub=USER, lifetime=-SKEW), "token expired"),
    "issued in the future": (
        lambda m, k: m.access_token(sub=USER, issued_at=time.time() + SKEW),
        "token not yet valid",
    ),
    "not valid before the future": (
        lambda m, k: m.access_token(sub=USER, extra={"nbf": time.time() + SKEW}),
        "token not yet valid",
    ),
    "wrong issuer": (
        lambda m, k: m.access_token(
            sub=USER, extra={"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"}
        ),
        "wrong issuer",
    ),
    "id token for another app client": (
        lambda m, k: m.id_token(sub=USER, audience="another-app-client"),
        "wrong token use",
    ),
    "access token for another app client": (
        lambda m, k: m.access_token(sub=USER, client_id="another-app-client"),
        "wrong client",
    ),
    "unknown token use": (
        lambda m, k: m.access_token(sub=USER, extra={"token_use": "refresh"}),
        "wrong token use",
    ),
    "alg none": (
        lambda m, k: unsigned({"sub": USER, "iss": m.issuer, "token_use": "access"}),
        "unsupported algorithm",
    ),
    "HS256 keyed with the RSA public key": (
        lambda m, k: hs256(
            {
                "sub": USER,
                "iss": m.issuer,
                "token_use": "access",
                "client_id": m.client_id,
                "exp": time.time() + SKEW,
            },
            secret=k.public_pem(),
            header={"kid": k.kid},
        ),
        "unsupported algorithm",
    ),
    "tampered payload": (
        lambda m, k: tamper_payload(m.access_token(sub=USER), {"sub": "someone-else"}),
        "invalid token signature",
    ),
    "tampered signature": (
        lambda m, k: tamper_signature(m.access_token(sub=USER)),
        "invalid token signature",
    ),
    "signed by a key the pool never published": (
        lambda m, k: m.access_token(sub=USER, key=SigningKey.generate()),
        "unknown signing key",
    ),
    "malformed": (lambda m, k: "abc.def.ghi", "malformed token"),
    "oversized": (
        lambda m, k: m.access_token(sub=USER, extra={"pad": "x" * 17_000}),
        "token too large",
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_each_bad_token_is_refused_with_a_short_reason(guarded: Api, name: str) -> None:
    forge, reason = FORGERIES[name]
    token = forge(guarded.pool.minter, guarded.pool.key)
    message = assert_refused(await call(guarded, bearer(token)), token)
    assert message == reason


async def test_id_tokens_are_refused_when_the_service_takes_access_tokens(guarded: Api) -> None:
    token = guarded.pool.minter.id_token(sub=USER)
    assert assert_refused(await call(guarded, bearer(token)), token) == "wrong token use"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "missing bearer token"),
        ([("Authorization", "Basic dXNlcjpwYXNz")], "unsupported authorization scheme"),
        (
            [("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer a.b.c")],
            "multiple Authorization headers",
        ),
    ],
    ids=["missing", "not bearer", "two headers"],
)
async def test_a_missing_or_ambiguous_header_is_refused(
    guarded: Api, headers: list[tuple[str, str]], reason: str
) -> None:
    assert assert_refused(await call(guarded, headers)) == reason


async def test_a_valid_token_still_works_beside_the_refusals(guarded: Api) -> None:
    response = await call(guarded, bearer(guarded.pool.minter.access_token(sub=new_user())))
    assert response.status_code == 200
    assert response.json() == {"data": {"conversations": {"totalCount": 0}}}


async def test_twenty_concurrent_requests_with_a_new_kid_fetch_the_keys_once(
    guarded: Api,
) -> None:
    rotated = SigningKey.generate()
    guarded.pool.server.publish(rotated)
    before = guarded.pool.server.fetch_count
    tokens = [guarded.pool.minter.access_token(sub=new_user(), key=rotated) for _ in range(20)]
    responses = await asyncio.gather(*(call(guarded, bearer(token)) for token in tokens))
    assert [r.status_code for r in responses] == [200] * 20
    assert guarded.pool.server.fetch_count - before == 1


async def test_twenty_concurrent_requests_with_an_unknown_kid_fetch_the_keys_once(
    guarded: Api,
) -> None:
    never_published = SigningKey.generate()
    before = guarded.pool.server.fetch_count
    tokens = [
        guarded.pool.minter.access_token(sub=new_user(), key=never_published) for _ in range(20)
    ]
    responses = await asyncio.gather(*(call(guarded, bearer(token)) for token in tokens))
    reasons = [assert_refused(r, token) for r, token in zip(responses, tokens, strict=True)]
    assert reasons == ["unknown signing key"] * 20
    assert guarded.pool.server.fetch_count - before == 1


async def test_a_hanging_key_endpoint_fails_fast_while_cached_keys_keep_working(
    guarded: Api,
) -> None:
    guarded.pool.server.hang()
    try:
        newcomer = guarded.pool.minter.access_token(sub=USER, key=SigningKey.generate())
        async with asyncio.timeout(HANG_GUARD):
            response = await call(guarded, bearer(newcomer))
        # Still held, never answered: the app gave up on its own.
        held = guarded.pool.server.held
        cached = await call(guarded, bearer(guarded.pool.minter.access_token(sub=new_user())))
    finally:
        guarded.pool.server.recover()
    assert held == 1
    assert response.status_code == 503
    assert response.json()["errors"][0]["extensions"] == {
        "code": "SERVICE_UNAVAILABLE",
        "retryable": True,
    }
    assert cached.status_code == 200
