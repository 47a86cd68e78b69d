"""What a GraphQL operation costs in its user's budgets, read from the prepared operation alone:
no schema is involved, so appendMessage draws on the appends before and after the schema has
it."""

from __future__ import annotations

import collections

from graphql import OperationDefinitionNode, parse
from graphql.utilities import get_operation_ast

from graphql_api.domain.ratelimit import Budget
from graphql_api.gql.budgets import charge_of
from graphql_api.gql.executor import Prepared


def prepared(document: str, operation_name: str | None = None) -> Prepared:
    parsed = parse(document)
    operation = get_operation_ast(parsed, operation_name)
    assert isinstance(operation, OperationDefinitionNode)
    return Prepared(document=parsed, operation=operation)


def charge(document: str, operation_name: str | None = None) -> dict[Budget, int]:
    return dict(charge_of(prepared(document, operation_name)))


APPEND = """
mutation Append($i: AppendMessageInput!) { appendMessage(input: $i) { messageId seq length } }
"""


def test_an_append_draws_on_the_appends() -> None:
    assert charge(APPEND) == {Budget.APPEND: 1}


def test_a_query_or_a_subscription_costs_one_read_whatever_it_selects() -> None:
    assert charge("{ a: conversations { totalCount } b: conversations { totalCount } }") == {
        Budget.READ: 1
    }
    assert charge("subscription { changes { version } }") == {Budget.READ: 1}


def test_a_mutation_costs_a_token_per_root_field_from_each_fields_budget() -> None:
    document = """
    mutation Mixed {
      one: createConversation(input: {title: "a"}) { conversation { id } }
      two: createConversation(input: {title: "b"}) { conversation { id } }
      appendMessage(input: {conversationId: "c", messageId: "m", seq: 1, delta: "x"}) { seq }
      __typename
    }
    """
    assert charge(document) == {Budget.WRITE: 2, Budget.APPEND: 1}


def test_root_fields_are_counted_through_fragments_and_only_in_the_operation_run() -> None:
    document = """
    query Read { conversations { totalCount } }
    mutation Write {
      ...Appends
      ... on Mutation { renameConversation(input: {id: "c", title: "t"}) { conversation { id } } }
    }
    fragment Appends on Mutation {
      first: appendMessage(input: {conversationId: "c", messageId: "m", seq: 1, delta: "x"}) {
        seq
      }
      second: appendMessage(input: {conversationId: "c", messageId: "m", seq: 2, delta: "y"}) {
        seq
      }
    }
    """
    assert charge(document, "Write") == {Budget.APPEND: 2, Budget.WRITE: 1}
    assert charge(document, "Read") == {Budget.READ: 1}


def test_a_mutation_that_touches_nothing_still_costs_a_token() -> None:
    assert charge_of(prepared("mutation { __typename }")) == collections.Counter({Budget.READ: 1})


def test_a_fragment_cycle_costs_what_it_names_once() -> None:
    # Validation refuses the cycle before any check; the count must still end.
    document = """
    mutation { ...A }
    fragment A on Mutation { deleteConversation(input: {id: "c"}) { deletedConversationId } ...B }
    fragment B on Mutation { ...A }
    """
    assert charge(document) == {Budget.WRITE: 1}
