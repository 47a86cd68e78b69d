"""Pull the bearer token out of the Authorization header values (RFC 6750)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from graphql_api.auth.errors import AuthenticationError

# Cognito tokens are 1-4 KB even with many groups; the cap keeps hostile input away from the
# JSON and RSA work that follows.
MAX_TOKEN_BYTES = 16 * 1024

# Three base64url segments; the signature may be empty so that an unsigned token reaches the
# verifier and is refused there as an unsupported algorithm.
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def bearer_token(authorization_values: Sequence[str]) -> str:
    """The token from exactly one `Authorization: Bearer <jwt>` header, or AuthenticationError."""
    if not authorization_values:
        raise AuthenticationError("missing bearer token")
    # Two headers may be a smuggling attempt (a proxy checks one, we would read the other).
    if len(authorization_values) > 1:
        raise AuthenticationError("multiple Authorization headers")
    scheme, _, token = authorization_values[0].strip().partition(" ")
    if not scheme:
        raise AuthenticationError("missing bearer token")
    if scheme.lower() != "bearer":
        raise AuthenticationError("unsupported authorization scheme")
    token = token.strip()
    if not token:
        raise AuthenticationError("missing bearer token")
    if len(token) > MAX_TOKEN_BYTES:
        raise AuthenticationError("token too large")
    if not _JWT_SHAPE.fullmatch(token):
        raise AuthenticationError("malformed bearer token")
    return token
