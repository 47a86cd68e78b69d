"""Verify a Cognito JWT and turn it into an Identity.

The checks follow awslabs/aws-jwt-verify. python-jose verifies the RS256 signature only: its
claim checks read the wall clock (we inject ours), never look at `iat`, skip the audience check
when `aud` is absent (every Cognito access token), and insist on an access token to compare
with `at_hash` (which Cognito id tokens may carry). So the claims are checked here.

A client sends the same token with every request for up to an hour, and checking its
signature is most of what authenticating a request costs (python-jose parses the token
several times around OpenSSL's RSA check). So a token that passed is remembered, with the key
that verified it: the next time, the signature and every check that depends only on the
token's bytes stand, the times are checked again against the clock, and the key must still be
the one the JWKS publishes for its kid (a key withdrawn or replaced sends the token through
the whole verification again). A token that failed is never remembered.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from jose import jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from graphql_api.auth.bearer import MAX_TOKEN_BYTES
from graphql_api.auth.errors import AuthenticationError
from graphql_api.auth.jwks import JwksCache
from graphql_api.settings import CognitoSettings, TokenUse

_ALGORITHM = "RS256"
# Tokens remembered per verifier, the least recently used dropped first: a token is about a
# kilobyte, so at most a few megabytes for as many users' sessions.
VERIFIED_TOKENS = 4096

# Only the signature is left to jose; see the module docstring for why each check is ours.
_SIGNATURE_ONLY = {
    "verify_signature": True,
    "verify_aud": False,
    "verify_iat": False,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    "verify_at_hash": False,
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Identity:
    sub: str
    username: str
    token_use: Literal["id", "access"]
    client_id: str
    # When the token stops being valid (epoch seconds): a long-lived connection ends there.
    expires_at: float
    scopes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class _Verified:
    kid: str
    key: Key
    claims: Mapping[str, Any]
    identity: Identity


class TokenVerifier:
    def __init__(
        self,
        *,
        issuer: str,
        app_client_ids: Iterable[str],
        token_use: TokenUse,
        leeway_seconds: float,
        jwks: JwksCache,
        clock: Callable[[], float] = time.time,
        remembered: int = VERIFIED_TOKENS,
    ) -> None:
        self._issuer = issuer
        self._app_client_ids = frozenset(app_client_ids)
        self._token_use = token_use
        self._leeway = leeway_seconds
        self._jwks = jwks
        self._clock = clock
        self._remembered = remembered
        # Insertion order is recency: a hit moves its token to the end.
        self._verified: dict[str, _Verified] = {}

    @classmethod
    def from_settings(cls, settings: CognitoSettings, jwks: JwksCache) -> TokenVerifier:
        return cls(
            issuer=settings.issuer,
            app_client_ids=settings.app_client_ids,
            token_use=settings.token_use,
            leeway_seconds=settings.leeway_seconds,
            jwks=jwks,
        )

    async def verify(self, token: str) -> Identity:
        """The caller's identity, or AuthenticationError (SigningKeysUnavailableError if the
        JWKS cannot be fetched)."""
        known = self._verified.pop(token, None)
        if known is not None and self._jwks.known_key(known.kid) is known.key:
            self._check_times(known.claims)
            self._verified[token] = known
            return known.identity
        kid, unverified = _unverified_parts(token)
        # Refuse foreign tokens before their kid can make us fetch the JWKS.
        if unverified.get("iss") != self._issuer:
            raise AuthenticationError("wrong issuer")
        key = await self._jwks.get_key(kid)
        try:
            claims = jwt.decode(token, key, algorithms=[_ALGORITHM], options=_SIGNATURE_ONLY)
        except JOSEError:
            raise AuthenticationError("invalid token signature") from None
        expires_at = self._check_times(claims)
        identity = self._identity(claims, expires_at=expires_at)
        self._remember(token, _Verified(kid=kid, key=key, claims=claims, identity=identity))
        return identity

    def _remember(self, token: str, verified: _Verified) -> None:
        if self._remembered <= 0:
            return
        while len(self._verified) >= self._remembered:
            del self._verified[next(iter(self._verified))]
        self._verified[token] = verified

    def _check_times(self, claims: Mapping[str, Any]) -> float:
        """The moment the token expires, leeway included; AuthenticationError if it is not
        valid now."""
        now = self._clock()
        if "exp" not in claims:
            raise AuthenticationError("malformed token")
        expires_at = _numeric_date(claims["exp"]) + self._leeway
        if now >= expires_at:
            raise AuthenticationError("token expired")
        for name in ("nbf", "iat"):
            if name in claims and _numeric_date(claims[name]) > now + self._leeway:
                raise AuthenticationError("token not yet valid")
        return expires_at

    def _identity(self, claims: Mapping[str, Any], *, expires_at: float) -> Identity:
        use = claims.get("token_use")
        if use not in ("id", "access") or self._token_use not in ("any", use):
            raise AuthenticationError("wrong token use")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise AuthenticationError("malformed token")
        if use == "access":
            client_id = self._access_client(claims.get("client_id"))
            username = claims.get("username", sub)
        else:
            client_id = self._audience(claims.get("aud"))
            username = claims.get("cognito:username", sub)
        if not isinstance(username, str):
            raise AuthenticationError("malformed token")
        return Identity(
            sub=sub,
            username=username,
            token_use=use,
            client_id=client_id,
            expires_at=expires_at,
            scopes=_scopes(claims.get("scope", "")),
            groups=_groups(claims.get("cognito:groups", [])),
        )

    def _access_client(self, client_id: Any) -> str:
        # Access tokens carry no aud, so the app client is pinned through client_id.
        if isinstance(client_id, str) and client_id in self._app_client_ids:
            return client_id
        raise AuthenticationError("wrong client")

    def _audience(self, aud: Any) -> str:
        audiences = [aud] if isinstance(aud, str) else aud
        if isinstance(audiences, list):
            for audience in audiences:
                if isinstance(audience, str) and audience in self._app_client_ids:
                    return audience
        raise AuthenticationError("wrong audience")


def _unverified_parts(token: str) -> tuple[str, dict[str, Any]]:
    """The kid and the claims, read only to decide whether (and with which key) to verify."""
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError("malformed token")
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.get_unverified_claims(token)
    except JOSEError:
        raise AuthenticationError("malformed token") from None
    # Decided from the header before any key is chosen, so none, HS256 with the RSA key as its
    # secret (CVE-2024-33663) and the like never reach a verify call.
    if header.get("alg") != _ALGORITHM:
        raise AuthenticationError("unsupported algorithm")
    kid = header.get("kid")
    # A critical extension we do not understand must be refused (RFC 7515, section 4.1.11).
    if not isinstance(kid, str) or not kid or "crit" in header:
        raise AuthenticationError("malformed token")
    return kid, claims


def _numeric_date(value: Any) -> float:
    # bool is an int, and json.loads accepts Infinity and NaN.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthenticationError("malformed token")
    return float(value)


def _scopes(value: Any) -> tuple[str, ...]:
    if not isinstance(value, str):
        raise AuthenticationError("malformed token")
    return tuple(value.split())


def _groups(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(group, str) for group in value):
        raise AuthenticationError("malformed token")
    return tuple(value)
