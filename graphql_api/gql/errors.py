"""GraphQL errors in their public form: a stable `extensions.code`, a message meant for the client.

Resolvers raise domain errors (graphql_api.errors); `public_error` rewrites every error before
it leaves the server, using the one mapping from domain errors to codes, so a client never
sees a traceback, botocore text or our internals. Errors of the request itself (syntax,
validation, limits, variables) are the client's input, so they are BAD_USER_INPUT.
"""

from __future__ import annotations

import logging

from graphql import GraphQLError

from graphql_api.errors import (
    Code,
    UnavailableError,
    code_of,
    details_of,
    public_message,
    retry_after_of,
)

logger = logging.getLogger(__name__)

# Exceptions graphql-core attaches while coercing variables and literals (a scalar's parser
# raising), which describe the client's input rather than a fault of ours.
_COERCION_ERRORS = (GraphQLError, ValueError, TypeError)


def classify(error: GraphQLError) -> Code:
    original = error.original_error
    code = None if original is None else code_of(original)
    if code is not None:
        return code
    if error.extensions and isinstance(error.extensions.get("code"), str):
        # Already public (our document limits say so up front).
        return Code(error.extensions["code"])
    if error.path is None and (original is None or isinstance(original, _COERCION_ERRORS)):
        # Before execution: a syntax, validation, limit or variable error in the request.
        return Code.BAD_USER_INPUT
    return Code.INTERNAL_SERVER_ERROR


def public_error(error: GraphQLError) -> GraphQLError:
    code = classify(error)
    extensions: dict[str, object] = {"code": code.value}
    original = error.original_error
    field = getattr(original, "field", None)
    if code is Code.BAD_USER_INPUT and isinstance(field, str):
        extensions["field"] = field
    if code is Code.SERVICE_UNAVAILABLE:
        extensions["retryable"] = True
    retry_after = retry_after_of(original)
    if retry_after is not None:
        extensions["retryAfter"] = retry_after
    if original is not None and code_of(original) is not None:
        extensions.update(details_of(original))
        message = public_message(original, code)
    elif code is Code.INTERNAL_SERVER_ERROR:
        message = public_message(error, code)
    else:
        message = error.message
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


def log_errors(errors: list[GraphQLError]) -> None:
    """Log what the client cannot see: faults of ours in full, storage outages briefly."""
    for error in errors:
        code = classify(error)
        if code is Code.INTERNAL_SERVER_ERROR:
            logger.error("unexpected error at %s", error.path, exc_info=error.original_error)
        elif code is Code.SERVICE_UNAVAILABLE and isinstance(
            error.original_error, UnavailableError
        ):
            logger.warning("storage unavailable at %s: %s", error.path, error.original_error)
