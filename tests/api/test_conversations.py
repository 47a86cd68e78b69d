"""Conversations over the API: create, read, list, rename, update, delete, and isolation."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.errors import NOT_FOUND_MESSAGE
from tests.api.harness import Api, add_messages, create_conversation, new_id, new_user

GET = """
query Get($id: ID!) {
  conversation(id: $id) {
    id title modelId createdAt updatedAt messageCount version
    lastMessage { id role content }
  }
}
"""

LIST = """
query List($first: Int, $after: String, $last: Int, $before: String) {
  conversations(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id title updatedAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""

# Without edge cursors only pageInfo's two are signed; paging must not notice.
LIST_BY_PAGE_INFO = LIST.replace("edges { cursor node", "edges { node")

RENAME = """
mutation Rename($input: RenameConversationInput!) {
  renameConversation(input: $input) { conversation { id title version updatedAt } }
}
"""

UPDATE = """
mutation Update($input: UpdateConversationInput!) {
  updateConversation(input: $input) { conversation { id title modelId version updatedAt } }
}
"""

DELETE = """
mutation Delete($input: DeleteConversationInput!) {
  deleteConversation(input: $input) { deletedConversationId }
}
"""


ADD_ONE = """
mutation Add($input: AddMessageInput!) { addMessage(input: $input) { message { id } } }
"""


def rename_variables(conversation_id: str) -> dict[str, Any]:
    return {"input": {"id": conversation_id, "title": "pwned"}}


def update_variables(conversation_id: str) -> dict[str, Any]:
    return {"input": {"id": conversation_id, "modelId": "evil"}}


def delete_variables(conversation_id: str) -> dict[str, Any]:
    return {"input": {"id": conversation_id}}


def add_variables(conversation_id: str) -> dict[str, Any]:
    return {"input": {"conversationId": conversation_id, "role": "USER", "content": "x"}}


async def get(api: Api, user: str, conversation_id: str) -> dict[str, Any] | None:
    data = await api.data(GET, {"id": conversation_id}, user=user)
    conversation: dict[str, Any] | None = data["conversation"]
    return conversation


async def test_a_created_conversation_reads_back(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "  Trip plans  ", modelId="claude-x")
    assert created["title"] == "Trip plans"
    assert created["modelId"] == "claude-x"
    assert created["messageCount"] == 0
    assert created["version"] == 1
    assert created["createdAt"].endswith("Z")
    assert await get(api, alice, created["id"]) == {**created, "lastMessage": None}


async def test_a_retried_create_with_the_same_id_creates_one_conversation(
    api: Api, alice: str
) -> None:
    conversation_id = new_id()
    first = await create_conversation(api, alice, "Once", id=conversation_id)
    again = await create_conversation(api, alice, "Once", id=conversation_id)
    assert again == first
    data = await api.data("{ conversations { totalCount } }", user=alice)
    assert data["conversations"]["totalCount"] == 1


async def test_a_missing_conversation_is_null(api: Api, alice: str) -> None:
    assert await get(api, alice, new_id()) is None


async def test_the_list_is_most_recently_updated_first(api: Api, alice: str) -> None:
    older = await create_conversation(api, alice, "older")
    newer = await create_conversation(api, alice, "newer")
    await add_messages(api, alice, older["id"], ["bump"])
    data = await api.data(LIST, {}, user=alice)
    ids = [edge["node"]["id"] for edge in data["conversations"]["edges"]]
    assert ids == [older["id"], newer["id"]]


@pytest.mark.parametrize("query", [LIST, LIST_BY_PAGE_INFO], ids=["edge-cursors", "page-info-only"])
async def test_conversations_page_both_ways_with_exact_page_info(
    api: Api, alice: str, query: str
) -> None:
    created = [await create_conversation(api, alice, f"c{index}") for index in range(7)]
    newest_first = [conversation["id"] for conversation in reversed(created)]

    seen: list[str] = []
    after = None
    pages = 0
    while True:
        page = (await api.data(query, {"first": 3, "after": after}, user=alice))["conversations"]
        seen += [edge["node"]["id"] for edge in page["edges"]]
        pages += 1
        assert page["pageInfo"]["hasPreviousPage"] is (pages > 1)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == newest_first
    assert pages == 3

    back: list[str] = []
    before = None
    while True:
        page = (await api.data(query, {"last": 3, "before": before}, user=alice))["conversations"]
        back = [edge["node"]["id"] for edge in page["edges"]] + back
        # `last` without `before` is the end of the list; every later page has one after it.
        assert page["pageInfo"]["hasNextPage"] is (before is not None)
        if not page["pageInfo"]["hasPreviousPage"]:
            break
        before = page["pageInfo"]["startCursor"]
    assert back == newest_first


async def test_an_exactly_full_last_page_says_there_is_no_next_page(api: Api, alice: str) -> None:
    for index in range(4):
        await create_conversation(api, alice, f"c{index}")
    page = (await api.data(LIST, {"first": 2}, user=alice))["conversations"]
    page = (await api.data(LIST, {"first": 2, "after": page["pageInfo"]["endCursor"]}, user=alice))[
        "conversations"
    ]
    assert len(page["edges"]) == 2
    assert page["pageInfo"]["hasNextPage"] is False
    assert page["pageInfo"]["hasPreviousPage"] is True


async def test_an_empty_list_has_no_cursors(api: Api, alice: str) -> None:
    page = (await api.data(LIST, {}, user=alice))["conversations"]
    assert page == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_total_count_counts_every_conversation(api: Api, alice: str) -> None:
    for index in range(3):
        await create_conversation(api, alice, f"c{index}")
    data = await api.data("{ conversations(first: 1) { totalCount } }", user=alice)
    assert data["conversations"]["totalCount"] == 3


async def test_the_default_page_size_applies(api: Api, alice: str) -> None:
    default = api.services.settings.limits.default_page_size
    for index in range(default + 1):
        await create_conversation(api, alice, f"c{index}")
    page = (await api.data(LIST, {}, user=alice))["conversations"]
    assert len(page["edges"]) == default
    assert page["pageInfo"]["hasNextPage"] is True


async def test_rename_trims_bumps_the_version_and_moves_the_conversation_up(
    api: Api, alice: str
) -> None:
    renamed_one = await create_conversation(api, alice, "first")
    await create_conversation(api, alice, "second")
    data = await api.data(
        RENAME, {"input": {"id": renamed_one["id"], "title": " Renamed "}}, user=alice
    )
    renamed = data["renameConversation"]["conversation"]
    assert renamed["title"] == "Renamed"
    assert renamed["version"] == 2
    assert renamed["updatedAt"] > renamed_one["updatedAt"]
    listed = (await api.data(LIST, {"first": 1}, user=alice))["conversations"]["edges"]
    assert listed[0]["node"] == {
        "id": renamed_one["id"],
        "title": "Renamed",
        "updatedAt": renamed["updatedAt"],
    }


async def test_a_stale_expected_version_is_a_conflict_and_changes_nothing(
    api: Api, alice: str
) -> None:
    created = await create_conversation(api, alice, "original")
    await api.data(RENAME, {"input": {"id": created["id"], "title": "v2"}}, user=alice)
    error = await api.error(
        RENAME,
        {"input": {"id": created["id"], "title": "lost update", "expectedVersion": 1}},
        user=alice,
    )
    assert error["extensions"]["code"] == "CONFLICT"
    current = await get(api, alice, created["id"])
    assert current is not None
    assert (current["title"], current["version"]) == ("v2", 2)


async def test_a_matching_expected_version_applies(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "original")
    data = await api.data(
        RENAME,
        {"input": {"id": created["id"], "title": "safe", "expectedVersion": 1}},
        user=alice,
    )
    assert data["renameConversation"]["conversation"]["version"] == 2


async def test_update_changes_the_model_and_leaves_the_title(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "keep me", modelId="old-model")
    data = await api.data(
        UPDATE, {"input": {"id": created["id"], "modelId": "new-model"}}, user=alice
    )
    updated = data["updateConversation"]["conversation"]
    assert (updated["title"], updated["modelId"], updated["version"]) == (
        "keep me",
        "new-model",
        2,
    )


async def test_update_with_a_null_model_clears_it(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "t", modelId="old-model")
    data = await api.data(UPDATE, {"input": {"id": created["id"], "modelId": None}}, user=alice)
    assert data["updateConversation"]["conversation"]["modelId"] is None
    assert (await get(api, alice, created["id"]) or {})["modelId"] is None


async def test_update_with_nothing_to_change_is_refused(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "t")
    error = await api.error(UPDATE, {"input": {"id": created["id"]}}, user=alice)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "input"}


async def test_a_deleted_conversation_is_gone_with_its_messages(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "doomed")
    await add_messages(api, alice, created["id"], ["a", "b"])
    data = await api.data(DELETE, {"input": {"id": created["id"]}}, user=alice)
    assert data == {"deleteConversation": {"deletedConversationId": created["id"]}}
    assert await get(api, alice, created["id"]) is None
    error = await api.error(DELETE, {"input": {"id": created["id"]}}, user=alice)
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_mutations_on_a_missing_conversation_are_not_found(api: Api, alice: str) -> None:
    missing = new_id()
    for query, variables in (
        (RENAME, {"input": {"id": missing, "title": "x"}}),
        (UPDATE, {"input": {"id": missing, "modelId": "m"}}),
        (DELETE, {"input": {"id": missing}}),
    ):
        error = await api.error(query, variables, user=alice)
        assert error["extensions"] == {"code": "NOT_FOUND"}
        assert error["message"] == NOT_FOUND_MESSAGE


@pytest.mark.parametrize(
    ("title", "reason"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 201, "at most 200"),
        ("bell\x07", "control characters"),
        ("new\nline", "control characters"),
    ],
)
async def test_an_invalid_title_is_refused_naming_the_field(
    api: Api, alice: str, title: str, reason: str
) -> None:
    error = await api.error(
        "mutation($t: String!) { createConversation(input: {title: $t}) { conversation { id } } }",
        {"t": title},
        user=alice,
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}
    assert error["message"].startswith("title:")
    assert reason in error["message"]
    data = await api.data("{ conversations { totalCount } }", user=alice)
    assert data["conversations"]["totalCount"] == 0


