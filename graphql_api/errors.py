"""The domain's errors, and the one mapping from an error to the code every transport reports.

Storage raises these at its boundary (callers never see botocore types), the rules below the
transports raise them for input they refuse, and each transport turns them into its own shape
through `code_of`: GraphQL's `extensions.code`, the REST routes' `error.code` and HTTP status.
"""

from __future__ import annotations

import enum


class ChatError(Exception):
    """Root of every failure a caller can be told about. Raised as itself for our own faults."""


class NotFoundError(ChatError):
    """The item does not exist, or belongs to another user: the two are indistinguishable."""


class ProjectNotFoundError(NotFoundError):
    """A project that does not exist, is being deleted, or is another user's."""


class ConflictError(ChatError):
    """A condition failed: a stale version, an id already taken, a delete in progress."""


class ValidationError(ChatError):
    """Input we refuse before anything is written; `field` names it as the client spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnavailableError(ChatError):
    """DynamoDB throttled, failed or was unreachable after every retry; safe to retry later."""


class ResyncRequiredError(ChatError):
    """A sync position older than the retained change history: the client must reload, then
    sync from a fresh token. (The changes query says so in its result; a subscription, which
    has no such field, ends with this error.)"""


class Code(enum.StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    BAD_REQUEST = "BAD_REQUEST"
    CONFLICT = "CONFLICT"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
    RESYNC_REQUIRED = "RESYNC_REQUIRED"
    # A persisted query id this process does not know: an APQ client then sends the document.
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    # A document outside the trusted documents, where only those are served (Apollo Router's
    # code for the same refusal).
    QUERY_NOT_IN_SAFELIST = "QUERY_NOT_IN_SAFELIST"
    # A document over one of the document limits (gql/limits.py), a code per limit so a client
    # can tell which one: Apollo Router's names for its operation limits, where it has one.
    MAX_DOCUMENT_BYTES_LIMIT = "MAX_DOCUMENT_BYTES_LIMIT"
    MAX_TOKENS_LIMIT = "MAX_TOKENS_LIMIT"
    MAX_DEPTH_LIMIT = "MAX_DEPTH_LIMIT"
    MAX_ALIASES_LIMIT = "MAX_ALIASES_LIMIT"
    MAX_DIRECTIVES_LIMIT = "MAX_DIRECTIVES_LIMIT"
    MAX_FIELD_REPEATS_LIMIT = "MAX_FIELD_REPEATS_LIMIT"
    MAX_INTROSPECTION_LISTS_LIMIT = "MAX_INTROSPECTION_LISTS_LIMIT"
    INTROSPECTION_DISABLED = "INTROSPECTION_DISABLED"


def code_of(error: BaseException) -> Code | None:
    """The code of a domain error; None for anything else (a fault of ours)."""
    if isinstance(error, ValidationError):
        return Code.BAD_USER_INPUT
    if isinstance(error, NotFoundError):
        return Code.NOT_FOUND
    if isinstance(error, ConflictError):
        return Code.CONFLICT
    if isinstance(error, UnavailableError):
        return Code.SERVICE_UNAVAILABLE
    if isinstance(error, ResyncRequiredError):
        return Code.RESYNC_REQUIRED
    return None


# The HTTP status a code answers with where the transport has one per error (REST, and
# GraphQL requests refused before execution).
HTTP_STATUS: dict[Code, int] = {
    Code.UNAUTHENTICATED: 401,
    Code.NOT_FOUND: 404,
    Code.BAD_USER_INPUT: 400,
    Code.BAD_REQUEST: 400,
    Code.CONFLICT: 409,
    Code.SERVICE_UNAVAILABLE: 503,
    Code.INTERNAL_SERVER_ERROR: 500,
    # The history the client asked from is gone for good.
    Code.RESYNC_REQUIRED: 410,
    # 200 whatever the media type: Apollo's clients (iOS stops at any other status) retry
    # with the document only when the miss arrives as a successful response.
    Code.PERSISTED_QUERY_NOT_FOUND: 200,
    Code.QUERY_NOT_IN_SAFELIST: 403,
}

# One message for missing and foreign items alike: the two must be indistinguishable.
NOT_FOUND_MESSAGE = "Conversation not found."
PROJECT_NOT_FOUND_MESSAGE = "Project not found."
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again shortly."
INTERNAL_MESSAGE = "Internal server error."
RESYNC_MESSAGE = (
    "`since` is older than the retained history: reload with conversations(), then sync from "
    "a new syncToken."
)


def public_message(error: BaseException, code: Code) -> str:
    """What the client is told: the field and reason for bad input, a fixed text otherwise."""
    if isinstance(error, ValidationError):
        return f"{error.field}: {error.message}"
    if code is Code.CONFLICT:
        return str(error)
    if isinstance(error, ProjectNotFoundError):
        return PROJECT_NOT_FOUND_MESSAGE
    return {
        Code.NOT_FOUND: NOT_FOUND_MESSAGE,
        Code.SERVICE_UNAVAILABLE: UNAVAILABLE_MESSAGE,
        Code.RESYNC_REQUIRED: RESYNC_MESSAGE,
    }.get(code, INTERNAL_MESSAGE)
