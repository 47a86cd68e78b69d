"""The conversation routes: each one's exact JSON, paging, idempotent creates, bad input,
conflicts, and the same answers as GraphQL for the same data."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.errors import NOT_FOUND_MESSAGE
from tests.api.harness import Api, new_id
from tests.api.rest_harness import TIMESTAMP, Rest

GRAPHQL_GET = """
query Get($id: ID!) {
  conversation(id: $id) {
    id title modelId createdAt updatedAt messageCount version projectId
    lastMessage {
      id conversationId role content createdAt modelId isError errorMessage status streamSeq
    }
    messages(last: 20) {
      edges {
        node {
          id conversationId role content createdAt modelId isError errorMessage status streamSeq
        }
      }
    }
  }
}
"""


def as_rest(graphql_message: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL Message as REST spells it: the same fields, the role in lower case."""
    return {**graphql_message, "role": graphql_message["role"].lower()}


async def test_create_answers_201_with_the_conversation_and_its_location(
    rest: Rest, alice: str
) -> None:
    response = await rest.request(
        "POST", "/conversations", user=alice, json={"title": "  Trip plans ", "modelId": "m1"}
    )
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/conversations/{created['id']}"
    assert list(created) == [
        "id",
        "title",
        "modelId",
        "createdAt",
        "updatedAt",
        "messageCount",
        "version",
        "projectId",
    ]
    assert created["title"] == "Trip plans"
    assert (created["modelId"], created["messageCount"], created["version"]) == ("m1", 0, 1)
    assert TIMESTAMP.fullmatch(created["createdAt"])
    assert created["updatedAt"] == created["createdAt"]


async def test_a_conversation_reads_back_with_its_newest_messages(rest: Rest, alice: str) -> None:
    created = await rest.create(alice, "Chat", modelId=None)
    first = await rest.add(alice, created["id"], "question")
    second = await rest.add(alice, created["id"], "answer", role="assistant", modelId="m2")
    fetched = await rest.get(alice, created["id"])
    assert fetched == {
        **created,
        "updatedAt": second["createdAt"],
        "messageCount": 2,
        "lastMessage": second,
        "messages": [first, second],
        "olderCursor": None,
    }


async def test_rest_and_graphql_give_the_same_fields_and_timestamps(
    api: Api, rest: Rest, alice: str
) -> None:
    created = await rest.create(alice, "Same everywhere", modelId="m")
    await rest.add(alice, created["id"], "hello", id=new_id())
    await rest.add(alice, created["id"], "oops", role="assistant", isError=True, errorMessage="cut")
    over_rest = await rest.get(alice, created["id"])
    over_graphql = (await api.data(GRAPHQL_GET, {"id": created["id"]}, user=alice))["conversation"]
    messages = [as_rest(edge["node"]) for edge in over_graphql.pop("messages")["edges"]]
    over_graphql["lastMessage"] = as_rest(over_graphql["lastMessage"])
    assert over_rest == {**over_graphql, "messages": messages, "olderCursor": None}


