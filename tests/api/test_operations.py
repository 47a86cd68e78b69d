"""The shipped client operations, run as a client would: a whole session, start to finish."""

from __future__ import annotations

from typing import Any

from graphql_api.gql.schema import SDL_PATH
from tests.api.harness import Api, new_id

OPERATIONS = SDL_PATH.parent / "operations"


def operation(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")


async def run(api: Api, user: str, name: str, /, **variables: Any) -> dict[str, Any]:
    return await api.data(operation(name), variables, user=user)


async def test_a_client_session_from_home_screen_to_delete(api: Api, alice: str) -> None:
    home = await run(api, alice, "HomeConversations")
    assert home["conversations"]["edges"] == []

    conversation_id = new_id()
    created = await run(api, alice, "CreateConversation", id=conversation_id, title="Ideas")
    assert created["createConversation"]["conversation"]["id"] == conversation_id

    sent = await run(
        api,
        alice,
        "SendMessage",
        conversationId=conversation_id,
        id=new_id(),
        role="USER",
        content="Give me ideas",
    )
    assert sent["addMessage"]["conversation"]["messageCount"] == 1

    exchange = [
        {"id": new_id(), "role": "USER" if index % 2 == 0 else "ASSISTANT", "content": f"m{index}"}
        for index in range(20)
    ]
    saved = await run(api, alice, "SaveExchange", conversationId=conversation_id, messages=exchange)
    assert saved["addMessages"]["conversation"]["messageCount"] == 21
    assert saved["addMessages"]["conversation"]["lastMessage"]["content"] == "m19"

    opened = (await run(api, alice, "OpenConversation", id=conversation_id, last=15))[
        "conversation"
    ]
    shown = [edge["node"]["content"] for edge in opened["messages"]["edges"]]
    assert shown == [f"m{index}" for index in range(5, 20)]
    assert opened["messages"]["totalCount"] == 21

    older = await run(
        api,
        alice,
        "OlderMessages",
        id=conversation_id,
        before=opened["messages"]["pageInfo"]["startCursor"],
    )
    older_page = older["conversation"]["messages"]
    assert [edge["node"]["content"] for edge in older_page["edges"]] == [
        "Give me ideas",
        "m0",
        "m1",
        "m2",
        "m3",
        "m4",
    ]
    assert older_page["pageInfo"]["hasPreviousPage"] is False

    version = opened["version"]
    renamed = await run(
        api,
        alice,
        "RenameConversation",
        id=conversation_id,
        title="Better ideas",
        expectedVersion=version,
    )
    assert renamed["renameConversation"]["conversation"]["version"] == version + 1

    home = await run(api, alice, "HomeConversations")
    (edge,) = home["conversations"]["edges"]
    assert edge["node"]["title"] == "Better ideas"
    assert edge["node"]["lastMessage"]["content"] == "m19"

    deleted = await run(api, alice, "DeleteConversation", id=conversation_id)
    assert deleted["deleteConversation"]["deletedConversationId"] == conversation_id
    assert (await run(api, alice, "HomeConversations"))["conversations"]["edges"] == []


async def test_a_client_session_with_projects(api: Api, alice: str) -> None:
    project_id, conversation_id = new_id(), new_id()
    created = await run(api, alice, "CreateProject", id=project_id, name="Garden")
    assert created["createProject"]["project"]["conversationCount"] == 0
    await run(api, alice, "CreateConversation", id=conversation_id, title="Tomatoes")

    moved = await run(
        api, alice, "MoveConversation", conversationId=conversation_id, projectId=project_id
    )
    assert moved["moveConversation"]["conversation"]["project"] == {
        "id": project_id,
        "conversationCount": 1,
    }
    renamed = await run(
        api, alice, "UpdateProject", id=project_id, instructions="Organic only.", expectedVersion=1
    )
    assert renamed["updateProject"]["project"]["version"] == 2
    listed = await run(api, alice, "Projects")
    assert [edge["node"]["name"] for edge in listed["projects"]["edges"]] == ["Garden"]
    opened = await run(api, alice, "ProjectConversations", projectId=project_id)
    assert opened["project"]["instructions"] == "Organic only."
    assert [edge["node"]["id"] for edge in opened["project"]["conversations"]["edges"]] == [
        conversation_id
    ]
    refreshed = await run(api, alice, "RefetchNode", id=conversation_id)
    assert refreshed["node"]["projectId"] == project_id

    deleted = await run(api, alice, "DeleteProject", id=project_id)
    assert deleted["deleteProject"] == {"done": True, "conversationsRemaining": 0}
    assert (await run(api, alice, "RefetchNode", id=project_id))["node"] is None
    assert (await run(api, alice, "RefetchNode", id=conversation_id))["node"]["projectId"] is None
