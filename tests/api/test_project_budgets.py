"""DynamoDB requests of every project operation, counted exactly, with their waves: the
projects list, a project's conversations and those in none are one Query a page with their
counts beside it; node/nodes one BatchGetItem; each write one read and one transaction; a
deleteProject call a bounded number."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest_asyncio

from graphql_api.gql.schema import SDL_PATH
from graphql_api.storage.projects import DELETE_BATCH
from tests.api.harness import Api, add_messages, create_conversation, new_id, new_user
from tests.api.test_projects import (
    CREATE_PROJECT,
    DELETE_PROJECT,
    MOVE,
    NODES,
    UPDATE_PROJECT,
    create_project,
)

PROJECTS_PAGE = """
{ projects(first: 20) { totalCount edges { cursor node { id name conversationCount } } } }
"""
PROJECT_PAGE = """
query($id: ID!) {
  conversations(first: 20, filter: {projectId: $id}) {
    totalCount edges { node { id title lastMessage { content } } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
PROJECT_WITH_PAGE = """
query($id: ID!) {
  project(id: $id) {
    name conversationCount
    conversations(first: 20) { totalCount edges { node { id title } } }
  }
}
"""
NO_PROJECT_PAGE = """
query($after: String) {
  conversations(first: 20, after: $after, filter: {inProject: false}) {
    totalCount edges { node { id title } } pageInfo { hasNextPage endCursor }
  }
}
"""
HOME_WITH_PROJECTS = """
{ conversations(first: 30) { edges { node { id project { id name } } } } }
"""


@pytest_asyncio.fixture(scope="module")
async def grouped_user(api: Api) -> tuple[str, list[str], list[str]]:
    """A user with 3 projects holding 24 conversations, and 24 conversations in none."""
    user = new_user()
    projects = [(await create_project(api, user, f"p{index}"))["id"] for index in range(3)]
    conversations = []
    for index in range(48):
        project_id = projects[index % 3] if index % 2 else None
        created = await create_conversation(api, user, f"c{index}", projectId=project_id)
        conversations.append(created["id"])
    return user, projects, conversations


async def test_the_projects_page_is_one_query_with_its_count_beside_it(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, _, _ = grouped_user
    with api.counting() as counter:
        data = await api.data(PROJECTS_PAGE, user=user)

    assert sorted(counter.operations) == ["GetItem", "Query"]
    assert len(counter.waves) == 1
    assert data["projects"]["totalCount"] == 3
    assert {edge["node"]["conversationCount"] for edge in data["projects"]["edges"]} == {8}


async def test_a_projects_conversations_are_one_query_a_page_with_the_count_beside_it(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, projects, _ = grouped_user
    for query in (PROJECT_PAGE, PROJECT_WITH_PAGE):
        with api.counting() as counter:
            data = await api.data(query, {"id": projects[0]}, user=user)

        assert sorted(counter.operations) == ["BatchGetItem", "Query"], query
        assert len(counter.waves) == 1, query
        connection = data.get("conversations") or data["project"]["conversations"]
        assert connection["totalCount"] == 8
        assert len(connection["edges"]) == 8


async def test_conversations_in_no_project_are_one_query_a_page(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, _, _ = grouped_user
    with api.counting() as counter:
        first = await api.data(NO_PROJECT_PAGE, user=user)
    cursor = first["conversations"]["pageInfo"]["endCursor"]
    with api.counting() as second_counter:
        second = await api.data(NO_PROJECT_PAGE, {"after": cursor}, user=user)

    for counted in (counter, second_counter):
        assert sorted(counted.operations) == ["GetItem", "Query"]
        assert len(counted.waves) == 1
    assert first["conversations"]["totalCount"] == 24
    assert len(first["conversations"]["edges"]) == 20
    assert len(second["conversations"]["edges"]) == 4
    assert not second["conversations"]["pageInfo"]["hasNextPage"]


async def test_the_projects_of_a_page_of_conversations_are_one_batch(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, projects, _ = grouped_user
    with api.counting() as counter:
        data = await api.data(HOME_WITH_PROJECTS, user=user)

    assert counter.waves == [["Query"], ["BatchGetItem"]]
    named = {
        edge["node"]["project"]["id"]
        for edge in data["conversations"]["edges"]
        if edge["node"]["project"]
    }
    assert named == set(projects)


async def test_a_hundred_nodes_of_both_types_are_one_batch_get(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, projects, conversations = grouped_user
    ids = [*projects, *conversations, *(new_id() for _ in range(100 - 3 - 48))]
    with api.counting() as counter:
        data = await api.data(NODES, {"ids": ids}, user=user)

    assert counter.operations == ["BatchGetItem"]
    kinds = Counter(node and node["__typename"] for node in data["nodes"])
    assert kinds == {"Project": 3, "Conversation": 48, None: 49}
    query = "query($id: ID!) { node(id: $id) { id ... on Project { name } } }"
    with api.counting() as counter:
        one = await api.data(query, {"id": projects[1]}, user=user)
    assert counter.operations == ["BatchGetItem"]
    assert one["node"] == {"id": projects[1], "name": "p1"}


async def test_each_project_write_is_one_read_then_one_transaction(api: Api, alice: str) -> None:
    project_id = new_id()
    writes: list[tuple[str, dict[str, Any]]] = [
        (CREATE_PROJECT, {"input": {"id": project_id, "name": "p"}}),
        (UPDATE_PROJECT, {"input": {"id": project_id, "instructions": "i", "expectedVersion": 1}}),
    ]
    for mutation, variables in writes:
        with api.counting() as counter:
            await api.data(mutation, variables, user=alice)
        assert counter.operations == ["BatchGetItem", "TransactWriteItems"], mutation
    other = await create_project(api, alice)
    with api.counting() as counter:
        conversation = await create_conversation(api, alice, projectId=project_id)
    assert counter.operations == ["BatchGetItem", "TransactWriteItems"]

    for destination in (other["id"], None, project_id):
        variables = {"input": {"conversationId": conversation["id"], "projectId": destination}}
        with api.counting() as counter:
            moved = await api.data(MOVE, variables, user=alice)
        # The project it lands in was read by the move; the one it left is read if asked.
        expected = ["BatchGetItem", "TransactWriteItems"]
        if moved["moveConversation"]["previousProject"] is not None:
            expected.append("BatchGetItem")
        assert counter.operations == expected, destination
        assert moved["moveConversation"]["conversation"]["projectId"] == destination


async def test_a_delete_project_call_handles_a_bounded_number_of_conversations(
    api: Api, alice: str
) -> None:
    project = await create_project(api, alice)
    total = DELETE_BATCH + 5
    for index in range(total):
        await create_conversation(api, alice, f"c{index}", projectId=project["id"])

    variables = {"input": {"id": project["id"], "deleteConversations": False}}
    with api.counting() as counter:
        first = (await api.data(DELETE_PROJECT, variables, user=alice))["deleteProject"]
    with api.counting() as second_counter:
        second = (await api.data(DELETE_PROJECT, variables, user=alice))["deleteProject"]

    assert first == {"done": False, "conversationsRemaining": 5}
    assert second == {"done": True, "conversationsRemaining": 0}
    # The mark (one read, one transaction), an index page, one read and one transaction per
    # conversation moved out, and the project's counts read at the end.
    assert Counter(counter.operations) == {
        "BatchGetItem": 1 + DELETE_BATCH,
        "TransactWriteItems": 1 + DELETE_BATCH,
        "Query": 1,
        "GetItem": 1,
    }
    # Resumed: the mark is read and found done, then the last five, then the item goes.
    assert Counter(second_counter.operations) == {
        "BatchGetItem": 1 + 5,
        "TransactWriteItems": 5,
        "Query": 2,
        "GetItem": 1,
        "DeleteItem": 1,
    }


async def test_the_shipped_project_screen_is_one_wave(
    api: Api, grouped_user: tuple[str, list[str], list[str]]
) -> None:
    user, projects, _ = grouped_user
    document = (SDL_PATH.parent / "operations" / "ProjectConversations.graphql").read_text()
    with api.counting() as counter:
        data = await api.data(document, {"projectId": projects[2], "first": 5}, user=user)

    assert sorted(counter.operations) == ["BatchGetItem", "Query"]
    assert len(counter.waves) == 1
    assert len(data["project"]["conversations"]["edges"]) == 5
    assert data["project"]["conversations"]["totalCount"] == 8


async def test_deleting_a_project_with_its_conversations_costs_what_deleting_them_costs(
    api: Api, alice: str
) -> None:
    project = await create_project(api, alice)
    for index in range(2):
        conversation = await create_conversation(api, alice, f"c{index}", projectId=project["id"])
        await add_messages(api, alice, conversation["id"], ["q", "a"])

    variables = {"input": {"id": project["id"], "deleteConversations": True}}
    with api.counting() as counter:
        deleted = (await api.data(DELETE_PROJECT, variables, user=alice))["deleteProject"]

    assert deleted == {"done": True, "conversationsRemaining": 0}
    # The mark; an index page of each list; per conversation: its owner and item (one read),
    # its partition's page and the page's deletes, then deleteConversation's read, transaction,
    # second look at the partition and owner item; the counts; the project item.
    assert Counter(counter.operations) == {
        "BatchGetItem": 1 + 2 * 2,
        "TransactWriteItems": 1 + 2,
        "Query": 2 + 2 * 2,
        "BatchWriteItem": 2,
        "DeleteItem": 2 + 1,
        "GetItem": 1,
    }
