"""Projects over GraphQL: creating, listing, moving conversations in and out, their counts,
deleting them (resumably, moving out or deleting their conversations), and node/nodes."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.errors import PROJECT_NOT_FOUND_MESSAGE
from graphql_api.settings import InputLimits
from graphql_api.storage import keys
from tests.api.harness import (
    Api,
    add_messages,
    api_settings,
    create_conversation,
    new_id,
    new_user,
    running_api,
)
from tests.api.test_isolation import stored_items
from tests.conftest import REGION, credentials_for
from tests.tokens import FakeUserPool

CREATE_PROJECT = """
mutation CreateProject($input: CreateProjectInput!) {
  createProject(input: $input) {
    project { id name instructions version conversationCount createdAt updatedAt }
  }
}
"""
UPDATE_PROJECT = """
mutation UpdateProject($input: UpdateProjectInput!) {
  updateProject(input: $input) { project { id name instructions version updatedAt } }
}
"""
DELETE_PROJECT = """
mutation DeleteProject($input: DeleteProjectInput!) {
  deleteProject(input: $input) { done conversationsRemaining }
}
"""
MOVE = """
mutation Move($input: MoveConversationInput!) {
  moveConversation(input: $input) {
    conversation { id version projectId project { id conversationCount } }
    previousProject { id conversationCount }
  }
}
"""
PROJECTS = """
query Projects($first: Int, $after: String, $last: Int, $before: String) {
  projects(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id name conversationCount } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
PROJECT = """
query Project($id: ID!, $first: Int, $after: String, $filter: ConversationFilter) {
  project(id: $id) {
    id name instructions conversationCount
    conversations(first: $first, after: $after, filter: $filter) {
      totalCount
      edges { node { id title projectId } }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
LIST = """
query List($first: Int, $after: String, $filter: ConversationFilter) {
  conversations(first: $first, after: $after, filter: $filter) {
    totalCount
    edges { cursor node { id title projectId pinned archived } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
NODES = """
query Nodes($ids: [ID!]!) {
  nodes(ids: $ids) {
    __typename id
    ... on Conversation { title projectId }
    ... on Project { name conversationCount }
  }
}
"""


async def create_project(
    api: Api, user: str, name: str = "A project", **fields: Any
) -> dict[str, Any]:
    variables = {"input": {"id": new_id(), "name": name, **fields}}
    data = await api.data(CREATE_PROJECT, variables, user=user)
    project: dict[str, Any] = data["createProject"]["project"]
    return project


async def move(
    api: Api, user: str, conversation_id: str, project_id: str | None, **fields: Any
) -> dict[str, Any]:
    variables = {"input": {"conversationId": conversation_id, "projectId": project_id, **fields}}
    data = await api.data(MOVE, variables, user=user)
    moved: dict[str, Any] = data["moveConversation"]
    return moved


async def listed(api: Api, user: str, **filter: Any) -> tuple[int, list[str]]:
    """The list's totalCount and every title in it, walked a page of 2 at a time."""
    titles: list[str] = []
    cursor = None
    while True:
        variables = {"first": 2, "after": cursor, "filter": filter or None}
        connection = (await api.data(LIST, variables, user=user))["conversations"]
        titles += [edge["node"]["title"] for edge in connection["edges"]]
        if not connection["pageInfo"]["hasNextPage"]:
            return connection["totalCount"], titles
        cursor = connection["pageInfo"]["endCursor"]


async def delete_until_done(
    api: Api, user: str, project_id: str, *, delete_conversations: bool = False
) -> list[dict[str, Any]]:
    calls = []
    for _ in range(50):
        variables = {"input": {"id": project_id, "deleteConversations": delete_conversations}}
        data = await api.data(DELETE_PROJECT, variables, user=user)
        calls.append(data["deleteProject"])
        if data["deleteProject"]["done"]:
            return calls
    raise AssertionError(f"deleteProject never finished: {calls}")


async def test_a_project_is_created_once_per_id_and_read_back(api: Api, alice: str) -> None:
    project_id = new_id()
    variables = {
        "input": {"id": project_id, "name": "  Trip to Japan  ", "instructions": "Be brief."}
    }

    first = (await api.data(CREATE_PROJECT, variables, user=alice))["createProject"]["project"]
    again = (await api.data(CREATE_PROJECT, variables, user=alice))["createProject"]["project"]

    assert first["name"] == "Trip to Japan"
    assert (first["version"], first["conversationCount"]) == (1, 0)
    assert again == first
    data = await api.data(PROJECT, {"id": project_id}, user=alice)
    assert data["project"]["instructions"] == "Be brief."
    assert data["project"]["conversations"]["totalCount"] == 0
    assert (await api.data(PROJECTS, {}, user=alice))["projects"]["totalCount"] == 1


async def test_conversations_move_in_and_out_and_every_list_counts_them(
    api: Api, alice: str
) -> None:
    trip = await create_project(api, alice, "Trip")
    work = await create_project(api, alice, "Work")
    a = await create_conversation(api, alice, "a", projectId=trip["id"])
    b = await create_conversation(api, alice, "b")
    await create_conversation(api, alice, "c")
    await add_messages(api, alice, b["id"], ["q", "r"])

    moved = await move(api, alice, b["id"], trip["id"], expectedVersion=b["version"])
    assert moved["conversation"]["projectId"] == trip["id"]
    assert moved["conversation"]["project"] == {"id": trip["id"], "conversationCount": 2}
    assert moved["previousProject"] is None
    moved = await move(api, alice, a["id"], work["id"])
    assert moved["previousProject"] == {"id": trip["id"], "conversationCount": 1}

    assert await listed(api, alice, projectId=trip["id"]) == (1, ["b"])
    assert await listed(api, alice, projectId=work["id"]) == (1, ["a"])
    assert await listed(api, alice, inProject=False) == (1, ["c"])
    assert await listed(api, alice, inProject=True) == (2, ["a", "b"])
    # The home list keeps every unarchived conversation, wherever it is.
    assert await listed(api, alice) == (3, ["a", "b", "c"])

    await move(api, alice, b["id"], None)
    assert await listed(api, alice, inProject=False) == (2, ["b", "c"])
    assert await listed(api, alice, projectId=trip["id"]) == (0, [])


async def test_a_moved_conversation_keeps_its_messages(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], [f"m{index}" for index in range(5)])

    await move(api, alice, conversation["id"], project["id"])

    query = "query($id: ID!) { conversation(id: $id) { messages { edges { node { content } } } } }"
    data = await api.data(query, {"id": conversation["id"]}, user=alice)
    contents = [edge["node"]["content"] for edge in data["conversation"]["messages"]["edges"]]
    assert contents == [f"m{index}" for index in range(5)]


async def test_a_retried_move_succeeds_and_a_stale_one_conflicts(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    conversation = await create_conversation(api, alice)

    first = await move(api, alice, conversation["id"], project["id"], expectedVersion=1)
    again = await move(api, alice, conversation["id"], project["id"], expectedVersion=1)
    assert again["conversation"] == first["conversation"]
    variables = {
        "input": {"conversationId": conversation["id"], "projectId": None, "expectedVersion": 1}
    }
    error = await api.error(MOVE, variables, user=alice)

    assert error["extensions"]["code"] == "CONFLICT"
    assert (await listed(api, alice, projectId=project["id"]))[0] == 1


async def test_archiving_and_pinning_move_a_projects_counts(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    ids = [
        (await create_conversation(api, alice, f"c{index}", projectId=project["id"]))["id"]
        for index in range(3)
    ]
    update = """
    mutation($input: UpdateConversationInput!) {
      updateConversation(input: $input) { conversation { id } }
    }
    """
    await api.data(update, {"input": {"id": ids[0], "archived": True}}, user=alice)
    await api.data(update, {"input": {"id": ids[1], "pinned": True}}, user=alice)

    assert await listed(api, alice, projectId=project["id"]) == (2, ["c1", "c2"])
    assert await listed(api, alice, projectId=project["id"], archived=True) == (1, ["c0"])
    assert await listed(api, alice, projectId=project["id"], pinned=True) == (1, ["c1"])
    data = await api.data(PROJECT, {"id": project["id"]}, user=alice)
    assert data["project"]["conversationCount"] == 3
    delete = "mutation($id: ID!) { deleteConversation(input: {id: $id}) { deletedConversationId } }"
    await api.data(delete, {"id": ids[2]}, user=alice)
    data = await api.data(PROJECT, {"id": project["id"]}, user=alice)
    assert data["project"]["conversationCount"] == 2
    assert data["project"]["conversations"]["totalCount"] == 1


async def test_projects_list_most_recently_updated_first_in_pages(api: Api, alice: str) -> None:
    made = [await create_project(api, alice, f"p{index}") for index in range(5)]
    rename = {"input": {"id": made[1]["id"], "name": "p1 renamed", "expectedVersion": 1}}
    await api.data(UPDATE_PROJECT, rename, user=alice)

    names: list[str] = []
    cursor = None
    while True:
        data = await api.data(PROJECTS, {"first": 2, "after": cursor}, user=alice)
        connection = data["projects"]
        names += [edge["node"]["name"] for edge in connection["edges"]]
        assert connection["totalCount"] == 5
        if not connection["pageInfo"]["hasNextPage"]:
            break
        cursor = connection["pageInfo"]["endCursor"]
    backward = await api.data(PROJECTS, {"last": 2}, user=alice)

    assert names == ["p1 renamed", "p4", "p3", "p2", "p0"]
    assert [edge["node"]["name"] for edge in backward["projects"]["edges"]] == ["p2", "p0"]


async def test_deleting_a_project_moves_its_conversations_out(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    for index in range(3):
        await create_conversation(api, alice, f"c{index}", projectId=project["id"])

    calls = await delete_until_done(api, alice, project["id"])

    assert calls[-1] == {"done": True, "conversationsRemaining": 0}
    assert await listed(api, alice, inProject=False) == (3, ["c2", "c1", "c0"])
    assert (await api.data(PROJECT, {"id": project["id"]}, user=alice))["project"] is None
    assert (await api.data(PROJECTS, {}, user=alice))["projects"]["totalCount"] == 0
    error = await api.error(DELETE_PROJECT, {"input": {"id": project["id"]}}, user=alice)
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert error["message"] == PROJECT_NOT_FOUND_MESSAGE


async def test_deleting_a_project_with_its_conversations_deletes_them(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    await create_conversation(api, alice, "kept")
    for index in range(2):
        conversation = await create_conversation(api, alice, f"c{index}", projectId=project["id"])
        await add_messages(api, alice, conversation["id"], ["q", "a"])

    calls = await delete_until_done(api, alice, project["id"], delete_conversations=True)

    assert calls[-1]["done"]
    assert await listed(api, alice) == (1, ["kept"])


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": "   "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "two\nlines"}, "name"),
        ({"name": "ok", "instructions": "x" * 8001}, "instructions"),
        ({"name": "ok", "id": "not-a-uuid"}, "id"),
    ],
)
async def test_bad_project_input_is_refused(
    api: Api, alice: str, fields: dict[str, Any], field: str
) -> None:
    variables = {"input": {"id": new_id(), **fields}}
    error = await api.error(CREATE_PROJECT, variables, user=alice)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field
    assert (await api.data(PROJECTS, {}, user=alice))["projects"]["totalCount"] == 0


async def test_the_longest_name_and_instructions_are_taken(api: Api, alice: str) -> None:
    project = await create_project(api, alice, " " + "n" * 200 + " ", instructions="i\n" * 4000)

    assert len(project["name"]) == 200
    assert len(project["instructions"]) == 8000


async def test_a_project_id_cannot_be_a_conversation_id_of_the_same_user(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    project = await create_project(api, alice)

    error = await api.error(
        CREATE_PROJECT, {"input": {"id": conversation["id"], "name": "clash"}}, user=alice
    )
    assert error["extensions"]["code"] == "CONFLICT"
    error = await api.error(
        "mutation($input: CreateConversationInput!) { createConversation(input: $input) "
        "{ conversation { id } } }",
        {"input": {"id": project["id"], "title": "clash"}},
        user=alice,
    )
    assert error["extensions"]["code"] == "CONFLICT"


async def test_a_temporary_conversation_cannot_be_in_a_project(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    error = await api.error(
        "mutation($input: CreateConversationInput!) { createConversation(input: $input) "
        "{ conversation { id } } }",
        {"input": {"title": "t", "temporary": True, "projectId": project["id"]}},
        user=alice,
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    temporary = await create_conversation(api, alice, "t", temporary=True)
    variables = {"input": {"conversationId": temporary["id"], "projectId": project["id"]}}
    error = await api.error(MOVE, variables, user=alice)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_nodes_resolve_conversations_and_projects_in_order(api: Api, alice: str) -> None:
    project = await create_project(api, alice, "P")
    conversation = await create_conversation(api, alice, "C", projectId=project["id"])
    missing = new_id()

    data = await api.data(
        NODES, {"ids": [project["id"], missing, conversation["id"].upper(), "nope"]}, user=alice
    )

    assert data["nodes"] == [
        {"__typename": "Project", "id": project["id"], "name": "P", "conversationCount": 1},
        None,
        {
            "__typename": "Conversation",
            "id": conversation["id"],
            "title": "C",
            "projectId": project["id"],
        },
        None,
    ]
    error = await api.error(NODES, {"ids": [new_id() for _ in range(101)]}, user=alice)
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_stale_expected_version_is_a_conflict_that_changes_nothing(
    api: Api, alice: str
) -> None:
    project = await create_project(api, alice, "before")
    renamed = {"input": {"id": project["id"], "name": "after", "expectedVersion": 1}}
    await api.data(UPDATE_PROJECT, renamed, user=alice)

    stale = {"input": {"id": project["id"], "name": "lost", "expectedVersion": 1}}
    error = await api.error(UPDATE_PROJECT, stale, user=alice)

    assert error["extensions"]["code"] == "CONFLICT"
    data = await api.data(PROJECT, {"id": project["id"]}, user=alice)
    assert data["project"]["name"] == "after"


@pytest.mark.parametrize(
    ("update", "field"),
    [({}, "input"), ({"name": None}, "name"), ({"name": ""}, "name")],
)
async def test_bad_project_updates_are_refused(
    api: Api, alice: str, update: dict[str, Any], field: str
) -> None:
    project = await create_project(api, alice, "kept")
    error = await api.error(UPDATE_PROJECT, {"input": {"id": project["id"], **update}}, user=alice)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == field


async def test_instructions_are_cleared_with_null_and_kept_when_omitted(
    api: Api, alice: str
) -> None:
    project = await create_project(api, alice, "p", instructions="first")
    kept = {"input": {"id": project["id"], "name": "renamed"}}
    updated = (await api.data(UPDATE_PROJECT, kept, user=alice))["updateProject"]["project"]
    assert (updated["instructions"], updated["version"]) == ("first", 2)
    cleared = {"input": {"id": project["id"], "instructions": None}}
    updated = (await api.data(UPDATE_PROJECT, cleared, user=alice))["updateProject"]["project"]
    assert (updated["name"], updated["instructions"]) == ("renamed", None)


async def test_a_filter_names_a_project_or_asks_for_none_not_both(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    variables = {"first": 5, "filter": {"projectId": project["id"], "inProject": False}}
    error = await api.error(LIST, variables, user=alice)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "inProject"


async def test_a_cursor_of_one_list_is_refused_by_another(api: Api, alice: str) -> None:
    project = await create_project(api, alice)
    for index in range(3):
        await create_conversation(api, alice, f"c{index}", projectId=project["id"])
        await create_conversation(api, alice, f"d{index}")
    page = await api.data(LIST, {"first": 1, "filter": {"projectId": project["id"]}}, user=alice)
    cursor = page["conversations"]["pageInfo"]["endCursor"]

    for other in ({"inProject": False}, None):
        variables = {"first": 1, "after": cursor, "filter": other}
        error = await api.error(LIST, variables, user=alice)
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == "after"


async def test_projects_stop_at_max_projects_per_user(
    user_pool: FakeUserPool, dynamodb_endpoint: str, api_table: str
) -> None:
    settings = api_settings(
        user_pool,
        table_name=api_table,
        endpoint=dynamodb_endpoint,
        region=REGION,
        limits=InputLimits(max_projects_per_user=2),
    )
    async with running_api(
        settings, user_pool, credentials=credentials_for(dynamodb_endpoint)
    ) as api:
        user = new_user()
        first = await create_project(api, user, "one")
        await create_project(api, user, "two")

        error = await api.error(
            CREATE_PROJECT, {"input": {"id": new_id(), "name": "three"}}, user=user
        )
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        # A retried create of one it has is no new project; a deleted one frees its place.
        again = {"input": {"id": first["id"], "name": "one"}}
        assert (await api.data(CREATE_PROJECT, again, user=user))["createProject"]["project"]["id"]
        await delete_until_done(api, user, first["id"])
        await create_project(api, user, "three")
        assert (await api.data(PROJECTS, {}, user=user))["projects"]["totalCount"] == 2


async def test_project_writes_are_changes_a_device_catches_up_with(api: Api, alice: str) -> None:
    since = (await api.data("{ changes { syncToken } }", user=alice))["changes"]["syncToken"]
    project = await create_project(api, alice, "p")
    conversation = await create_conversation(api, alice, "c")
    await move(api, alice, conversation["id"], project["id"])
    await api.data(UPDATE_PROJECT, {"input": {"id": project["id"], "name": "q"}}, user=alice)
    await delete_until_done(api, alice, project["id"])
    feed = """
    query($since: String) {
      changes(since: $since) {
        changes { kind conversationId projectId project { name } conversation { projectId } }
      }
    }
    """

    changes = (await api.data(feed, {"since": since}, user=alice))["changes"]["changes"]

    pid, cid = project["id"], conversation["id"]
    left = {"projectId": None}
    assert changes == [
        {
            "kind": "PROJECT_CREATED",
            "conversationId": None,
            "projectId": pid,
            "project": None,
            "conversation": None,
        },
        {
            "kind": "CONVERSATION_CREATED",
            "conversationId": cid,
            "projectId": None,
            "project": None,
            "conversation": left,
        },
        {
            "kind": "CONVERSATION_UPDATED",
            "conversationId": cid,
            "projectId": None,
            "project": None,
            "conversation": left,
        },
        {
            "kind": "PROJECT_UPDATED",
            "conversationId": None,
            "projectId": pid,
            "project": None,
            "conversation": None,
        },
        {
            "kind": "PROJECT_DELETED",
            "conversationId": None,
            "projectId": pid,
            "project": None,
            "conversation": None,
        },
        # deleteProject moved it out: a change of its own.
        {
            "kind": "CONVERSATION_UPDATED",
            "conversationId": cid,
            "projectId": None,
            "project": None,
            "conversation": left,
        },
    ]


async def test_delete_all_my_data_removes_projects_with_their_conversations(
    api: Api, alice: str, bob: str
) -> None:
    kept = await create_project(api, bob, "Bob's")
    for index in range(3):
        project = await create_project(api, alice, f"p{index}")
        for inner in range(2):
            conversation = await create_conversation(
                api, alice, f"c{index}.{inner}", projectId=project["id"]
            )
            await add_messages(api, alice, conversation["id"], ["q", "a"])
    await create_conversation(api, alice, "loose")
    erase = "mutation { deleteAllMyData { done conversationsRemaining } }"

    for _ in range(20):
        erased = (await api.data(erase, user=alice))["deleteAllMyData"]
        if erased["done"]:
            break
    else:
        raise AssertionError("deleteAllMyData never finished")

    assert (await api.data(PROJECTS, {}, user=alice))["projects"]["totalCount"] == 0
    assert await listed(api, alice) == (0, [])
    left = await stored_items(api, keys.user_pk(alice))
    assert [item["SK"]["S"] for item in left] == [keys.PROFILE_SK]
    assert set(left[0]) == {"PK", "SK", "changeVersion"}
    theirs = await api.data(PROJECT, {"id": kept["id"]}, user=bob)
    assert theirs["project"]["name"] == "Bob's"
