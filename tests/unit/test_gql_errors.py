"""The mapping from failures to public GraphQL errors."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from graphql_api.errors import (
    ChatError,
    Code,
    ConflictError,
    NotFoundError,
    SequenceConflictError,
    StorageRejectedError,
    UnavailableError,
    ValidationError,
)
from graphql_api.gql.errors import classify, public_error


def raised(exc: Exception, *, path: list[str | int] | None = None) -> GraphQLError:
    return GraphQLError(str(exc), path=path if path is not None else ["field"], original_error=exc)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ValidationError("content", "too large"), Code.BAD_USER_INPUT),
        (NotFoundError("conversation not found"), Code.NOT_FOUND),
        (ConflictError("stale"), Code.CONFLICT),
        (UnavailableError("throttled"), Code.SERVICE_UNAVAILABLE),
        (ChatError("a fault of ours"), Code.INTERNAL_SERVER_ERROR),
        (
            StorageRejectedError(
                service="DynamoDB",
                code="ValidationException",
                operation="TransactWriteItems",
                resource="chat-history",
                request_id="R",
                status=400,
            ),
            Code.INTERNAL_SERVER_ERROR,
        ),
        (KeyError("oops"), Code.INTERNAL_SERVER_ERROR),
        (ValueError("bug"), Code.INTERNAL_SERVER_ERROR),
    ],
)
def test_a_resolver_failure_gets_its_code(exc: Exception, code: Code) -> None:
    assert classify(raised(exc)) is code


def test_request_errors_before_execution_are_bad_input() -> None:
    assert classify(GraphQLError("Cannot query field 'x' on type 'Query'.")) is Code.BAD_USER_INPUT
    assert classify(GraphQLError("bad variable", original_error=ValueError("no"))) is (
        Code.BAD_USER_INPUT
    )


def test_an_unexpected_error_says_nothing_of_itself() -> None:
    public = public_error(raised(RuntimeError("secret table name chat-prod")))
    assert public.message == "Internal server error."
    assert public.extensions == {"code": "INTERNAL_SERVER_ERROR"}
    assert public.original_error is None
    assert public.path == ["field"]


def test_an_outage_is_retryable_and_hides_the_cause() -> None:
    public = public_error(raised(UnavailableError("DynamoDB is unavailable (ThrottlingException)")))
    assert "Throttling" not in public.message
    assert public.extensions == {"code": "SERVICE_UNAVAILABLE", "retryable": True}


def test_bad_input_names_the_field() -> None:
    public = public_error(raised(ValidationError("messages[1].role", "is not a known role")))
    assert public.message == "messages[1].role: is not a known role"
    assert public.extensions == {"code": "BAD_USER_INPUT", "field": "messages[1].role"}


def test_a_sequence_conflict_names_the_seq_the_stream_takes_next() -> None:
    public = public_error(raised(SequenceConflictError("send seq 3 next", expected_seq=3)))
    assert public.message == "send seq 3 next"
    assert public.extensions == {"code": "CONFLICT", "expectedSeq": 3}
