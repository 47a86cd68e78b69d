"""What a GraphQL operation costs in its user's budgets (domain/ratelimit.py), and the check
both transports make once the operation is prepared and before it is executed, so a refusal
costs no DynamoDB request.

- A query, or a subscription's start: one read, whatever it selects. Its root fields run
  together, their reads batched by the loaders into one wave.
- A mutation: one token per root field, from that field's budget (appends for appendMessage,
  writes for the rest). Its fields run one after another, each its own write, so a document
  of fifteen aliased createConversation costs fifteen writes, as fifteen requests would, and
  a document mixing writes and appends draws on both, all or nothing.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Mapping

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationType,
    SelectionSetNode,
)

from graphql_api.domain.ratelimit import Budget, RateLimiter, Transport, mutation_budget
from graphql_api.errors import RateLimitedError

from .errors import public_error
from .executor import Phase, Prepared, RequestError


def charge_of(prepared: Prepared) -> collections.Counter[Budget]:
    """The tokens `prepared` draws from each budget (at least one)."""
    operation = prepared.operation
    if operation.operation is not OperationType.MUTATION:
        return collections.Counter({Budget.READ: 1})
    fragments = {
        definition.name.value: definition
        for definition in prepared.document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    charge = collections.Counter(
        mutation_budget(name) for name in root_fields(operation.selection_set, fragments)
    )
    # `mutation { __typename }` writes nothing, but is a request all the same.
    return charge or collections.Counter({Budget.READ: 1})


def root_fields(
    selections: SelectionSetNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    seen: frozenset[str] = frozenset(),
) -> Iterator[str]:
    """The names of the fields an operation selects at its root, through its fragments (each
    field as often as it runs: an alias runs again); none of the meta fields (`__typename`),
    which touch nothing. Directives are not evaluated: a skipped field costs all the same."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            if not selection.name.value.startswith("__"):
                yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            # A cycle or an unknown fragment fails validation; never loop on one all the same.
            if name in fragments and name not in seen:
                yield from root_fields(fragments[name].selection_set, fragments, seen | {name})


async def admit(
    limiter: RateLimiter, prepared: Prepared, *, user_id: str, transport: Transport
) -> None:
    """Take the operation's charge from the user's budgets; a RequestError (RATE_LIMITED,
    with `retryAfter`) when one is short."""
    try:
        await limiter.check(user_id, charge_of(prepared), transport=transport)
    except RateLimitedError as refused:
        error = public_error(GraphQLError(str(refused), original_error=refused))
        raise RequestError(Phase.RATE_LIMIT, [error], retry_after=refused.retry_after) from None