async def test_a_new_conversation_has_no_last_message_field(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    fetched = await rest.get(alice, created["id"])
    assert "lastMessage" not in fetched
    assert fetched["messages"] == []


async def test_older_messages_page_back_with_before(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    contents = [f"m{index}" for index in range(7)]
    for content in contents:
        await rest.add(alice, created["id"], content)
    seen: list[list[str]] = []
    page = await rest.get(alice, created["id"], limit=3)
    while True:
        seen.append([message["content"] for message in page["messages"]])
        if page["olderCursor"] is None:
            break
        page = await rest.get(alice, created["id"], limit=3, before=page["olderCursor"])
    assert seen == [["m4", "m5", "m6"], ["m1", "m2", "m3"], ["m0"]]


async def test_the_list_is_newest_first_and_pages_with_next_cursor(rest: Rest, alice: str) -> None:
    titles = [f"c{index}" for index in range(5)]
    for title in titles:
        await rest.create(alice, title)
    pages: list[list[str]] = []
    params: dict[str, str | int] = {"limit": 2}
    while True:
        page = await rest.ok("GET", "/conversations", user=alice, params=params)
        pages.append([conversation["title"] for conversation in page["conversations"]])
        if page["nextCursor"] is None:
            break
        params = {"limit": 2, "cursor": page["nextCursor"]}
    assert pages == [["c4", "c3"], ["c2", "c1"], ["c0"]]


async def test_the_list_defaults_to_twenty(rest: Rest, alice: str) -> None:
    for index in range(21):
        await rest.create(alice, f"c{index}")
    page = await rest.ok("GET", "/conversations", user=alice)
    assert len(page["conversations"]) == 20
    assert page["nextCursor"] is not None
    rest_page = await rest.ok(
        "GET", "/conversations", user=alice, params={"cursor": page["nextCursor"]}
    )
    assert [c["title"] for c in rest_page["conversations"]] == ["c0"]
    assert rest_page["nextCursor"] is None


async def test_an_empty_list(rest: Rest, alice: str) -> None:
    page = await rest.ok("GET", "/conversations", user=alice)
    assert page == {"conversations": [], "nextCursor": None}


async def test_the_same_id_again_creates_one_conversation(rest: Rest, alice: str) -> None:
    conversation_id = new_id()
    first = await rest.create(alice, "Once", id=conversation_id.upper())
    retry = await rest.create(alice, "Once, retried", id=conversation_id)
    assert first["id"] == conversation_id
    assert retry == first
    page = await rest.ok("GET", "/conversations", user=alice)
    assert [c["id"] for c in page["conversations"]] == [conversation_id]


async def test_a_whole_swift_dto_is_accepted_and_its_extra_fields_ignored(
    rest: Rest, alice: str
) -> None:
    conversation_id = new_id()
    dto: dict[str, Any] = {
        "id": conversation_id.upper(),
        "title": "From the Mac app",
        "modelId": "claude",
        "createdAt": "2020-01-01T00:00:00Z",
        "updatedAt": "2020-01-01T00:00:00Z",
        "messageCount": 99,
        "messages": [],
    }
    created = await rest.ok("POST", "/conversations", user=alice, status=201, json=dto)
    assert created["id"] == conversation_id
    assert (created["messageCount"], created["title"]) == (0, "From the Mac app")
    assert created["createdAt"] != "2020-01-01T00:00:00.000000Z"


async def test_put_renames_and_bumps_the_version(rest: Rest, alice: str) -> None:
    created = await rest.create(alice, "Old", modelId="m1")
    path = f"/conversations/{created['id']}"
    renamed = await rest.ok("PUT", path, user=alice, json={"title": " New "})
    assert renamed == {
        **created,
        "title": "New",
        "version": 2,
        "updatedAt": renamed["updatedAt"],
    }
    assert renamed["updatedAt"] > created["updatedAt"]
    cleared = await rest.ok("PUT", path, user=alice, json={"modelId": None, "expectedVersion": 2})
    assert (cleared["title"], cleared["modelId"], cleared["version"]) == ("New", None, 3)


async def test_a_stale_expected_version_is_409_and_changes_nothing(rest: Rest, alice: str) -> None:
    created = await rest.create(alice, "Original")
    path = f"/conversations/{created['id']}"
    await rest.ok("PUT", path, user=alice, json={"title": "First", "expectedVersion": 1})
    error = await rest.error(
        "PUT", path, user=alice, status=409, json={"title": "Second", "expectedVersion": 1}
    )
    assert error == {"code": "CONFLICT", "message": "conversation is at version 2, not 1"}
    assert (await rest.get(alice, created["id"]))["title"] == "First"


async def test_delete_is_204_then_404(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    await rest.add(alice, created["id"], "doomed")
    path = f"/conversations/{created['id']}"
    response = await rest.request("DELETE", path, user=alice)
    assert (response.status_code, response.content) == (204, b"")
    again = await rest.error("DELETE", path, user=alice, status=404)
    assert again == {"code": "NOT_FOUND", "message": NOT_FOUND_MESSAGE}
    gone = await rest.error("GET", path, user=alice, status=404)
    assert gone == again
    assert (await rest.ok("GET", "/conversations", user=alice))["conversations"] == []


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_missing_conversation_is_404(rest: Rest, alice: str, method: str) -> None:
    json = {"title": "x"} if method == "PUT" else None
    error = await rest.error(
        method, f"/conversations/{new_id()}", user=alice, status=404, json=json
    )
    assert error == {"code": "NOT_FOUND", "message": NOT_FOUND_MESSAGE}


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"title": ""}, "title", "must not be empty"),
        ({"title": "   "}, "title", "must not be empty"),
        ({"title": "x" * 201}, "title", "at most 200"),
        ({"title": "bell\x07"}, "title", "control characters"),
        ({}, "title", "is required"),
        ({"title": None}, "title", "must not be null"),
        ({"title": 5}, "title", "must be a string"),
        ({"title": ["a"]}, "title", "must be a string"),
        ({"title": "ok", "id": "not-a-uuid"}, "id", "must be a UUID"),
        ({"title": "ok", "id": "{12345678-1234-1234-1234-123456789abc}"}, "id", "UUID"),
        ({"title": "ok", "id": 7}, "id", "must be a string"),
        ({"title": "ok", "modelId": "m" * 129}, "modelId", "at most 128"),
        ({"title": "ok", "modelId": True}, "modelId", "must be a string"),
    ],
)
async def test_an_invalid_create_is_400_naming_the_field(
    rest: Rest, alice: str, body: dict[str, Any], field: str, reason: str
) -> None:
    error = await rest.error("POST", "/conversations", user=alice, status=400, json=body)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field)
    assert error["message"].startswith(f"{field}: ")
    assert reason in error["message"]
    assert (await rest.ok("GET", "/conversations", user=alice))["conversations"] == []


