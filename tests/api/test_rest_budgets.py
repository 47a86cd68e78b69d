"""DynamoDB requests per REST route: exact counts, in flight together where GraphQL's are,
and never more than the same work costs over GraphQL (measured side by side here)."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from tests.api.harness import Api, new_id
from tests.api.rest_harness import Rest
from tests.counting import RequestCounter

MESSAGE_FIELDS = (
    "id conversationId role content createdAt modelId isError errorMessage status streamSeq"
)
CONVERSATION_FIELDS = (
    f"id title modelId createdAt updatedAt messageCount version lastMessage {{ {MESSAGE_FIELDS} }}"
)
LIST = f"""
{{ conversations(first: 20) {{
    edges {{ cursor node {{ {CONVERSATION_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
}} }}
"""
OPEN = f"""
query($id: ID!) {{ conversation(id: $id) {{
  {CONVERSATION_FIELDS}
  messages(last: 50) {{ edges {{ node {{ {MESSAGE_FIELDS} }} }} pageInfo {{ startCursor }} }}
}} }}
"""
CREATE = f"""
mutation($i: CreateConversationInput!) {{
  createConversation(input: $i) {{ conversation {{ {CONVERSATION_FIELDS} }} }}
}}
"""
UPDATE = f"""
mutation($i: UpdateConversationInput!) {{
  updateConversation(input: $i) {{ conversation {{ {CONVERSATION_FIELDS} }} }}
}}
"""
DELETE = """
mutation($i: DeleteConversationInput!) { deleteConversation(input: $i) { deletedConversationId } }
"""
ADD = f"""
mutation($i: AddMessageInput!) {{ addMessage(input: $i) {{ message {{ {MESSAGE_FIELDS} }} }} }}
"""


async def counted(api: Api, call: Awaitable[Any]) -> RequestCounter:
    with api.counting() as counter:
        await call
    return counter


def no_dearer(rest: RequestCounter, graphql: RequestCounter) -> None:
    assert sorted(rest.operations) == sorted(graphql.operations)
    assert len(rest.waves) <= len(graphql.waves)


async def seeded(rest: Rest, user: str, messages: int) -> str:
    created = await rest.create(user)
    for index in range(messages):
        await rest.add(user, created["id"], f"m{index}")
    conversation_id: str = created["id"]
    return conversation_id


async def test_listing_is_one_query(api: Api, rest: Rest, alice: str) -> None:
    for index in range(22):
        await seeded(rest, alice, 1 if index % 2 else 0)
    over_rest = await counted(api, rest.ok("GET", "/conversations", user=alice))
    over_graphql = await counted(api, api.data(LIST, user=alice))
    assert over_rest.operations == ["Query"]
    no_dearer(over_rest, over_graphql)


async def test_opening_a_conversation_is_one_wave_of_two(api: Api, rest: Rest, alice: str) -> None:
    conversation_id = await seeded(rest, alice, 60)
    over_rest = await counted(api, rest.get(alice, conversation_id, limit=50))
    over_graphql = await counted(api, api.data(OPEN, {"id": conversation_id}, user=alice))
    assert sorted(over_rest.operations) == ["BatchGetItem", "Query"]
    assert len(over_rest.waves) == 1
    no_dearer(over_rest, over_graphql)


async def test_opening_anothers_conversation_costs_what_a_missing_one_does(
    api: Api, rest: Rest, alice: str, bob: str
) -> None:
    owned = await seeded(rest, alice, 3)
    path = f"/conversations/{owned}"
    foreign = await counted(api, rest.error("GET", path, user=bob, status=404))
    absent = await counted(
        api, rest.error("GET", f"/conversations/{new_id()}", user=bob, status=404)
    )
    assert sorted(foreign.operations) == sorted(absent.operations) == ["BatchGetItem", "Query"]
    assert len(foreign.waves) == len(absent.waves) == 1


async def test_creating_is_one_read_and_one_transaction_and_a_retry_only_the_read(
    api: Api, rest: Rest, alice: str
) -> None:
    rest_id, graphql_id = new_id(), new_id()
    over_rest = await counted(api, rest.create(alice, id=rest_id))
    over_graphql = await counted(
        api, api.data(CREATE, {"i": {"title": "t", "id": graphql_id}}, user=alice)
    )
    assert over_rest.operations == ["BatchGetItem", "TransactWriteItems"]
    no_dearer(over_rest, over_graphql)
    retried_rest = await counted(api, rest.create(alice, id=rest_id))
    retried_graphql = await counted(
        api, api.data(CREATE, {"i": {"title": "t", "id": graphql_id}}, user=alice)
    )
    assert retried_rest.operations == ["BatchGetItem"]
    no_dearer(retried_rest, retried_graphql)


async def test_updating_is_one_read_and_one_transaction(api: Api, rest: Rest, alice: str) -> None:
    conversation_id = await seeded(rest, alice, 1)
    over_rest = await counted(
        api,
        rest.ok("PUT", f"/conversations/{conversation_id}", user=alice, json={"title": "r"}),
    )
    over_graphql = await counted(
        api, api.data(UPDATE, {"i": {"id": conversation_id, "title": "g"}}, user=alice)
    )
    assert over_rest.operations == ["BatchGetItem", "TransactWriteItems"]
    no_dearer(over_rest, over_graphql)


async def test_deleting_costs_what_graphqls_delete_does(api: Api, rest: Rest, alice: str) -> None:
    for_rest, for_graphql = await seeded(rest, alice, 3), await seeded(rest, alice, 3)
    over_rest = await counted(
        api, rest.ok("DELETE", f"/conversations/{for_rest}", user=alice, status=204)
    )
    over_graphql = await counted(api, api.data(DELETE, {"i": {"id": for_graphql}}, user=alice))
    assert over_rest.operations == [
        "BatchGetItem",
        "TransactWriteItems",
        "Query",
        "BatchWriteItem",
        "DeleteItem",
    ]
    no_dearer(over_rest, over_graphql)
    again = await counted(
        api, rest.error("DELETE", f"/conversations/{for_rest}", user=alice, status=404)
    )
    assert again.operations == ["BatchGetItem"]


async def test_adding_a_message_is_one_read_and_one_transaction(
    api: Api, rest: Rest, alice: str
) -> None:
    conversation_id = await seeded(rest, alice, 0)
    message = {"id": new_id(), "role": "user", "content": "hi"}
    path = f"/conversations/{conversation_id}/messages"
    over_rest = await counted(api, rest.ok("POST", path, user=alice, status=201, json=message))
    graphql_message = {"conversationId": conversation_id, "role": "USER", "content": "hi"}
    over_graphql = await counted(
        api, api.data(ADD, {"i": {**graphql_message, "id": new_id()}}, user=alice)
    )
    assert over_rest.operations == ["BatchGetItem", "TransactWriteItems"]
    no_dearer(over_rest, over_graphql)


async def test_a_retried_add_costs_what_graphqls_retry_does(
    api: Api, rest: Rest, alice: str
) -> None:
    conversation_id = await seeded(rest, alice, 0)
    message = {"id": new_id(), "role": "user", "content": "hi"}
    path = f"/conversations/{conversation_id}/messages"
    await rest.ok("POST", path, user=alice, status=201, json=message)
    retried_rest = await counted(api, rest.ok("POST", path, user=alice, status=201, json=message))
    graphql_message = {"conversationId": conversation_id, "role": "USER", "content": "again"}
    graphql_message["id"] = new_id()
    await api.data(ADD, {"i": graphql_message}, user=alice)
    retried_graphql = await counted(api, api.data(ADD, {"i": graphql_message}, user=alice))
    # The retry finds the message's id taken and reads the stored message back: no write.
    assert retried_rest.operations == ["BatchGetItem", "BatchGetItem"]
    no_dearer(retried_rest, retried_graphql)
