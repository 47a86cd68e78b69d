"""DynamoDB round trips per request: exact counts and concurrent waves, so N+1s get caught."""

from __future__ import annotations

import pytest_asyncio

from tests.api.harness import Api, add_messages, create_conversation, new_id

HOME = """
{
  conversations(first: 20) {
    edges { node { id title updatedAt messageCount lastMessage { role content } } }
  }
}
"""

OPEN = """
query Open($id: ID!) {
  conversation(id: $id) {
    title
    messages(last: 50) {
      edges { cursor node { id role content createdAt } }
      pageInfo { hasPreviousPage startCursor }
      totalCount
    }
  }
}
"""

EVERY_PREVIEW = """
{
  conversations(first: 20) {
    edges { node { id messages(last: 3) { edges { node { id content } } } } }
  }
}
"""


@pytest_asyncio.fixture(scope="module")
async def home_user(api: Api) -> tuple[str, list[str]]:
    """A user with 22 conversations of a few messages each."""
    user = f"user-{new_id()}"
    ids = []
    for index in range(22):
        conversation = await create_conversation(api, user, f"c{index}")
        await add_messages(api, user, conversation["id"], [f"q{index}", f"a{index}"])
        ids.append(conversation["id"])
    return user, ids


async def test_the_home_screen_is_one_request(api: Api, home_user: tuple[str, list[str]]) -> None:
    user, _ = home_user
    with api.counting() as counter:
        data = await api.data(HOME, user=user)
    assert counter.operations == ["Query"]
    assert len(data["conversations"]["edges"]) == 20
    assert data["conversations"]["edges"][0]["node"]["lastMessage"] == {
        "role": "ASSISTANT",
        "content": "a21",
    }


async def test_a_conversation_and_its_newest_messages_are_one_concurrent_wave(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], [f"m{index}" for index in range(60)])
    with api.counting() as counter:
        data = await api.data(OPEN, {"id": conversation["id"]}, user=alice)
    assert sorted(counter.operations) == ["BatchGetItem", "Query"]
    assert len(counter.waves) == 1
    messages = data["conversation"]["messages"]
    assert len(messages["edges"]) == 50
    assert messages["totalCount"] == 60


async def test_the_prefetch_follows_variables_fragments_and_aliases(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], [f"m{index}" for index in range(8)])
    query = """
    query Open($id: ID!, $n: Int!) {
      conversation(id: $id) {
        ...Newest
        ... on Conversation { older: messages(last: 2, before: null) { edges { cursor } } }
      }
    }
    fragment Newest on Conversation { messages(last: $n) { edges { node { content } } } }
    """
    with api.counting() as counter:
        data = await api.data(query, {"id": conversation["id"], "n": 3}, user=alice)
    assert sorted(counter.operations) == ["BatchGetItem", "Query", "Query"]
    assert len(counter.waves) == 1
    assert [edge["node"]["content"] for edge in data["conversation"]["messages"]["edges"]] == [
        "m5",
        "m6",
        "m7",
    ]
    assert len(data["conversation"]["older"]["edges"]) == 2


async def test_a_foreign_conversation_with_messages_asked_is_null_in_one_wave(
    api: Api, alice: str, bob: str
) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["secret"])
    with api.counting() as counter:
        data = await api.data(OPEN, {"id": conversation["id"]}, user=bob)
    assert data == {"conversation": None}
    assert len(counter.waves) == 1


async def test_previews_of_twenty_conversations_are_one_list_then_one_concurrent_wave(
    api: Api, home_user: tuple[str, list[str]]
) -> None:
    user, _ = home_user
    with api.counting() as counter:
        data = await api.data(EVERY_PREVIEW, user=user)
    assert counter.count == 21
    assert counter.waves == [["Query"], ["Query"] * 20]
    for edge in data["conversations"]["edges"]:
        assert len(edge["node"]["messages"]["edges"]) == 2


