"""Authentication the way Starlette does it: a backend for its AuthenticationMiddleware.

Every HTTP request that carries an Authorization header is verified before any route runs;
the route then finds the caller in `request.user` (a CognitoUser) or knows there is none.
WebSockets carry their token in the GraphQL `connection_init` message instead, so they pass
through here unauthenticated and are verified by the subscription transport.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    BaseUser,
)
from starlette.authentication import AuthenticationError as StarletteAuthenticationError
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from graphql_api.errors import Code
from graphql_api.transport import ErrorBody, TransportPaths, graphql_error_body

from .bearer import bearer_token
from .errors import AuthenticationError, SigningKeysUnavailableError
from .verifier import Identity, TokenVerifier

MISSING_TOKEN = AuthenticationError("missing bearer token")


class CognitoUser(BaseUser):
    def __init__(self, verified: Identity) -> None:
        self.verified = verified

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.verified.username

    @property
    def identity(self) -> str:
        return self.verified.sub


class CognitoBackend(AuthenticationBackend):
    """Verifies the bearer token with the TokenVerifier the lifespan opened, on every path but
    those `public` covers (they take no token, so a bad one cannot refuse them)."""

    def __init__(self, *, public: Callable[[str], bool] = lambda path: False) -> None:
        self._public = public

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        if conn.scope["type"] != "http" or self._public(conn.scope["path"]):
            return None
        values = conn.headers.getlist("authorization")
        if not values:
            return None
        verifier: TokenVerifier = conn.state.services.verifier
        try:
            identity = await verifier.verify(bearer_token(values))
        except AuthenticationError as exc:
            raise StarletteAuthenticationError(exc.message) from exc
        return AuthCredentials(["authenticated", *identity.scopes]), CognitoUser(identity)


def identity_of(conn: HTTPConnection[Any]) -> Identity | None:
    user = conn.scope.get("user")
    return user.verified if isinstance(user, CognitoUser) else None


def refusal(error: AuthenticationError, *, error_body: ErrorBody = graphql_error_body) -> Response:
    """The answer to a request whose token could not be accepted, in `error_body`'s shape."""
    if isinstance(error, SigningKeysUnavailableError):
        return JSONResponse(
            error_body(
                "Cannot verify tokens right now; try again.", Code.SERVICE_UNAVAILABLE.value
            ),
            status_code=503,
            headers={"Retry-After": "5"},
        )
    return JSONResponse(
        error_body(error.message, Code.UNAUTHENTICATED.value),
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


def on_authentication_error(
    conn: HTTPConnection,
    exc: StarletteAuthenticationError,
    *,
    error_body: ErrorBody = graphql_error_body,
) -> Response:
    cause = exc.__cause__
    if not isinstance(cause, AuthenticationError):
        cause = AuthenticationError(str(exc))
    return refusal(cause, error_body=error_body)


AuthenticationErrorHandler = Callable[[HTTPConnection, StarletteAuthenticationError], Response]


def authentication_error_handler(
    transports: Sequence[TransportPaths],
) -> AuthenticationErrorHandler:
    """on_authentication_error in the error shape of the transport serving the path; a path
    none of `transports` covers is answered in GraphQL's."""

    def handle(conn: HTTPConnection, exc: StarletteAuthenticationError) -> Response:
        path = conn.scope["path"]
        for transport in transports:
            if transport.covers(path):
                return on_authentication_error(conn, exc, error_body=transport.error_body)
        return on_authentication_error(conn, exc)

    return handle
