"""The OpenAPI 3.1 document of the REST routes, built from their descriptions (operations.py,
bodies.py), served at /openapi.json and committed as schema/openapi.json.

Written for swift-openapi-generator: an operationId per operation, every body a named
component, nullable values as 3.1 type arrays, optional nested objects as absent rather
than null (the generator drops `anyOf: [$ref, null]`), and every error response with the
Error schema.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from graphql_api.settings import InputLimits

from .bodies import ERROR, SHAPES
from .endpoint import Operation, Param
from .operations import OPERATIONS
from .schema import ref

OPENAPI_PATH: Final = Path(__file__).resolve().parents[2] / "schema" / "openapi.json"
# The REST contract's own version: raise it with any change a client could notice.
API_VERSION: Final = "1.1.0"
SECURITY_SCHEME: Final = "cognito"
DEV_SERVER: Final = "http://127.0.0.1:8000"

# Every operation can answer these; operations with a body can also answer 413 and 415.
_ALWAYS: Final = (401, 429, 500, 503)
_WITH_BODY: Final = (413, 415)
_ERRORS: Final = {
    400: ("BadRequest", "Invalid input (BAD_USER_INPUT, naming the field) or request."),
    401: ("Unauthorized", "Missing, malformed, expired or otherwise unacceptable token."),
    404: (
        "NotFound",
        "No such conversation, project or streamed message for the caller: missing or another "
        "user's.",
    ),
    409: (
        "Conflict",
        "A stale expectedVersion, an id already used for something else, or a stream out of "
        "step (expectedSeq) or finished.",
    ),
    413: ("PayloadTooLarge", "The request body is over the service's limit."),
    415: ("UnsupportedMediaType", "The request body is not application/json."),
    429: (
        "TooManyRequests",
        "The caller's request budget is spent (RATE_LIMITED); nothing was done. Retry after "
        "Retry-After seconds.",
    ),
    500: ("InternalServerError", "A fault of the service."),
    503: (
        "ServiceUnavailable",
        "Storage or token verification unavailable, or the service too busy to read the "
        "request; retry later (after Retry-After seconds when it is given).",
    ),
}
# Headers an error response always carries.
_ERROR_HEADERS: Final = {
    429: {"Retry-After": "Seconds to wait before sending the request again (also retryAfter)."}
}


def openapi_document(limits: InputLimits) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = defaultdict(dict)
    for operation in OPERATIONS:
        paths[operation.path][operation.method.lower()] = _operation(operation, limits)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "chat-history-api REST",
            "version": API_VERSION,
            "description": (
                "The conversation and project routes of the chat history service, on the same "
                "storage, rules and Cognito authentication as its GraphQL API (/graphql). "
                "Errors carry the codes GraphQL puts in extensions.code."
            ),
        },
        # Where `make run` serves; a deployed client passes its own base URL.
        "servers": [{"url": DEV_SERVER, "description": "The local dev stack (make run)."}],
        "security": [{SECURITY_SCHEME: []}],
        "paths": dict(paths),
        "components": {
            "schemas": {shape.name: shape.json_schema() for shape in SHAPES},
            "responses": {
                name: _error_response(status, description)
                for status, (name, description) in _ERRORS.items()
            },
            "securitySchemes": {
                SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "A Cognito user pool token (access token by default).",
                }
            },
        },
    }


def openapi_json(limits: InputLimits) -> str:
    """The document as committed: stable key order, two-space indents, a final newline."""
    return json.dumps(openapi_document(limits), indent=2, ensure_ascii=False) + "\n"


def export_openapi(path: Path = OPENAPI_PATH) -> None:
    path.write_text(openapi_json(InputLimits()), encoding="utf-8")


def _operation(operation: Operation, limits: InputLimits) -> dict[str, Any]:
    described: dict[str, Any] = {"operationId": operation.operation_id}
    described["summary"] = operation.summary
    if operation.description:
        described["description"] = operation.description
    if operation.params:
        described["parameters"] = [_parameter(param, limits) for param in operation.params]
    if operation.body is not None:
        described["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref(operation.body.name)}}},
        }
    described["responses"] = {str(operation.status): _success(operation)} | {
        str(status): {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
        for status in sorted({*operation.errors, *_ALWAYS, *(_WITH_BODY if operation.body else ())})
    }
    return described


def _error_response(status: int, description: str) -> dict[str, Any]:
    response: dict[str, Any] = {"description": description}
    if status in _ERROR_HEADERS:
        response["headers"] = _headers(_ERROR_HEADERS[status])
    response["content"] = {"application/json": {"schema": {"$ref": ref(ERROR.name)}}}
    return response


def _headers(described: Mapping[str, str]) -> dict[str, Any]:
    return {
        name: {"description": description, "schema": {"type": "string"}}
        for name, description in described.items()
    }


def _success(operation: Operation) -> dict[str, Any]:
    response: dict[str, Any] = {"description": operation.summary}
    if operation.headers:
        response["headers"] = _headers(operation.headers)
    if operation.response is not None:
        response["content"] = {
            "application/json": {"schema": {"$ref": ref(operation.response.name)}}
        }
    return response


def _parameter(param: Param, limits: InputLimits) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": param.type}
    if param.type == "integer":
        schema["format"] = "int32"
    if param.format:
        schema["format"] = param.format
    if param.page_size:
        schema |= {"minimum": 0, "maximum": limits.max_page_size}
        schema["default"] = limits.default_page_size
    return {
        "name": param.name,
        "in": param.location,
        "required": param.location == "path",
        "description": param.description,
        "schema": schema,
    }
