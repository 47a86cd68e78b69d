"""Why a request could not be authenticated; messages are short and never echo the token."""

from __future__ import annotations


class AuthenticationError(Exception):
    """The caller is not authenticated; `message` is safe to show to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SigningKeysUnavailableError(AuthenticationError):
    """The JWKS could not be fetched, so the token could be neither accepted nor refused."""

    def __init__(self, message: str = "signing keys unavailable") -> None:
        super().__init__(message)
