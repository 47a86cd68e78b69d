"""Planned execution gives graphql-core's answer, also for every value it does not expect.

A small schema of plain Strawberry fields, filled with values each of which breaks one rule
(null in a non-null field, a value a scalar refuses, an Int out of range, a string where a list
belongs, an exception as a value...). Each runs through graphql-core's executor and through
the planned one: data and errors (messages, paths, locations) must be the same.
"""

from __future__ import annotations

import asyncio
import enum
import json
from typing import Any, ClassVar

import pytest
import strawberry
from graphql import ExecutionResult, GraphQLField, execute, parse
from graphql.execution.collect_fields import FieldDetailsList
from graphql.pyutils import AwaitableOrValue, Path
from graphql.type import GraphQLObjectType

from graphql_api.gql.planned import PlannedExecutor, plan_operation


@strawberry.enum
class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


@strawberry.type
class Leaf:
    text: str
    maybe: str | None
    count: int
    flag: bool
    mood: Mood


async def _later(root: Node) -> str:
    await asyncio.sleep(0)
    return f"later {root.id}"


@strawberry.type
class Node:
    id: strawberry.ID
    leaf: Leaf
    maybe_leaf: Leaf | None
    leaves: list[Leaf]
    maybe_leaves: list[Leaf | None] | None
    tags: list[str]
    later: str = strawberry.field(resolver=_later)


def leaf(**changes: Any) -> Leaf:
    values: dict[str, Any] = {
        "text": "t",
        "maybe": None,
        "count": 3,
        "flag": True,
        "mood": Mood.HAPPY,
    }
    return Leaf(**{**values, **changes})


def node(**changes: Any) -> Node:
    values: dict[str, Any] = {
        "id": strawberry.ID("n1"),
        "leaf": leaf(),
        "maybe_leaf": None,
        "leaves": [leaf(), leaf(text="u")],
        "maybe_leaves": [None, leaf()],
        "tags": ["a", "b"],
    }
    return Node(**{**values, **changes})


class _Raises:
    """An object whose every attribute read fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no {name}")


CASES: dict[str, list[Any]] = {
    "all expected": [node()],
    "null in a non-null leaf": [node(leaf=leaf(text=None)), node()],
    "null in a nullable leaf": [node(leaf=leaf(maybe=None))],
    "a string for an Int": [node(leaf=leaf(count="x"))],
    "an Int beyond 32 bits": [node(leaf=leaf(count=2**40))],
    "a bool for an Int": [node(leaf=leaf(count=True))],
    "a float for an Int": [node(leaf=leaf(count=3.0))],
    "an int for a String": [node(leaf=leaf(text=5))],
    "an int for a Boolean": [node(leaf=leaf(flag=1))],
    "an int for an ID": [node(id=7)],
    "a string for an enum": [node(leaf=leaf(mood="bogus"))],
    "an enum's value for an enum": [node(leaf=leaf(mood="happy"))],
    "an exception as a value": [node(leaf=leaf(maybe=ValueError("boom")))],
    "an exception in a non-null leaf": [node(leaf=leaf(text=ValueError("boom")))],
    "null for a non-null object": [node(leaf=None)],
    "a nullable object present": [node(maybe_leaf=leaf(text="m"))],
    "a string for a list": [node(leaves="not a list")],
    "a tuple for a list": [node(tags=("x", "y"))],
    "null in a list of non-null": [node(leaves=[leaf(), None])],
    "null in a list of nullable": [node(maybe_leaves=[None, None])],
    "null for a nullable list": [node(maybe_leaves=None)],
    "null for a non-null list": [node(tags=None)],
    "a list item that breaks a leaf": [node(leaves=[leaf(), leaf(count="x")])],
    "an object that cannot be read": [node(leaf=_Raises())],
    "a missing attribute": [node(leaf=object())],
    "null node": [None, node()],
}

DOCUMENT = """
query Nodes {
  nodes {
    __typename
    id
    later
    leaf { text maybe count flag mood }
    again: leaf { text }
    maybeLeaf { text __typename }
    leaves { text count }
    maybeLeaves { mood }
    tags
  }
}
"""


def schema_serving(nodes: list[Any]) -> strawberry.Schema:
    @strawberry.type
    class Query:
        @strawberry.field
        def nodes(self) -> list[Node | None]:
            return nodes

    return strawberry.Schema(query=Query)


class CountingPlanned(PlannedExecutor):
    fields: ClassVar[list[str]] = []

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: FieldDetailsList,
        path: Path,
        position_context: Any,
    ) -> AwaitableOrValue[Any]:
        CountingPlanned.fields.append(field_details_list[0].node.name.value)
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )


async def run(schema: strawberry.Schema, *, planned: bool) -> ExecutionResult:
    document = parse(DOCUMENT)
    extra: dict[str, Any] = {}
    executor_class: Any = schema.execution_context_class
    if planned:
        operation = document.definitions[0]
        plan = plan_operation(schema._schema, document, operation)  # type: ignore[arg-type]
        assert plan is not None
        executor_class, extra = CountingPlanned, {"plan": plan}
    result = execute(schema._schema, document, executor_class=executor_class, **extra)
    if not isinstance(result, ExecutionResult):
        result = await result
    return result


@pytest.mark.parametrize("nodes", CASES.values(), ids=list(CASES))
async def test_planned_execution_answers_what_graphql_core_answers(nodes: list[Any]) -> None:
    schema = schema_serving(nodes)

    general = await run(schema, planned=False)
    planned = await run(schema, planned=True)

    assert json.dumps(planned.formatted) == json.dumps(general.formatted)


async def test_planned_execution_resolves_only_what_has_a_resolver() -> None:
    CountingPlanned.fields.clear()

    result = await run(schema_serving([node(), node()]), planned=True)

    assert result.errors is None
    # The root field and the resolver of each node; every plain field is read by its plan.
    assert CountingPlanned.fields == ["nodes", "later", "later"]


def test_a_document_with_directives_is_not_planned() -> None:
    schema = schema_serving([])
    document = parse("query Q($on: Boolean!) { nodes { id @include(if: $on) } }")

    assert plan_operation(schema._schema, document, document.definitions[0]) is None  # type: ignore[arg-type]


def test_a_field_with_arguments_or_a_resolver_is_left_to_graphql_core() -> None:
    schema = schema_serving([])
    document = parse("query Q { nodes { id later } }")
    plan = plan_operation(schema._schema, document, document.definitions[0])  # type: ignore[arg-type]

    assert plan is not None
    (node_fields,) = [
        field_set for field_set in plan.field_sets.values() if len(field_set.steps) == 2
    ]
    plain = {step.key: step.read is not None for step in node_fields.steps}
    assert plain == {"id": True, "later": False}
    assert not node_fields.plain
    field = schema._schema.get_type("Node").fields["later"]  # type: ignore[union-attr]
    assert isinstance(field, GraphQLField)
