"""User B, acting on user A's conversation by every query and mutation, learns and changes nothing.

For each operation B's answer is compared with the answer for an id that exists nowhere, and
afterwards A's items are read straight from the table: byte for byte what they were.
"""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.storage import keys
from tests.api.harness import Api, add_messages, create_conversation, new_id

CONVERSATION = """
query($id: ID!) {
  conversation(id: $id) {
    id title messageCount lastMessage { content }
    messages(last: 10) { totalCount edges { node { id content } } }
  }
}
"""
MESSAGES_PAGE = """
query($id: ID!, $before: String) {
  conversation(id: $id) { messages(last: 2, before: $before) { edges { cursor } } }
}
"""

MESSAGE = {"role": "USER", "content": "planted by B"}
MUTATIONS: dict[str, tuple[str, Any]] = {
    "renameConversation": (
        "mutation($i: RenameConversationInput!) { renameConversation(input: $i) "
        "{ conversation { id title } } }",
        lambda cid, _: {"id": cid, "title": "hijacked"},
    ),
    "updateConversation": (
        "mutation($i: UpdateConversationInput!) { updateConversation(input: $i) "
        "{ conversation { id modelId } } }",
        lambda cid, _: {"id": cid, "modelId": "evil-model", "expectedVersion": 1},
    ),
    "addMessage": (
        "mutation($i: AddMessageInput!) { addMessage(input: $i) { message { id } } }",
        lambda cid, _: {"conversationId": cid, **MESSAGE},
    ),
    "addMessage reusing A's message id": (
        "mutation($i: AddMessageInput!) { addMessage(input: $i) { message { id content } } }",
        lambda cid, mid: {"conversationId": cid, "id": mid, **MESSAGE},
    ),
    "addMessages": (
        "mutation($i: AddMessagesInput!) { addMessages(input: $i) { messages { id } } }",
        lambda cid, _: {"conversationId": cid, "messages": [MESSAGE, MESSAGE]},
    ),
    "deleteConversation": (
        "mutation($i: DeleteConversationInput!) { deleteConversation(input: $i) "
        "{ deletedConversationId } }",
        lambda cid, _: {"id": cid},
    ),
}


async def stored_items(api: Api, partition: str) -> list[dict[str, Any]]:
    table = api.services.table
    response = await table.client.query(
        TableName=table.name,
        KeyConditionExpression="PK = :p",
        ExpressionAttributeValues={":p": {"S": partition}},
        ConsistentRead=True,
    )
    return list(response["Items"])


async def snapshot(api: Api, user: str, conversation_id: str) -> list[list[dict[str, Any]]]:
    return [
        await stored_items(api, keys.user_pk(user)),
        await stored_items(api, keys.conversation_partition(conversation_id)),
    ]


async def planted(api: Api, owner: str) -> tuple[str, str, list[list[dict[str, Any]]]]:
    conversation = await create_conversation(api, owner, "A's private chat", modelId="m1")
    messages = await add_messages(api, owner, conversation["id"], ["one", "two", "three"])
    return conversation["id"], messages[0]["id"], await snapshot(api, owner, conversation["id"])


def without_locations(body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "errors": [{**e, "locations": None} for e in body.get("errors", [])]}


async def test_reading_anothers_conversation_matches_reading_a_missing_one(
    api: Api, alice: str, bob: str
) -> None:
    owned, _, before = await planted(api, alice)
    foreign = await api.run(CONVERSATION, {"id": owned}, user=bob)
    absent = await api.run(CONVERSATION, {"id": new_id()}, user=bob)
    assert foreign == absent == {"data": {"conversation": None}}
    listed = await api.data("{ conversations { totalCount edges { node { id } } } }", user=bob)
    assert listed["conversations"] == {"totalCount": 0, "edges": []}
    assert await snapshot(api, alice, owned) == before


async def test_anothers_message_cursor_gets_bad_input_not_their_messages(
    api: Api, alice: str, bob: str
) -> None:
    owned, _, _ = await planted(api, alice)
    page = await api.data(MESSAGES_PAGE, {"id": owned, "before": None}, user=alice)
    cursor = page["conversation"]["messages"]["edges"][0]["cursor"]
    mine = await create_conversation(api, bob, "B's chat")
    error = await api.error(MESSAGES_PAGE, {"id": mine["id"], "before": cursor}, user=bob)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_each_mutation_on_anothers_conversation_matches_a_missing_one(
    api: Api, alice: str, bob: str, name: str
) -> None:
    owned, first_message, before = await planted(api, alice)
    document, make_input = MUTATIONS[name]
    foreign = await api.run(document, {"i": make_input(owned, first_message)}, user=bob)
    absent = await api.run(document, {"i": make_input(new_id(), first_message)}, user=bob)
    assert without_locations(foreign) == without_locations(absent)
    assert foreign["data"] is None
    assert [e["extensions"]["code"] for e in foreign["errors"]] == ["NOT_FOUND"]
    assert await snapshot(api, alice, owned) == before


async def test_creating_with_anothers_id_is_a_conflict_that_changes_nothing(
    api: Api, alice: str, bob: str
) -> None:
    owned, _, before = await planted(api, alice)
    error = await api.error(
        "mutation($i: CreateConversationInput!) { createConversation(input: $i) "
        "{ conversation { id } } }",
        {"i": {"id": owned, "title": "B's copy"}},
        user=bob,
    )
    assert error["extensions"]["code"] == "CONFLICT"
    assert await snapshot(api, alice, owned) == before
    assert await stored_items(api, keys.user_pk(bob)) == []
