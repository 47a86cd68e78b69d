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
on this path (errors are made public here, and limits are checked above). Both transports run
here: HTTP requests, and every operation a WebSocket carries, subscriptions included
(`subscribe`), so a document is parsed, limited, validated and cached in this one place.

A valid document is also planned once (planned.py) when documents are cached, so the operations
clients repeat run the planned way whether or not they are trusted documents.

Before any of that, a request may name a known document (documents.py: the trusted documents,
prepared at startup) by id or by its exact text: it then skips every phase up to execution and
runs its execution plan. With `trusted_only`, any other document is refused before it is even
parsed. Otherwise an id this process does not know may be registered with its text (Apollo's
automatic persisted queries), once the hash is checked and the document passed every phase.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, cast

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    OperationType,
    execute,
    located_error,
    parse,
    subscribe,
)
from graphql.utilities import get_operation_ast
from graphql.validation import specified_rules
from strawberry.execution import optimized_is_awaitable
from strawberry.schema.schema import validate_document
from strawberry.utils.await_maybe import await_maybe

from graphql_api.errors import Code

from .documents import KnownDocument, KnownDocuments
from .errors import log_errors, public_error
from .limits import (
    DocumentLimits,
    Violation,
    first_violation,
    limit_error,
    oversized,
    too_many_tokens,
)
from .planned import ExecutionPlan, PlannedExecutor, plan_operation
from .trusted import document_id as sha256_id

# The message Apollo's clients match (Apollo iOS and Kotlin by the message, not the code)
# before they send the document itself.
PERSISTED_QUERY_NOT_FOUND_MESSAGE: Final = "PersistedQueryNotFound"
HASH_MISMATCH_MESSAGE: Final = "provided sha does not match query"
NOT_TRUSTED_MESSAGE: Final = (
    "Only trusted documents are served here: send the id of an operation of the manifest."
)


class Phase(enum.Enum):
    """Where a request was refused, in the order the phases run."""

    DOCUMENT_ID = "document_id"
    PERSISTED = "persisted"
    TRUSTED = "trusted"
    PARSE = "parse"
    LIMITS = "limits"
    VALIDATION = "validation"
    OPERATION = "operation"
    # Over the user's budget (domain/ratelimit.py), checked before anything is executed.
    RATE_LIMIT = "rate_limit"
    # No place free in the process (admission.py): for an operation on a WebSocket; an HTTP
    # request is shed before it reaches a transport.
    ADMISSION = "admission"
    VARIABLES = "variables"


