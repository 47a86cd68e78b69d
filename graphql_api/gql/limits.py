"""Limits on the shape of a GraphQL document, checked before validation and execution.

One walk over the parsed document measures depth, aliases, directives and repeated fields.
A document over any limit gets ONE error and is neither validated nor executed: a hostile
document (101 aliases, 500 copies of __typename, a wall of directives) then costs one pass
over the AST and no DynamoDB read, and the answer does not echo one error per offence. The
error's `extensions.code` names the limit (graphql_api.errors.Code), its message the numbers.

GraphQLRunner (executor.py) checks them, for every transport, and caches the verdict with the
parsed document.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from typing import Final

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSyntaxError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from graphql_api.errors import Code

# How graphql-core's parser says it stopped at `max_tokens`; it raises no error type of its own.
_TOO_MANY_TOKENS: Final = "Document contains more than"
_INTROSPECTION_FIELDS: Final = frozenset({"__schema", "__type"})
# Introspection fields that return lists. Nested in each other they multiply (every type's
# fields' types' fields...): that, not depth, is what makes an introspection query costly.
_INTROSPECTION_LISTS: Final = frozenset(
    {"types", "fields", "args", "inputFields", "interfaces", "possibleTypes", "enumValues"}
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DocumentLimits:
    max_depth: int = 8
    max_aliases: int = 15
    max_tokens: int = 2000
    max_bytes: int = 16 * 1024
    # No legitimate operation of this API repeats a field or stacks directives this much.
    max_repeats_of_a_field: int = 3
    max_directives: int = 20
    allow_introspection: bool = False
    # GraphiQL's own introspection query nests types { fields { args } }: three.
    max_introspection_lists: int = 3
    # Distinct documents whose parse and validation results are kept; 0 keeps none.
    cache_size: int = 512


@dataclasses.dataclass
class _Tally:
    depth: int = 0
    aliases: int = 0
    directives: int = 0
    repeats: int = 0
    introspects: bool = False
    introspection_lists: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Violation:
    """A limit a document breaks: its code, and one sentence for the client."""

    code: Code
    message: str


def limit_error(violation: Violation) -> GraphQLError:
    return GraphQLError(violation.message, extensions={"code": violation.code.value})


def oversized(query: str, limits: DocumentLimits) -> Violation | None:
    """The size limit, checked on the text before it is parsed."""
    if len(query.encode()) <= limits.max_bytes:
        return None
    return Violation(
        Code.MAX_DOCUMENT_BYTES_LIMIT,
        f"query document is larger than the limit of {limits.max_bytes} bytes",
    )


def too_many_tokens(error: GraphQLSyntaxError, limits: DocumentLimits) -> Violation | None:
    """The token limit, when `error` is the parser stopping at it; None for any other error."""
    if not error.description.startswith(_TOO_MANY_TOKENS):
        return None
    return Violation(
        Code.MAX_TOKENS_LIMIT,
        f"query document has more than the limit of {limits.max_tokens} tokens",
    )


def first_violation(document: DocumentNode, limits: DocumentLimits) -> Violation | None:
    """The first limit `document` breaks; None if none."""
    return next(_violations(_measure(document), limits), None)


def _measure(document: DocumentNode) -> _Tally:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    tally = _Tally()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            tally.directives += len(definition.directives or ())
            _walk(
                definition.selection_set,
                fragments,
                tally,
                depth=0,
                seen=frozenset(),
                nested_lists=None,
            )
    return tally


def _walk(
    selections: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    tally: _Tally,
    *,
    depth: int,
    seen: frozenset[str],
    nested_lists: int | None,
) -> None:
    if selections is None:
        return
    # Inside introspection (`nested_lists` is not None) depth does not count: GraphiQL's
    # standard query nests its type references 14 deep, one object each. Its lists nested in
    # each other are what multiply its cost, and those are limited instead.
    if nested_lists is None:
        tally.depth = max(tally.depth, depth)
    else:
        tally.introspection_lists = max(tally.introspection_lists, nested_lists)
    names: Counter[str] = Counter()
    for node in selections.selections:
        tally.directives += len(node.directives or ())
        if isinstance(node, FieldNode):
            names[(node.alias or node.name).value] += 1
            name = node.name.value
            lists = nested_lists
            if name in _INTROSPECTION_FIELDS:
                tally.introspects = True
                lists = lists or 0
            elif lists is not None and name in _INTROSPECTION_LISTS:
                lists += 1
            tally.aliases += node.alias is not None
            _walk(
                node.selection_set,
                fragments,
                tally,
                depth=depth + 1,
                seen=seen,
                nested_lists=lists,
            )
        elif isinstance(node, InlineFragmentNode):
            _walk(
                node.selection_set,
                fragments,
                tally,
                depth=depth,
                seen=seen,
                nested_lists=nested_lists,
            )
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            # A fragment cycle is a validation error of its own; don't loop on it here.
            if name in fragments and name not in seen:
                fragment = fragments[name]
                _walk(
                    fragment.selection_set,
                    fragments,
                    tally,
                    depth=depth,
                    seen=seen | {name},
                    nested_lists=nested_lists,
                )
    tally.repeats = max(tally.repeats, max(names.values(), default=0))


def _violations(tally: _Tally, limits: DocumentLimits) -> Iterator[Violation]:
    if tally.introspects and not limits.allow_introspection:
        yield Violation(Code.INTROSPECTION_DISABLED, "introspection is disabled")
    if tally.introspection_lists > limits.max_introspection_lists:
        yield Violation(
            Code.MAX_INTROSPECTION_LISTS_LIMIT,
            f"introspection nests {tally.introspection_lists} lists; "
            f"the limit is {limits.max_introspection_lists}",
        )
    if tally.depth > limits.max_depth:
        yield Violation(
            Code.MAX_DEPTH_LIMIT,
            f"query is nested {tally.depth} levels deep; the limit is {limits.max_depth}",
        )
    if tally.aliases > limits.max_aliases:
        yield Violation(
            Code.MAX_ALIASES_LIMIT,
            f"query uses {tally.aliases} aliases; the limit is {limits.max_aliases}",
        )
    if tally.directives > limits.max_directives:
        yield Violation(
            Code.MAX_DIRECTIVES_LIMIT,
            f"query uses {tally.directives} directives; the limit is {limits.max_directives}",
        )
    if tally.repeats > limits.max_repeats_of_a_field:
        yield Violation(
            Code.MAX_FIELD_REPEATS_LIMIT,
            f"query repeats one field {tally.repeats} times; "
            f"the limit is {limits.max_repeats_of_a_field}",
        )
