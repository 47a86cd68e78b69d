"""The REST error shape, `{"error": {"code", "message"}}`, and the paths it applies to.

Codes, statuses and messages come from graphql_api.errors, the one mapping every transport
uses, so a REST error carries the same code as GraphQL's `extensions.code` for the same fault.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.responses import Response

from graphql_api.errors import (
    HTTP_STATUS,
    Code,
    UnavailableError,
    ValidationError,
    code_of,
    details_of,
    public_message,
    retry_after_of,
)
from graphql_api.transport import TransportPaths

logger = logging.getLogger(__name__)

PREFIX = "/conversations"
PROJECTS_PREFIX = "/projects"


class BadRequest(Exception):
    """A request that is not one the route can read (a body that is not a JSON object)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def error_body(
    message: str,
    code: str,
    *,
    field: str | None = None,
    retry_after: int | None = None,
    details: dict[str, object] | None = None,
) -> dict[str, Any]:
    """The body of every REST error; `field`, `retryable`, `retryAfter` and the `details`
    (expectedSeq) as GraphQL's `extensions` have them."""
    detail: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        detail["field"] = field
    if code == Code.SERVICE_UNAVAILABLE:
        detail["retryable"] = True
    if retry_after is not None:
        detail["retryAfter"] = retry_after
    detail.update(details or {})
    return {"error": detail}


def covers(path: str) -> bool:
    return any(
        path == prefix or path.startswith(prefix + "/") for prefix in (PREFIX, PROJECTS_PREFIX)
    )


# What the transport guard and the authentication middleware need to refuse a REST request
# in REST's shape. PUT and PATCH carry a body as POST does.
REST_PATHS = TransportPaths(
    covers=covers, error_body=error_body, body_methods=frozenset({"POST", "PUT", "PATCH"})
)


def json_response(
    body: object, status: int = 200, *, headers: dict[str, str] | None = None
) -> Response:
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(content, status_code=status, media_type="application/json", headers=headers)


def error_response(
    code: Code, message: str, *, headers: dict[str, str] | None = None, status: int | None = None
) -> Response:
    return json_response(
        error_body(message, code.value),
        HTTP_STATUS[code] if status is None else status,
        headers=headers,
    )


def failure_response(error: Exception) -> Response:
    """The answer to anything a route raised: domain errors by their code, the rest as 500."""
    if isinstance(error, BadRequest):
        return error_response(Code.BAD_REQUEST, error.message)
    code = code_of(error)
    if code is None:
        logger.error("unexpected error in a REST route", exc_info=error)
        code = Code.INTERNAL_SERVER_ERROR
    elif isinstance(error, UnavailableError):
        logger.warning("storage unavailable: %s", error)
    field = error.field if isinstance(error, ValidationError) else None
    retry_after = retry_after_of(error)
    body = error_body(
        public_message(error, code),
        code.value,
        field=field,
        retry_after=retry_after,
        details=details_of(error),
    )
    return json_response(
        body,
        HTTP_STATUS[code],
        headers=None if retry_after is None else {"Retry-After": str(retry_after)},
    )