class RequestError(Exception):
    """The request was refused before any resolver ran; `errors` are already public.
    `retry_after`: the seconds a refusal tells the client to wait (HTTP's Retry-After)."""

    def __init__(
        self, phase: Phase, errors: list[GraphQLError], *, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{phase.value}: {errors[0].message if errors else ''}")
        self.phase = phase
        self.errors = errors
        self.retry_after = retry_after


@dataclasses.dataclass(frozen=True, slots=True)
class _CheckedDocument:
    document: DocumentNode
    violation: Violation | None
    validation_errors: tuple[GraphQLError, ...]
    # The execution plan of each query and mutation of a valid document, by id() of its node
    # (which the document keeps alive); only for cached documents, whose plans are reused.
    plans: Mapping[int, ExecutionPlan | None] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A document that passed every check, and the one operation of it to run."""

    document: DocumentNode
    operation: OperationDefinitionNode
    # Set for a known document: execution follows it (planned.py).
    plan: ExecutionPlan | None = None

    @property
    def kind(self) -> OperationType:
        return self.operation.operation


class GraphQLRunner:
    """Prepares and executes operations against one schema, with that schema's caches.

    `manifests` are the trusted documents' manifests, loaded and prepared now (ManifestError
    if one cannot be trusted); with `trusted_only`, they are the only documents served.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        limits: DocumentLimits,
        *,
        manifests: Sequence[Path] = (),
        trusted_only: bool = False,
    ) -> None:
        self.schema = schema
        self._limits = limits
        self._hide_suggestions = schema.config.disable_field_suggestions
        check = self._check
        self._planning = limits.cache_size > 0
        if self._planning:
            # Per runner, never module-level: two apps in one process keep their own.
            check = functools.lru_cache(maxsize=limits.cache_size)(check)
        self._checked = check
        self._trusted_only = trusted_only
        # APQ registrations live as long as the document cache would keep their documents;
        # with trusted_only nothing can be registered.
        self.known = KnownDocuments.load(
            manifests,
            schema=schema._schema,
            limits=limits,
            validate=self._validate,
            registrations=0 if trusted_only else limits.cache_size,
        )

    def prepare(
        self, query: str | None, operation_name: str | None, *, document_id: str | None = None
    ) -> Prepared:
        """The operation to run; RequestError if any check before execution refuses it.

        `document_id` (normalized: trusted.normalized_id) names the document by its id, with
        or without `query`; at least one of the two is given.
        """
        found = self._known(query, document_id)
        if isinstance(found, KnownDocument):
            return self._prepared_known(found, operation_name)
        prepared = self._prepare_text(found, operation_name)
        if document_id is not None and query is not None:
            # Checked against the text above and prepared without a refusal: worth keeping.
            self.known.register(document_id, query)
        return prepared

    def _known(self, query: str | None, document_id: str | None) -> KnownDocument | str:
        """The known document the request names, or the text to prepare the general way."""
        if document_id is not None:
            if query is not None and sha256_id(query) != document_id:
                raise _refused(
                    Phase.DOCUMENT_ID,
                    GraphQLError(
                        HASH_MISMATCH_MESSAGE, extensions={"code": Code.BAD_USER_INPUT.value}
                    ),
                )
            known = self.known.by_id(document_id)
            if known is not None:
                return known
            if query is None:
                query = self.known.registered(document_id)
            if query is None:
                raise _refused(
                    Phase.PERSISTED,
                    GraphQLError(
                        PERSISTED_QUERY_NOT_FOUND_MESSAGE,
                        extensions={"code": Code.PERSISTED_QUERY_NOT_FOUND.value},
                    ),
                )
        if query is None:
            raise ValueError("a request names its document by text, by id, or both")
        known = self.known.by_text(query)
        if known is not None:
            return known
        if self._trusted_only:
            # Refused on a dictionary miss: the text is never parsed, whatever it holds.
            raise _refused(
                Phase.TRUSTED,
                GraphQLError(
                    NOT_TRUSTED_MESSAGE, extensions={"code": Code.QUERY_NOT_IN_SAFELIST.value}
                ),
            )
        return query

    def _prepared_known(self, known: KnownDocument, operation_name: str | None) -> Prepared:
        if operation_name is not None and operation_name != known.name:
            raise _refused(
                Phase.OPERATION, GraphQLError(f"Unknown operation named '{operation_name}'.")
            )
        return Prepared(document=known.document, operation=known.operation, plan=known.plan)

    def _prepare_text(self, query: str, operation_name: str | None) -> Prepared:
        too_large = oversized(query, self._limits)
        if too_large is not None:
            raise _refused(Phase.LIMITS, limit_error(too_large))
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
        return Prepared(
            document=checked.document, operation=operation, plan=checked.plans.get(id(operation))
        )

    def _check(self, query: str) -> _CheckedDocument:
        try:
            document = parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLSyntaxError as exc:
            # Raised, not returned, so the cache never keeps a document that did not parse.
            too_long = too_many_tokens(exc, self._limits)
            if too_long is not None:
                raise _refused(Phase.LIMITS, limit_error(too_long)) from None
            raise _refused(Phase.PARSE, exc) from None
        violation = first_violation(document, self._limits)
        errors: list[GraphQLError] = []
        if violation is None:
            errors = self._validate(document)
        plans: dict[int, ExecutionPlan | None] = {}
        if self._planning and violation is None and not errors:
            # Clients send the same few documents over and over: planned once, like the trusted
            # documents, each then runs the planned way too (same bytes, planned.py).
            plans = {
                id(definition): plan_operation(self.schema._schema, document, definition)
                for definition in document.definitions
                if isinstance(definition, OperationDefinitionNode)
                and definition.operation is not OperationType.SUBSCRIPTION
            }
        return _CheckedDocument(document, violation, tuple(errors), plans)

    def _validate(self, document: DocumentNode) -> list[GraphQLError]:
        errors = validate_document(self.schema._schema, document, tuple(specified_rules))
        if self._hide_suggestions:
            for error in errors:
                self.schema.remove_field_suggestion(error)
        return errors

    async def execute(
        self, prepared: Prepared, *, variables: Mapping[str, Any] | None, context: object
    ) -> ExecutionResult:
        """The result with public errors; RequestError if the variables do not fit."""
        planned: dict[str, Any] = {}
        executor_class = self.schema.execution_context_class
        if prepared.plan is not None:
            executor_class, planned = PlannedExecutor, {"plan": prepared.plan}
        result: ExecutionResult = await await_maybe(
            execute(
                self.schema._schema,
                prepared.document,
                context_value=context,
                variable_values=dict(variables) if variables is not None else None,
                operation_name=_name(prepared),
                executor_class=executor_class,
                is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
                hide_suggestions=self._hide_suggestions,
                operation_extensions=None,
                **planned,
            )
        )
        _refuse_variables(result)
        return _public(result)

    async def subscribe(
        self, prepared: Prepared, *, variables: Mapping[str, Any] | None, context: object
    ) -> AsyncGenerator[ExecutionResult]:
        """The subscription's results with public errors, one per event; RequestError, before
        any result, if the variables do not fit.

        An error of the subscription's source (a domain error ending it, say) is its last
        result. Subscriptions run unplanned: an event's selection is executed afresh each time.
        """
        outcome = await await_maybe(
            subscribe(
                self.schema._schema,
                prepared.document,
                context_value=context,
                variable_values=dict(variables) if variables is not None else None,
                operation_name=_name(prepared),
                executor_class=self.schema.execution_context_class,
                hide_suggestions=self._hide_suggestions,
                operation_extensions=None,
            )
        )
        if isinstance(outcome, ExecutionResult):
            # Nothing to stream: the variables, or a source that would not even start.
            _refuse_variables(outcome)
            return _one(_public(outcome))
        # graphql-core maps the source to results with an async generator.
        events = cast(AsyncGenerator[ExecutionResult], outcome)
        return _events(events, prepared.operation)