async def test_a_conversation_named_several_times_is_read_once(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    query = """
    query Twice($id: ID!) {
      a: conversation(id: $id) { title }
      b: conversation(id: $id) { id version }
      c: conversation(id: $id) { messageCount }
    }
    """
    with api.counting() as counter:
        data = await api.data(query, {"id": conversation["id"]}, user=alice)
    assert counter.operations == ["BatchGetItem"]
    assert data["b"]["id"] == conversation["id"]


async def test_conversations_named_together_are_one_batch_get(api: Api, alice: str) -> None:
    ids = [(await create_conversation(api, alice, f"c{index}"))["id"] for index in range(3)]
    query = """
    query Three($a: ID!, $b: ID!, $c: ID!, $missing: ID!) {
      a: conversation(id: $a) { id } b: conversation(id: $b) { id }
      c: conversation(id: $c) { id } d: conversation(id: $missing) { id }
    }
    """
    variables = {"a": ids[0], "b": ids[1], "c": ids[2], "missing": new_id()}
    with api.counting() as counter:
        data = await api.data(query, variables, user=alice)
    assert counter.operations == ["BatchGetItem"]
    assert [data[key] and data[key]["id"] for key in "abcd"] == [*ids, None]


async def test_message_total_count_costs_no_extra_request(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a", "b", "c"])
    query = "query($id: ID!) { conversation(id: $id) { messages(last: 1) { totalCount } } }"
    with api.counting() as counter:
        data = await api.data(query, {"id": conversation["id"]}, user=alice)
    assert data["conversation"]["messages"]["totalCount"] == 3
    assert sorted(counter.operations) == ["BatchGetItem", "Query"]


async def test_each_mutation_but_delete_is_one_read_then_one_write(api: Api, alice: str) -> None:
    # The read is what the change log needs: the user's version, and what the write changes.
    with api.counting() as counter:
        conversation = await create_conversation(api, alice)
    assert counter.operations == ["BatchGetItem", "TransactWriteItems"]
    cid = conversation["id"]

    mutations = [
        (
            'mutation($id: ID!) { renameConversation(input: {id: $id, title: "r"}) '
            "{ conversation { id title version updatedAt } } }",
            "TransactWriteItems",
        ),
        (
            'mutation($id: ID!) { updateConversation(input: {id: $id, modelId: "m"}) '
            "{ conversation { id modelId version } } }",
            "TransactWriteItems",
        ),
        (
            "mutation($id: ID!) { addMessage(input: {conversationId: $id, role: USER, "
            'content: "hi"}) { message { id createdAt } } }',
            "TransactWriteItems",
        ),
        (
            "mutation($id: ID!) { addMessages(input: {conversationId: $id, messages: ["
            '{role: USER, content: "q"}, {role: ASSISTANT, content: "a"}]}) '
            "{ messages { id } } }",
            "TransactWriteItems",
        ),
    ]
    for mutation, operation in mutations:
        with api.counting() as counter:
            await api.data(mutation, {"id": cid}, user=alice)
        assert counter.operations == ["BatchGetItem", operation], mutation


async def test_the_conversation_after_an_add_costs_no_read(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    mutation = """
    mutation($id: ID!) {
      addMessage(input: {conversationId: $id, role: USER, content: "hi"}) {
        message { id }
        conversation { messageCount updatedAt }
      }
    }
    """
    with api.counting() as counter:
        data = await api.data(mutation, {"id": conversation["id"]}, user=alice)
    # The add knows the conversation it leaves: asking for it costs no read.
    assert counter.operations == ["BatchGetItem", "TransactWriteItems"]
    assert data["addMessage"]["conversation"]["messageCount"] == 1


async def test_the_home_screen_with_its_total_is_one_wave(
    api: Api, home_user: tuple[str, list[str]]
) -> None:
    user, ids = home_user
    query = "{ conversations(first: 20) { totalCount edges { node { id title } } } }"
    with api.counting() as counter:
        data = await api.data(query, user=user)
    assert sorted(counter.operations) == ["GetItem", "Query"]
    assert len(counter.waves) == 1
    assert data["conversations"]["totalCount"] == len(ids)
