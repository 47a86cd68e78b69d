"""Run a GraphQL request in explicit phases: parse, check limits, validate, then execute.

Each phase that refuses the request raises a RequestError naming the phase, so the HTTP
transport can answer with the status the GraphQL-over-HTTP spec gives that phase, and the
document-level work is done once per distinct document: clients send the same few operations
over and over, and parsing plus validation were a third of a request's CPU. The limits are
checked before the cached validation verdict is used, so a cached verdict can never let an
over-limit document through; documents that fail to parse are never cached, so garbage cannot
evict the operations real clients send.

Execution calls graphql-core directly with Strawberry's schema and execution context: the
resolvers are Strawberry's, but the per-request extension machinery around them is not needed
on this path (errors are made public here, and limits are checked above).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections.abc import Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    parse,
)
from graphql.utilities import get_operation_ast
from graphql.validation import specified_rules
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import validate_document
from strawberry.utils.await_maybe import await_maybe

from .errors import log_errors, public_error
from .limits import DocumentLimits, first_violation, limit_error
from .schema import ChatSchema

_TOO_MANY_TOKENS = "Document contains more than"


class Phase(enum.Enum):
    """Where a request was refused, in the order the phases run."""

    PARSE = "parse"
    LIMITS = "limits"
    VALIDATION = "validation"
    OPERATION = "operation"
    VARIABLES = "variables"


class RequestError(Exception):
    """The request was refused before any resolver ran; `errors` are already public."""

    def __init__(self, phase: Phase, errors: list[GraphQLError]) -> None:
        super().__init__(f"{phase.value}: {errors[0].message if errors else ''}")
        self.phase = phase
        self.errors = errors


@dataclasses.dataclass(frozen=True, slots=True)
class _CheckedDocument:
    document: DocumentNode
    violation: str | None
    validation_errors: tuple[GraphQLError, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A document that passed every check, and the one operation of it to run."""

    document: DocumentNode
    operation: OperationDefinitionNode

    @property
    def kind(self) -> OperationType:
        return self.operation.operation


class GraphQLRunner:
    """Prepares and executes operations against one schema, with that schema's caches."""

    def __init__(self, schema: ChatSchema, limits: DocumentLimits) -> None:
        self.schema = schema
        self._limits = limits
        self._hide_suggestions = schema.config.disable_field_suggestions
        check = self._check
        if limits.cache_size > 0:
            # Per runner, never module-level: two apps in one process keep their own.
            check = functools.lru_cache(maxsize=limits.cache_size)(check)
        self._checked = check

    def prepare(self, query: str, operation_name: str | None) -> Prepared:
        """The operation to run; RequestError if any check before execution refuses it."""
        if len(query.encode()) > self._limits.max_bytes:
            raise _refused(
                Phase.LIMITS,
                limit_error(
                    f"query document is larger than the limit of {self._limits.max_bytes} bytes"
                ),
            )
        checked = self._checked(query)
        if checked.violation is not None:
            raise _refused(Phase.LIMITS, limit_error(checked.violation))
        if checked.validation_errors:
            raise _refused(Phase.VALIDATION, *checked.validation_errors)
        operation = get_operation_ast(checked.document, operation_name)
        if operation is None:
            message = (
                f"Unknown operation named '{operation_name}'."
                if operation_name
                else "Must provide operation name if query contains multiple operations."
            )
            raise _refused(Phase.OPERATION, GraphQLError(message))
        return Prepared(document=checked.document, operation=operation)

    def _check(self, query: str) -> _CheckedDocument:
        try:
            document = parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLSyntaxError as exc:
            phase = Phase.LIMITS if exc.message.startswith(_TOO_MANY_TOKENS) else Phase.PARSE
            # Raised, not returned, so the cache never keeps a document that did not parse.
            raise _refused(phase, exc) from None
        violation = first_violation(document, self._limits)
        errors: list[GraphQLError] = []
        if violation is None:
            errors = validate_document(self.schema._schema, document, tuple(specified_rules))
            if self._hide_suggestions:
                for error in errors:
                    self.schema.remove_field_suggestion(error)
        return _CheckedDocument(document, violation, tuple(errors))

    async def execute(
        self, prepared: Prepared, *, variables: Mapping[str, Any] | None, context: object
    ) -> ExecutionResult:
        """The result with public errors; RequestError if the variables do not fit."""
        result: ExecutionResult = await await_maybe(
            execute(
                self.schema._schema,
                prepared.document,
                context_value=context,
                variable_values=dict(variables) if variables is not None else None,
                operation_name=(prepared.operation.name.value if prepared.operation.name else None),
                executor_class=self.schema.execution_context_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                hide_suggestions=self._hide_suggestions,
                operation_extensions=None,
            )
        )
        if not result.errors:
            return result
        if result.data is None and all(error.path is None for error in result.errors):
            # Only variable coercion fails without a path and without running anything.
            raise _refused(Phase.VARIABLES, *result.errors)
        log_errors(result.errors)
        return ExecutionResult(
            data=result.data, errors=[public_error(error) for error in result.errors]
        )


def _refused(phase: Phase, *errors: GraphQLError) -> RequestError:
    return RequestError(phase, [public_error(error) for error in errors])