async def test_a_lone_surrogate_is_bad_input_not_a_crash(rest: Rest, alice: str) -> None:
    error = await rest.error(
        "POST",
        "/conversations",
        user=alice,
        status=400,
        content=b'{"title": "\\ud800"}',
        headers={"Content-Type": "application/json"},
    )
    assert error == {
        "code": "BAD_USER_INPUT",
        "message": "title: must be valid Unicode text",
        "field": "title",
    }


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({}, "input", "give at least one of title, modelId"),
        ({"title": None}, "title", "must not be null"),
        ({"title": ""}, "title", "must not be empty"),
        ({"expectedVersion": "1", "title": "x"}, "expectedVersion", "32-bit integer"),
        ({"expectedVersion": 1.5, "title": "x"}, "expectedVersion", "32-bit integer"),
        ({"expectedVersion": True, "title": "x"}, "expectedVersion", "32-bit integer"),
        ({"expectedVersion": 2**31, "title": "x"}, "expectedVersion", "32-bit integer"),
        ({"expectedVersion": 0, "title": "x"}, "expectedVersion", "positive version"),
    ],
)
async def test_an_invalid_update_is_400_and_changes_nothing(
    rest: Rest, alice: str, body: dict[str, Any], field: str, reason: str
) -> None:
    created = await rest.create(alice, "Kept")
    path = f"/conversations/{created['id']}"
    error = await rest.error("PUT", path, user=alice, status=400, json=body)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field)
    assert reason in error["message"]
    assert await rest.get(alice, created["id"]) == {**created, "messages": [], "olderCursor": None}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_a_malformed_id_in_the_path_is_400(rest: Rest, alice: str, method: str) -> None:
    json = {"title": "x"} if method == "PUT" else None
    error = await rest.error(method, "/conversations/CONV%231", user=alice, status=400, json=json)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "id")


@pytest.mark.parametrize(
    ("path", "params", "field", "reason"),
    [
        ("/conversations", {"limit": 101}, "limit", "at most 100"),
        ("/conversations", {"limit": -1}, "limit", "must not be negative"),
        ("/conversations", {"limit": "ten"}, "limit", "32-bit integer"),
        ("/conversations", {"limit": "1.0"}, "limit", "32-bit integer"),
        ("/conversations", {"limit": "99999999999"}, "limit", "32-bit integer"),
        ("/conversations", {"cursor": "garbage"}, "cursor", "not a valid cursor"),
        ("/conversations", {"cursor": "A" * 64}, "cursor", "not a valid cursor"),
    ],
)
async def test_bad_list_parameters_are_400(
    rest: Rest, alice: str, path: str, params: dict[str, str | int], field: str, reason: str
) -> None:
    error = await rest.error("GET", path, user=alice, status=400, params=params)
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field)
    assert reason in error["message"]


async def test_a_cursor_of_another_list_is_400(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    for content in ("a", "b", "c"):
        await rest.add(alice, created["id"], content)
    older = (await rest.get(alice, created["id"], limit=1))["olderCursor"]
    assert older is not None
    as_list_cursor = await rest.error(
        "GET", "/conversations", user=alice, status=400, params={"cursor": older}
    )
    assert as_list_cursor["field"] == "cursor"
    elsewhere = await rest.create(alice)
    in_another_conversation = await rest.error(
        "GET", f"/conversations/{elsewhere['id']}", user=alice, status=400, params={"before": older}
    )
    assert in_another_conversation["field"] == "before"
    too_big = await rest.error(
        "GET", f"/conversations/{created['id']}", user=alice, status=400, params={"limit": 500}
    )
    assert (too_big["field"], too_big["message"]) == ("limit", "limit: must be at most 100")
