"""TokenVerifier against real RS256 tokens and a real JWKS over loopback HTTP."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Literal, Protocol

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwt

from graphql_api.auth import (
    AuthenticationError,
    Identity,
    JwksCache,
    TokenVerifier,
)
from graphql_api.settings import TokenUse
from tests.tokens import (
    FakeUserPool,
    JwksServer,
    SigningKey,
    b64url,
    claims_of,
    hs256,
    tamper_payload,
    tamper_signature,
    unsigned,
)

LEEWAY = 30.0
RS256_HEADER = b64url(b'{"alg":"RS256","kid":"k"}')

TokenKind = Literal["id", "access"]


class MakeVerifier(Protocol):
    def __call__(self, *, accepts: TokenUse = ..., jwks: JwksCache | None = ...) -> TokenVerifier:
        """A verifier for the pool that accepts the token kind `accepts`."""


@pytest.fixture(scope="module")
def pool() -> Iterator[FakeUserPool]:
    with FakeUserPool() as pool:
        yield pool


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def jwks(pool: FakeUserPool, http: aiohttp.ClientSession) -> JwksCache:
    return JwksCache(url=pool.jwks_url, session=http, total_timeout=2.0)


@pytest.fixture
def make_verifier(pool: FakeUserPool, jwks: JwksCache) -> MakeVerifier:
    default_jwks = jwks

    def make(*, accepts: TokenUse = "any", jwks: JwksCache | None = None) -> TokenVerifier:
        return TokenVerifier(
            issuer=pool.issuer,
            app_client_ids=[pool.client_id, "another-client-of-ours"],
            token_use=accepts,
            leeway_seconds=LEEWAY,
            jwks=jwks or default_jwks,
        )

    return make


@pytest.fixture
def verifier(make_verifier: MakeVerifier) -> TokenVerifier:
    return make_verifier()


async def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    return caught.value.message


# --- accepted -------------------------------------------------------------------------------


async def test_a_valid_access_token_gives_the_callers_identity(
    pool: FakeUserPool, verifier: TokenVerifier
) -> None:
    token = pool.minter.access_token(
        sub="sub-alice", username="alice", scopes=("chat/read", "chat/write"), groups=("admins",)
    )

    identity = await verifier.verify(token)

    assert identity == Identity(
        sub="sub-alice",
        username="alice",
        token_use="access",
        client_id=pool.client_id,
        expires_at=identity.expires_at,
        scopes=("chat/read", "chat/write"),
        groups=("admins",),
    )


async def test_a_valid_id_token_gives_the_callers_identity(
    pool: FakeUserPool, verifier: TokenVerifier
) -> None:
    token = pool.minter.id_token(sub="sub-bob", username="bob", audience="another-client-of-ours")

    identity = await verifier.verify(token)

    assert identity == Identity(
        sub="sub-bob",
        username="bob",
        token_use="id",
        client_id="another-client-of-ours",
        expires_at=identity.expires_at,
        scopes=(),
        groups=(),
    )


@pytest.mark.parametrize("token_use", ["id", "access"])
async def test_the_configured_token_use_is_accepted(
    pool: FakeUserPool, make_verifier: MakeVerifier, token_use: TokenKind
) -> None:
    verifier = make_verifier(accepts=token_use)

    identity = await verifier.verify(pool.minter.token(token_use))

    assert identity.token_use == token_use


@pytest.mark.parametrize(
    ("token_use", "other"), [("id", "access"), ("access", "id")], ids=["id only", "access only"]
)
async def test_the_other_token_use_is_refused(
    pool: FakeUserPool, make_verifier: MakeVerifier, token_use: TokenKind, other: TokenKind
) -> None:
    verifier = make_verifier(accepts=token_use)

    assert await refused(verifier, pool.minter.token(other)) == "wrong token use"


async def test_an_id_token_whose_aud_list_names_our_client_is_accepted(
    pool: FakeUserPool, verifier: TokenVerifier
) -> None:
    token = pool.minter.id_token(extra={"aud": ["someone-else", pool.client_id]})

    assert (await verifier.verify(token)).client_id == pool.client_id


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"exp": -(LEEWAY - 5)}, id="expired inside leeway"),
        pytest.param({"iat": LEEWAY - 5}, id="issued in the future inside leeway"),
        pytest.param({"nbf": LEEWAY - 5}, id="not before inside leeway"),
    ],
)
async def test_clock_skew_within_the_leeway_is_tolerated(
    pool: FakeUserPool, verifier: TokenVerifier, claims: dict[str, float]
) -> None:
    now = time.time()
    token = pool.minter.access_token(extra={name: now + delta for name, delta in claims.items()})

    assert (await verifier.verify(token)).sub == "user-1"


# --- refused: claims ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mint", "message"),
    [
        pytest.param(lambda m: m.access_token(lifetime=-(LEEWAY + 5)), "token expired", id="exp"),
        pytest.param(
            lambda m: m.access_token(issued_at=time.time() + LEEWAY + 5),
            "token not yet valid",
            id="iat in the future",
        ),
        pytest.param(
            lambda m: m.access_token(extra={"nbf": time.time() + LEEWAY + 5}),
            "token not yet valid",
            id="nbf in the future",
        ),
        pytest.param(lambda m: m.access_token(omit=["exp"]), "malformed token", id="no exp"),
        pytest.param(
            lambda m: m.access_token(extra={"exp": "tomorrow"}), "malformed token", id="text exp"
        ),
        pytest.param(
            lambda m: m.access_token(
                extra={"iss": "https://cognito-idp.us-east-1.amazonaws.com/x"}
            ),
            "wrong issuer",
            id="iss",
        ),
        pytest.param(lambda m: m.access_token(omit=["iss"]), "wrong issuer", id="no iss"),
        pytest.param(lambda m: m.id_token(audience="not-ours"), "wrong audience", id="aud"),
        pytest.param(lambda m: m.id_token(omit=["aud"]), "wrong audience", id="no aud"),
        pytest.param(
            lambda m: m.id_token(extra={"aud": ["not-ours"]}), "wrong audience", id="aud list"
        ),
        pytest.param(lambda m: m.access_token(client_id="not-ours"), "wrong client", id="client"),
        pytest.param(lambda m: m.access_token(omit=["client_id"]), "wrong client", id="no client"),
        pytest.param(
            # An access token made to look like an id token for our client must still be refused
            # on its client_id (access tokens are judged by client_id, never by aud).
            lambda m: m.access_token(client_id="not-ours", extra={"aud": m.client_id}),
            "wrong client",
            id="access token with our aud",
        ),
        pytest.param(
            lambda m: m.access_token(extra={"token_use": "refresh"}),
            "wrong token use",
            id="token_use refresh",
        ),
        pytest.param(
            lambda m: m.access_token(omit=["token_use"]), "wrong token use", id="no token_use"
        ),
        pytest.param(lambda m: m.access_token(omit=["sub"]), "malformed token", id="no sub"),
        pytest.param(lambda m: m.access_token(sub=""), "malformed token", id="empty sub"),
        pytest.param(
            lambda m: m.access_token(extra={"cognito:groups": "admins"}),
            "malformed token",
            id="groups not a list",
        ),
    ],
)
async def test_a_token_with_bad_claims_is_refused(
    pool: FakeUserPool, verifier: TokenVerifier, mint: Callable[..., str], message: str
) -> None:
    assert await refused(verifier, mint(pool.minter)) == message


# --- refused: algorithm, signature, key, shape ----------------------------------------------


async def test_alg_none_is_refused(pool: FakeUserPool, verifier: TokenVerifier) -> None:
    claims = claims_of(pool.minter.access_token())

    token = unsigned(claims, header={"kid": pool.key.kid})

    assert await refused(verifier, token) == "unsupported algorithm"


async def test_hs256_signed_with_the_rsa_public_key_is_refused(
    pool: FakeUserPool, verifier: TokenVerifier, jwks: JwksCache
) -> None:
    claims = claims_of(pool.minter.access_token())

    token = hs256(claims, secret=pool.key.public_pem(), header={"kid": pool.key.kid})

    assert await refused(verifier, token) == "unsupported algorithm"
    assert jwks.fetch_count == 0, "the algorithm is refused before any key is looked up"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "rs256"])
async def test_any_algorithm_but_rs256_is_refused(
    pool: FakeUserPool, verifier: TokenVerifier, alg: str
) -> None:
    token = pool.minter.access_token(header={"alg": alg})

    assert await refused(verifier, token) == "unsupported algorithm"


async def test_a_tampered_payload_is_refused(pool: FakeUserPool, verifier: TokenVerifier) -> None:
    token = tamper_payload(pool.minter.access_token(sub="alice"), {"sub": "mallory"})

    assert await refused(verifier, token) == "invalid token signature"


async def test_a_tampered_signature_is_refused(pool: FakeUserPool, verifier: TokenVerifier) -> None:
    token = tamper_signature(pool.minter.access_token())

    assert await refused(verifier, token) == "invalid token signature"


async def test_a_token_signed_by_another_key_under_our_kid_is_refused(
    pool: FakeUserPool, verifier: TokenVerifier
) -> None:
    impostor = SigningKey.generate(kid=pool.key.kid)

    assert await refused(verifier, pool.minter.access_token(key=impostor)) == (
        "invalid token signature"
    )


async def test_an_unknown_kid_is_refused(pool: FakeUserPool, verifier: TokenVerifier) -> None:
    token = pool.minter.access_token(key=SigningKey.generate())

    assert await refused(verifier, token) == "unknown signing key"


async def test_a_token_from_a_foreign_issuer_never_triggers_a_jwks_fetch(
    pool: FakeUserPool, verifier: TokenVerifier, jwks: JwksCache
) -> None:
    token = pool.minter.access_token(
        key=SigningKey.generate(), extra={"iss": "https://issuer.example"}
    )

    assert await refused(verifier, token) == "wrong issuer"
    assert jwks.fetch_count == 0


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("not-a-jwt", id="one segment"),
        pytest.param("a.b.c", id="not base64 json"),
        pytest.param(f"{b64url(b'[1]')}.{b64url(b'{}')}.", id="header not an object"),
        pytest.param(f"{RS256_HEADER}.{b64url(b'[]')}.c2ln", id="claims list"),
        pytest.param("x." * 9000, id="oversized"),
    ],
)
async def test_a_malformed_token_is_refused(verifier: TokenVerifier, token: str) -> None:
    assert await refused(verifier, token) == "malformed token"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param({"kid": None}, id="no kid"),
        pytest.param({"kid": 7}, id="kid not text"),
        pytest.param({"crit": ["exp"]}, id="critical extension"),
    ],
)
async def test_a_token_with_a_bad_header_is_refused(
    pool: FakeUserPool, verifier: TokenVerifier, header: dict[str, object]
) -> None:
    assert await refused(verifier, pool.minter.access_token(header=header)) == "malformed token"


async def test_an_oversized_token_is_refused_before_parsing(
    pool: FakeUserPool, verifier: TokenVerifier, jwks: JwksCache
) -> None:
    token = pool.minter.access_token(extra={"padding": "x" * 20_000})

    assert await refused(verifier, token) == "malformed token"
    assert jwks.fetch_count == 0


def ec_jwk(kid: str) -> dict[str, str]:
    numbers = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "crv": "P-256",
        "use": "sig",
        "x": b64url(numbers.x.to_bytes(32, "big")),
        "y": b64url(numbers.y.to_bytes(32, "big")),
    }


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(lambda key: ec_jwk(key.kid), id="EC key"),
        pytest.param(lambda key: {**key.public_jwk(), "use": "enc"}, id="RSA encryption key"),
        pytest.param(lambda key: {**key.public_jwk(), "alg": "RS512"}, id="RSA key for RS512"),
        pytest.param(lambda key: {**key.public_jwk(), "n": 12345}, id="RSA key with junk n"),
        pytest.param(lambda key: {"kty": "oct", "kid": key.kid, "k": "c2VjcmV0"}, id="HMAC key"),
    ],
)
async def test_a_jwks_entry_that_is_not_an_rs256_signing_key_is_never_used(
    pool: FakeUserPool,
    make_verifier: MakeVerifier,
    http: aiohttp.ClientSession,
    entry: Callable[[SigningKey], object],
) -> None:
    odd = SigningKey.generate()
    with JwksServer(keys=[pool.key]) as server:
        server.add_raw_jwk(entry(odd))
        server.add_raw_jwk("not even an object")
        verifier = make_verifier(jwks=JwksCache(url=server.url, session=http))

        message = await refused(verifier, pool.minter.access_token(key=odd))
        still_valid = await verifier.verify(pool.minter.access_token())

    assert message == "unknown signing key"
    assert still_valid.sub == "user-1", "the odd entries must not spoil the good key"


# --- a verified token is remembered ---------------------------------------------------------


@pytest.fixture
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens whose signature python-jose checked (the real check still runs)."""
    checked: list[str] = []
    check = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        checked.append(token)
        return check(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    return checked


async def test_a_verified_token_is_not_checked_again_while_its_key_stands(
    pool: FakeUserPool, verifier: TokenVerifier, signature_checks: list[str]
) -> None:
    token = pool.minter.access_token(sub="sub-carol")

    first = await verifier.verify(token)
    again = await verifier.verify(token)

    assert again == first
    assert signature_checks == [token]


async def test_a_remembered_token_is_refused_once_it_expires(
    pool: FakeUserPool, jwks: JwksCache, signature_checks: list[str]
) -> None:
    now = [time.time()]
    verifier = TokenVerifier(
        issuer=pool.issuer,
        app_client_ids=[pool.client_id],
        token_use="any",
        leeway_seconds=LEEWAY,
        jwks=jwks,
        clock=lambda: now[0],
    )
    token = pool.minter.access_token(lifetime=60)
    await verifier.verify(token)

    now[0] += 60 + LEEWAY + 1

    assert await refused(verifier, token) == "token expired"
    assert await refused(verifier, token) == "token expired"
    assert signature_checks == [token, token]


async def test_a_token_whose_key_was_replaced_or_withdrawn_is_verified_again(
    http: aiohttp.ClientSession, signature_checks: list[str]
) -> None:
    with FakeUserPool() as pool:
        jwks = JwksCache(url=pool.jwks_url, session=http, total_timeout=2.0, penalty_seconds=0)
        verifier = TokenVerifier(
            issuer=pool.issuer,
            app_client_ids=[pool.client_id],
            token_use="any",
            leeway_seconds=LEEWAY,
            jwks=jwks,
        )
        token = pool.minter.access_token()
        await verifier.verify(token)
        # Another key under the same kid, fetched when a token names a kid not yet seen.
        replacement = SigningKey.generate(kid=pool.key.kid)
        newcomer = SigningKey.generate()
        pool.server.rotate_to(replacement, newcomer)
        await verifier.verify(pool.minter.access_token(key=newcomer))

        assert await refused(verifier, token) == "invalid token signature"

        pool.server.rotate_to(newcomer)
        await jwks.warm()

        assert await refused(verifier, token) == "unknown signing key"


async def test_a_refused_token_is_not_remembered(
    pool: FakeUserPool, verifier: TokenVerifier, signature_checks: list[str]
) -> None:
    token = tamper_signature(pool.minter.access_token())

    for _ in range(2):
        assert await refused(verifier, token) == "invalid token signature"
    assert signature_checks == [token, token]


async def test_the_least_recently_used_token_is_forgotten_first(
    pool: FakeUserPool, jwks: JwksCache, signature_checks: list[str]
) -> None:
    verifier = TokenVerifier(
        issuer=pool.issuer,
        app_client_ids=[pool.client_id],
        token_use="any",
        leeway_seconds=LEEWAY,
        jwks=jwks,
        remembered=2,
    )
    first, second, third = (pool.minter.access_token(sub=f"user-{n}") for n in range(3))
    for token in (first, second, first, third):
        await verifier.verify(token)
    signature_checks.clear()

    for token in (first, third, second):
        await verifier.verify(token)

    assert signature_checks == [second]
