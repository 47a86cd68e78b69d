"""Cognito JWT authentication: the bearer header, the JWKS cache, the token verifier and the
Starlette backend that puts the caller on every request."""

from graphql_api.auth.bearer import MAX_TOKEN_BYTES, bearer_token
from graphql_api.auth.errors import AuthenticationError, SigningKeysUnavailableError
from graphql_api.auth.jwks import JwksCache
from graphql_api.auth.verifier import Identity, TokenVerifier

__all__ = [
    "MAX_TOKEN_BYTES",
    "AuthenticationError",
    "Identity",
    "JwksCache",
    "SigningKeysUnavailableError",
    "TokenVerifier",
    "bearer_token",
]
