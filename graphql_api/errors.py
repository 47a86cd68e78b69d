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


class SequenceConflictError(ConflictError):
    """An append or a finish out of step with a stream's stored deltas: `expected_seq` is the
    seq the stream takes next (the client sends from there)."""

    def __init__(self, message: str, *, expected_seq: int) -> None:
        super().__init__(message)
        self.expected_seq = expected_seq


class ValidationError(ChatError):
    """Input we refuse before anything is written; `field` names it as the client spelled it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class UnavailableError(ChatError):
    """DynamoDB throttled, failed or was unreachable after every retry; safe to retry later."""


class StorageRejectedError(ChatError):
    """DynamoDB or S3 refused a request and would refuse it again: a bug of ours, a table
    that is not the one we expect, or a limit of the engine's (some DynamoDB-compatible
    engines take fewer items in a transaction than DynamoDB's 100). Never the client's
    fault, so an internal error to them; for an operator it carries what tells these apart.

    The engine's own message is not kept: it can quote the request's values (a refused
    item's attributes, a key), and what it would add is in `code`, `operation` and `items`.
    """

    def __init__(
        self,
        *,
        service: str,
        code: str,
        operation: str,
        resource: str | None,
        request_id: str | None,
        status: int,
        items: int | None = None,
        reasons: tuple[str, ...] = (),
    ) -> None:
        self.service = service
        self.code = code
        self.operation = operation
        self.resource = resource
        self.request_id = request_id
        self.status = status
        self.items = items
        self.reasons = reasons
        super().__init__(self.summary())

    def details(self) -> dict[str, str | int]:
        """The fields a log line carries: none of them holds anything the request held."""
        named = {
            "service": self.service,
            "code": self.code,
            "operation": self.operation,
            # The table, or for S3 the bucket.
            "table" if self.service == "DynamoDB" else "bucket": self.resource,
            "request_id": self.request_id,
            "http_status": self.status,
            # How many items the request carried, where a limit on that may be the reason.
            "items": self.items,
            # A cancelled transaction's reasons other than a condition or a race.
            "cancellation_reasons": ",".join(self.reasons) or None,
        }
        return {name: value for name, value in named.items() if value is not None}

    def summary(self) -> str:
        where = f" on {self.resource}" if self.resource else ""
        code = f"{self.code} ({', '.join(self.reasons)})" if self.reasons else self.code
        items = f", {self.items} items" if self.items is not None else ""
        return (
            f"{self.service} rejected {self.operation}{where}: {code} "
            f"(HTTP {self.status}{items}, request id {self.request_id or 'none'})"
        )


class RateLimitedError(ChatError):
    """The user spent a budget (domain/ratelimit.py); nothing was done. `retry_after`: whole
    seconds (at least 1) until the request would be admitted."""

    def __init__(self, *, retry_after: int, budget: str) -> None:
        super().__init__(f"{budget} budget spent; retry after {retry_after}s")
        self.retry_after = retry_after
        self.budget = budget


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
    # Over the user's request budget: retry after `retryAfter` seconds.
    RATE_LIMITED = "RATE_LIMITED"
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
    if isinstance(error, RateLimitedError):
        return Code.RATE_LIMITED
    return None


def details_of(error: BaseException) -> dict[str, object]:
    """What a client acts on beyond the code and the message, named as both transports carry
    it: in GraphQL's `extensions` and in the REST error body."""
    if isinstance(error, SequenceConflictError):
        return {"expectedSeq": error.expected_seq}
    return {}


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
    # With Retry-After, as GraphQL and REST alike answer it.
    Code.RATE_LIMITED: 429,
    # 200 whatever the media type: Apollo's clients (iOS stops at any other status) retry
    # with the document only when the miss arrives as a successful response.
    Code.PERSISTED_QUERY_NOT_FOUND: 200,
    Code.QUERY_NOT_IN_SAFELIST: 403,
}

# One message for missing and foreign items alike: the two must be indistinguishable.
NOT_FOUND_MESSAGE = "Conversation not found."
PROJECT_NOT_FOUND_MESSAGE = "Project not found."
UNAVAILABLE_MESSAGE = "The service is temporarily unavailable; try again shortly."
# A request shed before it was read: the process is serving as many as it takes at once.
BUSY_MESSAGE = "The service is busy; try again shortly."
RATE_LIMITED_MESSAGE = "Too many requests; try again after retryAfter seconds."
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
        Code.RATE_LIMITED: RATE_LIMITED_MESSAGE,
    }.get(code, INTERNAL_MESSAGE)


def retry_after_of(error: BaseException | None) -> int | None:
    """The whole seconds a client is told to wait before retrying, where the error says."""
    return error.retry_after if isinstance(error, RateLimitedError) else None
