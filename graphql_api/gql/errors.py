"""The one place where failures become GraphQL errors with an `extensions.code`.

Resolvers raise domain errors (storage's, or UserInputError for input we refuse); the
PublicErrors extension rewrites every error before it leaves the server, so a client sees a
stable code and a message meant for it, and never a traceback, botocore text or our internals.
"""

from __future__ import annotations

import enum
import logging

from graphql import GraphQLError
from strawberry.extensions import MaskErrors

from graphql_api.storage.errors import (
    ConflictError,
    NotFoundError,
    UnavailableError,
    ValidationError,
)

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal server error."
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again shortly."
# One message for missing and foreign conversations alike: the two must be indistinguishable.
NOT_FOUND_MESSAGE = "Conversation not found."


class Code(enum.StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    CONFLICT = "CONFLICT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class UserInputError(Exception):
    """Input we refuse before anything is written; `field` names it as the client spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


# Exceptions graphql-core attaches while coercing variables and literals (a scalar's parser
# raising), which describe the client's input rather than a fault of ours.
_COERCION_ERRORS = (GraphQLError, ValueError, TypeError)


def classify(error: GraphQLError) -> Code:
    original = error.original_error
    if isinstance(original, UserInputError | ValidationError):
        return Code.BAD_USER_INPUT
    if isinstance(original, NotFoundError):
        return Code.NOT_FOUND
    if isinstance(original, ConflictError):
        return Code.CONFLICT
    if isinstance(original, UnavailableError):
        return Code.SERVICE_UNAVAILABLE
    if error.path is None and (original is None or isinstance(original, _COERCION_ERRORS)):
        # Before execution: a syntax, validation, limit or variable error in the request.
        return Code.BAD_USER_INPUT
    return Code.INTERNAL_SERVER_ERROR


def _public_message(error: GraphQLError, code: Code) -> str:
    original = error.original_error
    if isinstance(original, UserInputError | ValidationError):
        return f"{original.field}: {original.message}"
    return {
        Code.NOT_FOUND: NOT_FOUND_MESSAGE,
        Code.SERVICE_UNAVAILABLE: UNAVAILABLE_MESSAGE,
        Code.INTERNAL_SERVER_ERROR: INTERNAL_MESSAGE,
    }.get(code, error.message)


def public_error(error: GraphQLError) -> GraphQLError:
    code = classify(error)
    extensions: dict[str, object] = {"code": code.value}
    original = error.original_error
    if isinstance(original, UserInputError | ValidationError):
        extensions["field"] = original.field
    if code is Code.SERVICE_UNAVAILABLE:
        extensions["retryable"] = True
    return GraphQLError(
        _public_message(error, code),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def _is_raw(error: GraphQLError) -> bool:
    return "code" not in (error.extensions or {})


class PublicErrors(MaskErrors):
    """MaskErrors whose "anonymised" error is the public form above, code included.

    Every error without a code is rewritten (MaskErrors with no arguments would blank the
    validation and limit errors too); anything not classified is masked to a generic message.
    """

    def __init__(self) -> None:
        super().__init__(should_mask_error=_is_raw, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        return public_error(error)


def log_errors(errors: list[GraphQLError]) -> None:
    """Log what the client cannot see: faults of ours in full, storage outages briefly."""
    for error in errors:
        code = classify(error)
        if code is Code.INTERNAL_SERVER_ERROR:
            logger.error("unexpected error at %s", error.path, exc_info=error.original_error)
        elif code is Code.SERVICE_UNAVAILABLE:
            logger.warning("storage unavailable at %s: %s", error.path, error.original_error)


def auth_error_body(message: str, code: Code) -> dict[str, list[dict[str, object]]]:
    """The GraphQL-shaped body of a request refused before GraphQL runs."""
    return {"errors": [{"message": message, "extensions": {"code": code.value}}]}


__all__ = [
    "NOT_FOUND_MESSAGE",
    "Code",
    "PublicErrors",
    "UserInputError",
    "auth_error_body",
    "classify",
    "log_errors",
    "public_error",
]