async def test_a_title_of_exactly_200_characters_is_accepted(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "é" * 200)
    assert created["title"] == "é" * 200


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"id": "not-a-uuid"}, "id"),
        ({"id": "{12345678-1234-1234-1234-123456789abc}"}, "id"),
        ({"modelId": "m" * 129}, "modelId"),
    ],
)
async def test_invalid_create_fields_are_refused_naming_the_field(
    api: Api, alice: str, fields: dict[str, str], field: str
) -> None:
    error = await api.error(
        "mutation($i: CreateConversationInput!) "
        "{ createConversation(input: $i) { conversation { id } } }",
        {"i": {"title": "ok", **fields}},
        user=alice,
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_an_upper_case_uuid_names_the_same_conversation(api: Api, alice: str) -> None:
    created = await create_conversation(api, alice, "case")
    fetched = await get(api, alice, created["id"].upper())
    assert fetched is not None
    assert fetched["id"] == created["id"]


async def test_a_malformed_id_in_a_query_is_bad_input(api: Api, alice: str) -> None:
    error = await api.error(GET, {"id": "CONV#1"}, user=alice)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "id"}


# --- isolation ----------------------------------------------------------------------------


async def test_another_users_conversation_looks_exactly_like_a_missing_one(
    api: Api, alice: str, bob: str
) -> None:
    owned = await create_conversation(api, alice, "private", modelId="m1")
    await add_messages(api, alice, owned["id"], ["secret"])
    before = await get(api, alice, owned["id"])
    missing = new_id()

    assert await get(api, bob, owned["id"]) is None
    for query, make_variables in (
        (RENAME, rename_variables),
        (UPDATE, update_variables),
        (DELETE, delete_variables),
        (ADD_ONE, add_variables),
    ):
        foreign = await api.error(query, make_variables(owned["id"]), user=bob)
        absent = await api.error(query, make_variables(missing), user=bob)
        assert foreign == absent
        assert foreign["extensions"] == {"code": "NOT_FOUND"}

    assert await get(api, alice, owned["id"]) == before
    data = await api.data("{ conversations { totalCount edges { node { id } } } }", user=bob)
    assert data["conversations"] == {"totalCount": 0, "edges": []}


async def test_a_conversation_id_taken_by_another_user_cannot_be_created(
    api: Api, alice: str, bob: str
) -> None:
    conversation_id = new_id()
    await create_conversation(api, alice, "mine", id=conversation_id)
    error = await api.error(
        "mutation($i: CreateConversationInput!) "
        "{ createConversation(input: $i) { conversation { id } } }",
        {"i": {"id": conversation_id, "title": "theirs"}},
        user=bob,
    )
    assert error["extensions"]["code"] == "CONFLICT"
    assert (await get(api, alice, conversation_id) or {})["title"] == "mine"


async def test_users_lists_are_separate(api: Api) -> None:
    carol, dave = new_user(), new_user()
    await create_conversation(api, carol, "carol's")
    data = await api.data(LIST, {}, user=dave)
    assert data["conversations"]["edges"] == []
