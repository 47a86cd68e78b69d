"""Document limits reject hostile shapes with one error, before validation or any resolver.

Through GraphQLRunner, the one place a document is limited, on a small schema of its own.
"""

from __future__ import annotations

import dataclasses

import strawberry
from graphql import ExecutionResult, get_introspection_query
from strawberry.schema.config import StrawberryConfig

from graphql_api.gql.executor import GraphQLRunner, Phase, RequestError
from graphql_api.gql.limits import DocumentLimits

LIMITS = DocumentLimits(max_depth=4, max_aliases=3, max_tokens=1000, max_bytes=8192)


@strawberry.type
class Node:
    @strawberry.field
    def child(self) -> Node:
        return Node()

    @strawberry.field
    def value(self) -> int:
        return 1


@strawberry.type
class Query:
    @strawberry.field
    def node(self) -> Node:
        return Node()


class Runner:
    """A runner with `limits` on this module's schema, answering as a response would."""

    def __init__(self, limits: DocumentLimits = LIMITS) -> None:
        schema = strawberry.Schema(Query, config=StrawberryConfig(disable_field_suggestions=True))
        self._runner = GraphQLRunner(schema, limits)

    async def execute(self, query: str) -> ExecutionResult:
        try:
            prepared = self._runner.prepare(query, None)
            return await self._runner.execute(prepared, variables=None, context=None)
        except RequestError as refused:
            return ExecutionResult(data=None, errors=refused.errors)

    def refusal(self, query: str) -> RequestError:
        try:
            self._runner.prepare(query, None)
        except RequestError as refused:
            return refused
        raise AssertionError(f"not refused: {query}")


async def single_error(query: str) -> str:
    refused = Runner().refusal(query)
    assert refused.phase is Phase.LIMITS
    assert len(refused.errors) == 1, [e.message for e in refused.errors]
    return refused.errors[0].message


async def test_a_document_within_every_limit_runs() -> None:
    result = await Runner().execute("{ a: node { child { value } } b: node { value } }")
    assert result.errors is None
    assert result.data == {"a": {"child": {"value": 1}}, "b": {"value": 1}}


async def test_depth_beyond_the_limit_is_refused() -> None:
    message = await single_error("{ node { child { child { child { child { value } } } } } }")
    assert "nested 5 levels deep" in message


async def test_depth_counts_through_fragments() -> None:
    query = """
      query { node { ...deep } }
      fragment deep on Node { child { child { child { child { value } } } } }
    """
    assert "levels deep" in await single_error(query)


async def test_alias_overloading_gets_one_error() -> None:
    aliases = " ".join(f"a{i}: node {{ value }}" for i in range(101))
    assert "101 aliases" in await single_error(f"{{ {aliases} }}")


async def test_field_duplication_is_refused() -> None:
    message = await single_error("{ " + "__typename " * 50 + "}")
    assert "repeats one field 50 times" in message


async def test_directive_overloading_gets_one_error_not_one_per_directive() -> None:
    assert "directives" in await single_error("query { __typename" + " @aa" * 30 + " }")


async def test_token_flood_is_refused_while_parsing() -> None:
    message = await single_error("{ node { " + "value " * 1100 + "} }")
    assert "tokens" in message


async def test_oversized_document_is_refused_before_parsing() -> None:
    message = await single_error("{ node { value } }" + " " * 9000)
    assert "larger than the limit of 8192 bytes" in message


async def test_a_fragment_cycle_does_not_hang_the_walk() -> None:
    query = """
      query { node { ...a } }
      fragment a on Node { child { ...b } }
      fragment b on Node { child { ...a } }
    """
    result = await Runner().execute(query)
    assert result.errors


async def test_introspection_is_one_error_when_disabled() -> None:
    message = await single_error('{ __schema { types { name } } a: __type(name: "Node") { name } }')
    assert message == "introspection is disabled"


async def test_typename_is_not_introspection() -> None:
    result = await Runner().execute("{ __typename node { __typename } }")
    assert result.errors is None


async def test_graphiqls_introspection_query_runs_where_introspection_is_allowed() -> None:
    # GraphiQL's docs, explorer and completion all hang on this one query.
    runner = Runner(dataclasses.replace(LIMITS, allow_introspection=True))
    result = await runner.execute(get_introspection_query(input_value_deprecation=True))
    assert result.errors is None
    assert result.data is not None
    assert result.data["__schema"]["queryType"]["name"] == "Query"


async def test_depth_outside_introspection_still_counts_beside_it() -> None:
    runner = Runner(dataclasses.replace(LIMITS, allow_introspection=True))
    result = await runner.execute(
        "{ __schema { queryType { name } } node { child { child { child { child { value } } } } } }"
    )
    assert result.errors is not None
    assert "nested 5 levels deep" in result.errors[0].message


async def test_introspection_lists_nested_four_deep_are_refused_where_it_is_allowed() -> None:
    # Each nested list multiplies: every type's fields' types' fields' ... is the classic
    # introspection DoS, and it is shallow enough to pass any depth limit meant for GraphiQL.
    runner = Runner(dataclasses.replace(LIMITS, allow_introspection=True))
    three = "{ __schema { types { fields { args { name } } } } }"
    four = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    assert (await runner.execute(three)).errors is None
    result = await runner.execute(four)
    assert result.errors is not None
    assert result.errors[0].message == "introspection nests 4 lists; the limit is 3"


async def test_a_cached_document_still_meets_the_limits_of_its_schema() -> None:
    query = "{ a: node { value } b: node { value } c: node { value } d: node { value } }"
    lenient = Runner(dataclasses.replace(LIMITS, max_aliases=10))
    strict = Runner(LIMITS)
    for _ in range(2):
        assert (await lenient.execute(query)).errors is None
        result = await strict.execute(query)
        assert result.errors is not None
        assert "4 aliases" in result.errors[0].message


async def test_validation_errors_are_served_from_the_cache_unchanged() -> None:
    runner = Runner(LIMITS)
    first = await runner.execute("{ node { missing } }")
    again = await runner.execute("{ node { missing } }")
    assert first.errors is not None
    assert again.errors is not None
    assert [e.message for e in first.errors] == [e.message for e in again.errors]


async def test_without_a_cache_the_limits_still_apply() -> None:
    runner = Runner(dataclasses.replace(LIMITS, cache_size=0))
    result = await runner.execute(
        "{ " + " ".join(f"a{i}: node {{ value }}" for i in range(5)) + " }"
    )
    assert result.errors is not None
    assert (await runner.execute("{ node { value } }")).data == {"node": {"value": 1}}