def _name(prepared: Prepared) -> str | None:
    return prepared.operation.name.value if prepared.operation.name else None


def _refuse_variables(result: ExecutionResult) -> None:
    if result.errors and result.data is None and all(e.path is None for e in result.errors):
        # Only variable coercion fails without a path and without running anything.
        raise _refused(Phase.VARIABLES, *result.errors)


def _public(result: ExecutionResult) -> ExecutionResult:
    if not result.errors:
        return result
    log_errors(result.errors)
    return ExecutionResult(
        data=result.data, errors=[public_error(error) for error in result.errors]
    )


async def _one(result: ExecutionResult) -> AsyncGenerator[ExecutionResult]:
    yield result


async def _events(
    events: AsyncGenerator[ExecutionResult], operation: OperationDefinitionNode
) -> AsyncGenerator[ExecutionResult]:
    async with contextlib.aclosing(events):
        try:
            async for result in events:
                yield _public(result)
        except Exception as error:
            # graphql-core lets the source's failure through; it ends the stream as an error
            # of the one root field whose resolver made the source.
            yield _public(ExecutionResult(data=None, errors=[_source_error(error, operation)]))


def _source_error(error: Exception, operation: OperationDefinitionNode) -> GraphQLError:
    field = next(
        (node for node in operation.selection_set.selections if isinstance(node, FieldNode)),
        None,
    )
    if field is None:
        return located_error(error)
    return located_error(error, [field], [(field.alias or field.name).value])


def _refused(phase: Phase, *errors: GraphQLError) -> RequestError:
    return RequestError(phase, [public_error(error) for error in errors])
