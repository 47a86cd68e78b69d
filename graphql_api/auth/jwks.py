"""The user pool's signing keys, fetched once and refetched only for a kid we have not seen.

Cognito rarely rotates keys, so the cache lives as long as the process. An unknown kid triggers
one refetch (concurrent misses share it) and then a penalty window during which no further
fetch happens, so tokens with made-up kids cannot turn us into a load generator against the
JWKS endpoint. The window opens as the fetch ends, in the same step that publishes its result:
a request arriving before the waiters have resumed already finds it open.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from jose import jwk
from jose.backends.base import Key
from jose.exceptions import JOSEError

from graphql_api.auth.errors import AuthenticationError, SigningKeysUnavailableError
from graphql_api.settings import CognitoSettings

# A Cognito JWKS is two keys, well under 2 KB; anything far larger is not a JWKS.
_MAX_JWKS_BYTES = 256 * 1024


class JwksCache:
    def __init__(
        self,
        *,
        url: str,
        session: aiohttp.ClientSession,
        penalty_seconds: float = 10.0,
        connect_timeout: float = 2.0,
        total_timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._session = session
        self._penalty_seconds = penalty_seconds
        self._timeout = aiohttp.ClientTimeout(connect=connect_timeout, total=total_timeout)
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._fetch_count = 0
        self._in_flight: asyncio.Task[bool] | None = None
        # Whether a miss shares the fetch in flight, so that its end opens the penalty window.
        self._miss_waiting = False
        self._penalty_until: float | None = None
        self._last_fetch_ok = False

    @classmethod
    def from_settings(
        cls,
        settings: CognitoSettings,
        *,
        session: aiohttp.ClientSession,
        clock: Callable[[], float] = time.monotonic,
    ) -> JwksCache:
        return cls(
            url=settings.jwks_url,
            session=session,
            penalty_seconds=settings.jwks_penalty_seconds,
            connect_timeout=settings.jwks_connect_timeout,
            total_timeout=settings.jwks_total_timeout,
            clock=clock,
        )

    @property
    def fetch_count(self) -> int:
        """How many HTTP fetches were started, successful or not."""
        return self._fetch_count

    @property
    def has_keys(self) -> bool:
        return bool(self._keys)

    async def warm(self) -> None:
        """Fetch the keys ahead of the first request; raises SigningKeysUnavailableError.

        Unlike a miss, warming opens no penalty window: a token minted with a fresh key right
        after startup may still trigger its own fetch.
        """
        if not await self._shared_fetch(miss=False):
            raise SigningKeysUnavailableError()

    def known_key(self, kid: str) -> Key | None:
        """The key the last fetch published for `kid`, if any; never fetches."""
        return self._keys.get(kid)

    async def get_key(self, kid: str) -> Key:
        """The RS256 public key for `kid`.

        Raises AuthenticationError("unknown signing key") when the JWKS does not name it, and
        SigningKeysUnavailableError when the JWKS cannot be fetched.
        """
        key = self._keys.get(kid)
        if key is not None:
            return key
        if self._in_flight is None and self._in_penalty_window():
            # Fail fast; the last fetch's outcome says whether the key is unknown or unknowable.
            if self._last_fetch_ok:
                raise AuthenticationError("unknown signing key")
            raise SigningKeysUnavailableError()
        ok = await self._shared_fetch(miss=True)
        key = self._keys.get(kid)
        if key is not None:
            return key
        if not ok:
            raise SigningKeysUnavailableError()
        raise AuthenticationError("unknown signing key")

    def _in_penalty_window(self) -> bool:
        return self._penalty_until is not None and self._clock() < self._penalty_until

    async def _shared_fetch(self, *, miss: bool) -> bool:
        if self._in_flight is None:
            self._miss_waiting = False
            self._in_flight = asyncio.create_task(self._fetch(), name="jwks-fetch")
        # A miss that joins a warm-up's fetch still opens the window when that fetch ends.
        self._miss_waiting = self._miss_waiting or miss
        # Shielded: a client that disconnects cancels its own wait, not the fetch others share.
        return await asyncio.shield(self._in_flight)

    async def _fetch(self) -> bool:
        """Replace the cached keys from the endpoint; False (keys kept) if that failed.

        Everything a waiter or a newcomer reads (keys, outcome, penalty window, no fetch in
        flight) changes after the last await, in one step: nobody sees the fetch over but the
        window still shut, which would let a newcomer start a second fetch.
        """
        self._fetch_count += 1
        try:
            keys: dict[str, Key] | None = _rsa_signing_keys(await self._download())
        except (aiohttp.ClientError, TimeoutError, ValueError, RecursionError):
            keys = None
        finally:
            # Also when cancelled (the loop shutting down), so no one waits on a dead task.
            self._in_flight = None
        if keys is not None:
            self._keys = keys
        self._last_fetch_ok = keys is not None
        if self._miss_waiting:
            self._penalty_until = self._clock() + self._penalty_seconds
        return self._last_fetch_ok

    async def _download(self) -> Any:
        async with self._session.get(
            self._url, timeout=self._timeout, allow_redirects=False
        ) as response:
            if response.status != 200:
                raise ValueError(f"JWKS endpoint answered {response.status}")
            if (response.content_length or 0) > _MAX_JWKS_BYTES:
                raise ValueError("JWKS too large")
            body = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > _MAX_JWKS_BYTES:
                    raise ValueError("JWKS too large")
            return json.loads(body)


def _rsa_signing_keys(document: Any) -> dict[str, Key]:
    """The usable keys by kid; raises ValueError if `document` is not a JWKS at all."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS")
    keys: dict[str, Key] = {}
    for entry in document["keys"]:
        key = _rsa_signing_key(entry)
        if key is not None and entry["kid"] not in keys:
            keys[entry["kid"]] = key
    return keys


def _rsa_signing_key(entry: Any) -> Key | None:
    """A public RS256 key, or None for anything else (EC, encryption keys, junk) we must skip."""
    if not isinstance(entry, Mapping):
        return None
    if entry.get("kty") != "RSA" or entry.get("use", "sig") != "sig":
        return None
    if entry.get("alg", "RS256") != "RS256":
        return None
    kid, n, e = entry.get("kid"), entry.get("n"), entry.get("e")
    if not (isinstance(kid, str) and kid and isinstance(n, str) and isinstance(e, str)):
        return None
    try:
        # Only the public members: a JWKS that leaks private ones must still give a public key.
        return jwk.construct({"kty": "RSA", "n": n, "e": e}, algorithm="RS256")
    except (JOSEError, ValueError, TypeError):
        return None
