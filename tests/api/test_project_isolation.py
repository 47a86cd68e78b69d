"""User B, naming user A's project anywhere a project id goes, learns and changes nothing: each
answer is the one for an id that exists nowhere (NOT_FOUND, or null where a read finds
nothing), and A's items are afterwards byte for byte what they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graphql_api.storage import keys
from tests.api.harness import Api, create_conversation, new_id
from tests.api.test_isolation import stored_items, without_locations
from tests.api.test_projects import NODES, create_project

# Each takes (A's project id, one of B's conversation ids) and names the project somewhere.
MUTATIONS: dict[str, tuple[str, Callable[[str, str], dict[str, Any]]]] = {
    "createConversation in it": (
        "mutation($i: CreateConversationInput!) { createConversation(input: $i) "
        "{ conversation { id } } }",
        lambda pid, _: {"title": "planted", "projectId": pid},
    ),
    "moveConversation into it": (
        "mutation($i: MoveConversationInput!) { moveConversation(input: $i) "
        "{ conversation { id } } }",
        lambda pid, cid: {"conversationId": cid, "projectId": pid},
    ),
    "updateProject": (
        "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { id } } }",
        lambda pid, _: {"id": pid, "name": "hijacked"},
    ),
    "updateProject at its version": (
        "mutation($i: UpdateProjectInput!) { updateProject(input: $i) { project { id } } }",
        lambda pid, _: {"id": pid, "instructions": "evil", "expectedVersion": 1},
    ),
    "deleteProject": (
        "mutation($i: DeleteProjectInput!) { deleteProject(input: $i) { done } }",
        lambda pid, _: {"id": pid},
    ),
    "deleteProject with its conversations": (
        "mutation($i: DeleteProjectInput!) { deleteProject(input: $i) { done } }",
        lambda pid, _: {"id": pid, "deleteConversations": True},
    ),
    "importConversations into it": (
        "mutation($i: ImportConversationsInput!) { importConversations(input: $i) "
        "{ conversations { id } } }",
        lambda pid, _: {
            "conversations": [
                {
                    "id": new_id(),
                    "title": "planted",
                    "createdAt": "2024-01-01T00:00:00.000000Z",
                    "messages": [],
                    "projectId": pid,
                }
            ]
        },
    ),
}
READS: dict[str, str] = {
    "project": "query($id: ID!) { project(id: $id) { id name conversationCount } }",
    "node": "query($id: ID!) { node(id: $id) { id ... on Project { name } } }",
}


async def planted(api: Api, owner: str) -> tuple[str, list[dict[str, Any]]]:
    """A's project holding one of A's conversations, and A's items as stored."""
    project = await create_project(api, owner, "A's project", instructions="A's secret")
    await create_conversation(api, owner, "A's chat", projectId=project["id"])
    return project["id"], await stored_items(api, keys.user_pk(owner))


@pytest.mark.parametrize("name", list(MUTATIONS))
async def test_each_mutation_naming_anothers_project_matches_a_missing_one(
    api: Api, alice: str, bob: str, name: str
) -> None:
    project_id, before = await planted(api, alice)
    mine = await create_conversation(api, bob, "B's chat")
    document, make_input = MUTATIONS[name]

    foreign = await api.run(document, {"i": make_input(project_id, mine["id"])}, user=bob)
    absent = await api.run(document, {"i": make_input(new_id(), mine["id"])}, user=bob)

    assert foreign["data"] is None
    assert [error["extensions"]["code"] for error in foreign["errors"]] == ["NOT_FOUND"]
    assert without_locations(foreign) == without_locations(absent)
    assert await stored_items(api, keys.user_pk(alice)) == before
    bobs = await api.data(
        "query($id: ID!) { conversation(id: $id) { version projectId } }",
        {"id": mine["id"]},
        user=bob,
    )
    assert bobs["conversation"] == {"version": 1, "projectId": None}


@pytest.mark.parametrize("name", list(READS))
async def test_reading_anothers_project_by_id_is_null(
    api: Api, alice: str, bob: str, name: str
) -> None:
    theirs = await create_conversation(api, alice, "A's other chat")
    project_id, before = await planted(api, alice)

    foreign = await api.run(READS[name], {"id": project_id}, user=bob)
    absent = await api.run(READS[name], {"id": new_id()}, user=bob)

    assert foreign == absent == {"data": {name: None}}
    nodes = await api.data(NODES, {"ids": [project_id, theirs["id"]]}, user=bob)
    assert nodes == {"nodes": [None, None]}
    mine = await api.data(NODES, {"ids": [project_id, theirs["id"]]}, user=alice)
    assert [node["id"] for node in mine["nodes"]] == [project_id, theirs["id"]]
    assert [
        item for item in await stored_items(api, keys.user_pk(alice)) if item in before
    ] == before


async def test_listing_anothers_projects_conversations_is_not_found(
    api: Api, alice: str, bob: str
) -> None:
    project_id, before = await planted(api, alice)
    query = """
    query($id: ID!) { conversations(filter: {projectId: $id}) { totalCount edges { node { id } } } }
    """

    foreign = await api.run(query, {"id": project_id}, user=bob)
    absent = await api.run(query, {"id": new_id()}, user=bob)

    assert foreign["data"] is None
    assert [error["extensions"]["code"] for error in foreign["errors"]] == ["NOT_FOUND"]
    assert without_locations(foreign) == without_locations(absent)
    listed = await api.data("{ projects { totalCount edges { node { id } } } }", user=bob)
    assert listed["projects"] == {"totalCount": 0, "edges": []}
    assert await stored_items(api, keys.user_pk(alice)) == before


async def test_anothers_conversation_cannot_be_moved_into_ones_own_project(
    api: Api, alice: str, bob: str
) -> None:
    theirs = await create_conversation(api, alice, "A's chat")
    before = await stored_items(api, keys.user_pk(alice))
    mine = await create_project(api, bob)

    error = await api.error(
        "mutation($i: MoveConversationInput!) { moveConversation(input: $i) "
        "{ conversation { id } } }",
        {"i": {"conversationId": theirs["id"], "projectId": mine["id"]}},
        user=bob,
    )

    assert error["extensions"]["code"] == "NOT_FOUND"
    assert await stored_items(api, keys.user_pk(alice)) == before
    project = await api.data(
        "query($id: ID!) { project(id: $id) { conversationCount } }", {"id": mine["id"]}, user=bob
    )
    assert project["project"] == {"conversationCount": 0}


async def test_a_project_id_another_user_holds_is_a_separate_project(
    api: Api, alice: str, bob: str
) -> None:
    project_id, before = await planted(api, alice)

    created = await api.data(
        "mutation($i: CreateProjectInput!) { createProject(input: $i) "
        "{ project { id name conversationCount } } }",
        {"i": {"id": project_id, "name": "B's own"}},
        user=bob,
    )

    # Projects live only in their user's partition: the id names B's own, empty project.
    assert created["createProject"]["project"] == {
        "id": project_id,
        "name": "B's own",
        "conversationCount": 0,
    }
    assert await stored_items(api, keys.user_pk(alice)) == before
