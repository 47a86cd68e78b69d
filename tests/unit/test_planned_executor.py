"""Planned execution gives graphql-core's answer, also for every value it does not expect.

A small schema of plain Strawberry fields, filled with values each of which breaks one rule
(null in a non-null field, a value a scalar refuses, an Int out of range, a string where a list
belongs, an exception as a value...). Each runs through graphql-core's executor and through
the planned one: data and errors (messages, paths, locations) must be the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
from typing import Any, ClassVar

import pytest
import strawberry
from graphql import ExecutionResult, execute, parse
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


async def test_planned_execution_calls_resolvers_itself() -> None:
    CountingPlanned.fields.clear()

    result = await run(schema_serving([node(), node()]), planned=True)

    assert result.errors is None
    assert result.data is not None
    assert [item["later"] for item in result.data["nodes"]] == ["later n1", "later n1"]
    # The root field and each node's resolver are called by the plan, every plain field read
    # by it: none went through graphql-core's execute_field.
    assert CountingPlanned.fields == []


def test_a_document_with_directives_is_not_planned() -> None:
    schema = schema_serving([])
    document = parse("query Q($on: Boolean!) { nodes { id @include(if: $on) } }")

    assert plan_operation(schema._schema, document, document.definitions[0]) is None  # type: ignore[arg-type]


def test_a_field_with_a_resolver_is_called_not_read() -> None:
    schema = schema_serving([])
    document = parse("query Q { nodes { id later } }")
    plan = plan_operation(schema._schema, document, document.definitions[0])  # type: ignore[arg-type]

    assert plan is not None
    (node_fields,) = [
        field_set for field_set in plan.field_sets.values() if len(field_set.steps) == 2
    ]
    kinds = {
        step.key: "read" if step.read is not None else "resolved" if step.resolver else "general"
        for step in node_fields.steps
    }
    assert kinds == {"id": "read", "later": "resolved"}
    assert not node_fields.plain


# --- resolvers called by the plan ----------------------------------------------------------


@strawberry.enum
class Size(enum.Enum):
    SMALL = "small"
    LARGE = "large"


@strawberry.input
class Inner:
    tags: list[str]
    flag: bool | None = None


@strawberry.input
class Filter:
    word: str
    sizes: list[Size] | None = None
    limit: int = 3
    inner: Inner | None = None
    note: str | None = strawberry.UNSET


def described(value: Any) -> str:
    """A value as the resolver received it: classes, enums and UNSET included."""
    if value is strawberry.UNSET:
        return "UNSET"
    if isinstance(value, list):
        return "[" + ", ".join(described(item) for item in value) + "]"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = ", ".join(
            f"{field.name}={described(getattr(value, field.name))}"
            for field in dataclasses.fields(value)
        )
        return f"{type(value).__name__}({fields})"
    return repr(value)


def selection_names(selections: list[Any]) -> str:
    names = []
    for selection in selections:
        given = getattr(selection, "arguments", None)
        arguments = f"({described(given)})" if given else ""
        below = selection_names(selection.selections) if selection.selections else ""
        names.append(f"{getattr(selection, 'name', '...')}{arguments}{below and '{' + below + '}'}")
    return " ".join(names)


@strawberry.interface
class Named:
    name: str


@strawberry.type
class Pet(Named):
    legs: int


@strawberry.type
class Item:
    id: strawberry.ID

    @strawberry.field
    def echo(self, text: str = "default", times: int | None = None) -> str:
        return f"{self.id}:{described(text)}:{described(times)}"

    @strawberry.field
    async def children(self, first: int = 2) -> list[Item]:
        await asyncio.sleep(0)
        return [Item(id=strawberry.ID(f"{self.id}.{n}")) for n in range(first)]

    @strawberry.field
    def fails(self) -> str | None:
        raise ValueError(f"boom {self.id}")

    @strawberry.field
    async def strict(self) -> str:
        raise ValueError(f"strict {self.id}")


@strawberry.type
class Box:
    names: str

    @strawberry.field
    def items(self, size: Size = Size.SMALL) -> list[Item]:
        return [Item(id=strawberry.ID(f"{size.value}{n}")) for n in range(2)]


@strawberry.type
class ResolverQuery:
    @strawberry.field
    def describe(
        self,
        filter: Filter | None = None,
        ids: list[strawberry.ID] | None = None,
        size: Size = Size.SMALL,
        count: int = 1,
    ) -> str:
        return ", ".join(described(value) for value in (filter, ids, size, count))

    @strawberry.field
    async def items(self, info: strawberry.Info, last: int = 2) -> list[Item]:
        assert info.field_name == "items"
        return [Item(id=strawberry.ID(f"i{n}")) for n in range(last)]

    @strawberry.field
    def selection(self, info: strawberry.Info, depth: int = 1) -> Box:
        return Box(names=f"{depth}: {selection_names(info.selected_fields)}")

    @strawberry.field
    def pet(self, wrong: bool = False) -> Pet:
        return Item(id=strawberry.ID("not a pet")) if wrong else Pet(name="Rex", legs=4)  # type: ignore[return-value]


PUSHED: list[int] = []


@strawberry.type
class ResolverMutation:
    @strawberry.mutation
    async def push(self, value: int) -> int:
        # The first waits longest: run together, the second would land first.
        await asyncio.sleep(0.01 if value == 1 else 0)
        PUSHED.append(value)
        return value


RESOLVER_SCHEMA = strawberry.Schema(query=ResolverQuery, mutation=ResolverMutation)

RESOLVER_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "defaults": ("{ describe }", {}),
    "literals": ('{ describe(count: 5, size: LARGE, ids: ["a", "b"]) }', {}),
    "a list of one for a list": ('{ describe(ids: "a") }', {}),
    "input object from a variable": (
        "query($f: Filter, $n: Int) { describe(filter: $f, count: $n) }",
        {"f": {"word": "w", "sizes": ["LARGE"], "inner": {"tags": ["t"]}}, "n": 2},
    ),
    "variables left out": ("query($f: Filter, $n: Int) { describe(filter: $f, count: $n) }", {}),
    "null for a non-null argument": ("query($n: Int) { describe(count: $n) }", {"n": None}),
    "null for a nullable argument": ("query($f: Filter) { describe(filter: $f) }", {"f": None}),
    "an input literal around variables": (
        "query($w: String!, $t: String!) "
        '{ describe(filter: {word: $w, limit: 9, inner: {tags: ["x", $t], flag: true}}) }',
        {"w": "word", "t": "tag"},
    ),
    "an input literal around a missing variable": (
        "query($w: String!, $t: String) { describe(filter: {word: $w, inner: {tags: [$t]}}) }",
        {"w": "word"},
    ),
    "a required variable missing": ("query($s: Size!) { describe(size: $s) }", {}),
    "a list variable, one value": ("query($ids: [ID!]) { describe(ids: $ids) }", {"ids": "x"}),
    "resolvers under lists": (
        '{ items(last: 3) { id echo(text: "x") children { id echo children(first: 1) { id } } } }',
        {},
    ),
    "field errors, nullable and not": (
        "{ items { id fails } more: items(last: 1) { strict } }",
        {},
    ),
    "selection without variables": (
        "{ selection { names items(size: LARGE) { id ...E } } } fragment E on Item { echo }",
        {},
    ),
    "selection with variables": (
        "query($s: Size) { selection { names items(size: $s) { id } } }",
        {"s": "LARGE"},
    ),
    "selection with variables in its own arguments only": (
        "query($d: Int) { selection(depth: $d) { names items(size: LARGE) { id } } }",
        {"d": 2},
    ),
    "a type with an interface": ("{ pet { name legs __typename } }", {}),
    "the wrong object for a type with an interface": ("{ pet(wrong: true) { name } }", {}),
    "mutations one after the other": (
        "mutation { a: push(value: 1) b: push(value: 2) c: push(value: 3) }",
        {},
    ),
}


async def run_document(text: str, variables: dict[str, Any], *, planned: bool) -> ExecutionResult:
    schema = RESOLVER_SCHEMA
    document = parse(text)
    extra: dict[str, Any] = {}
    executor_class: Any = schema.execution_context_class
    if planned:
        operation = document.definitions[0]
        plan = plan_operation(schema._schema, document, operation)  # type: ignore[arg-type]
        assert plan is not None
        executor_class, extra = CountingPlanned, {"plan": plan}
    result = execute(
        schema._schema,
        document,
        variable_values=variables,
        executor_class=executor_class,
        **extra,
    )
    if not isinstance(result, ExecutionResult):
        result = await result
    return result


@pytest.mark.parametrize(("text", "variables"), RESOLVER_CASES.values(), ids=list(RESOLVER_CASES))
async def test_resolvers_called_by_the_plan_answer_what_graphql_core_answers(
    text: str, variables: dict[str, Any]
) -> None:
    PUSHED.clear()
    general = await run_document(text, variables, planned=False)
    pushed = list(PUSHED)
    PUSHED.clear()

    planned = await run_document(text, variables, planned=True)

    assert json.dumps(planned.formatted) == json.dumps(general.formatted)
    assert pushed == PUSHED


async def test_the_plan_converts_arguments_without_graphql_core() -> None:
    CountingPlanned.fields.clear()
    text, variables = RESOLVER_CASES["an input literal around variables"]

    result = await run_document(text, variables, planned=True)

    assert result.data == {
        "describe": "Filter(word='word', sizes=None, limit=9, inner=Inner(tags=['x', 'tag'], "
        "flag=True), note=UNSET), None, Size.SMALL, 1"
    }
    assert CountingPlanned.fields == []


async def test_arguments_the_plan_cannot_coerce_go_to_graphql_core() -> None:
    CountingPlanned.fields.clear()
    text, variables = RESOLVER_CASES["null for a non-null argument"]

    result = await run_document(text, variables, planned=True)

    assert result.errors
    assert CountingPlanned.fields == ["describe"]


async def test_a_selection_without_variables_is_converted_once_for_every_request() -> None:
    text, _ = RESOLVER_CASES["selection without variables"]
    document = parse(text)
    plan = plan_operation(RESOLVER_SCHEMA._schema, document, document.definitions[0])  # type: ignore[arg-type]
    assert plan is not None

    (selection,) = plan.root.steps
    assert selection.resolver is not None
    assert selection.resolver.selected is not None
    assert selection_names(selection.resolver.selected) == (
        "selection{names items({'size': 'LARGE'}){id E{echo}}}"
    )


async def test_a_selection_with_variables_in_its_own_arguments_only_converts_them_per_request() -> (
    None
):
    text, variables = RESOLVER_CASES["selection with variables in its own arguments only"]
    document = parse(text)
    plan = plan_operation(RESOLVER_SCHEMA._schema, document, document.definitions[0])  # type: ignore[arg-type]
    assert plan is not None
    (selection,) = plan.root.steps
    assert selection.resolver is not None
    assert selection.resolver.selected is None
    assert selection.resolver.selected_below is not None

    result = await run_document(text, variables, planned=True)

    assert result.data == {
        "selection": {
            "names": "2: selection({'depth': 2}){names items({'size': 'LARGE'}){id}}",
            "items": [{"id": "large0"}, {"id": "large1"}],
        }
    }
