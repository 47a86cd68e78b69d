"""Messages over the API: adding (atomic, idempotent), validation, and paging with cursors."""

from __future__ import annotations

from typing import Any

import pytest

from graphql_api.storage.conversations import get_conversation
from tests.api.harness import Api, add_messages, create_conversation, new_id
from tests.factories import seed_messages

PAGE = """
query Page($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  conversation(id: $id) {
    messages(first: $first, after: $after, last: $last, before: $before) {
      edges { cursor node { id content } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
      totalCount
    }
  }
}
"""

ADD = """
mutation Add($input: AddMessageInput!) {
  addMessage(input: $input) {
    message { id conversationId role content createdAt modelId isError errorMessage }
    conversation { id updatedAt messageCount version lastMessage { id content } }
  }
}
"""

ADD_MANY = """
mutation AddMany($input: AddMessagesInput!) {
  addMessages(input: $input) {
    messages { id role content createdAt }
    conversation { messageCount lastMessage { id } }
  }
}
"""


async def page(api: Api, user: str, conversation_id: str, **args: Any) -> dict[str, Any]:
    data = await api.data(PAGE, {"id": conversation_id, **args}, user=user)
    messages: dict[str, Any] = data["conversation"]["messages"]
    return messages


def contents(messages_page: dict[str, Any]) -> list[str]:
    return [edge["node"]["content"] for edge in messages_page["edges"]]


async def test_add_message_returns_the_message_and_the_updated_conversation(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    data = await api.data(
        ADD,
        {
            "input": {
                "conversationId": conversation["id"],
                "role": "ASSISTANT",
                "content": "An answer.",
                "modelId": "model-1",
                "isError": True,
                "errorMessage": "cut short",
            }
        },
        user=alice,
    )
    message = data["addMessage"]["message"]
    assert {key: message[key] for key in ("role", "content", "modelId", "isError")} == {
        "role": "ASSISTANT",
        "content": "An answer.",
        "modelId": "model-1",
        "isError": True,
    }
    assert message["errorMessage"] == "cut short"
    assert message["conversationId"] == conversation["id"]
    assert data["addMessage"]["conversation"] == {
        "id": conversation["id"],
        "updatedAt": message["createdAt"],
        "messageCount": 1,
        "version": conversation["version"],
        "lastMessage": {"id": message["id"], "content": "An answer."},
    }


async def test_a_retried_add_with_the_same_id_stores_one_message(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    request = {
        "input": {
            "conversationId": conversation["id"],
            "id": new_id(),
            "role": "USER",
            "content": "once",
        }
    }
    first = await api.data(ADD, request, user=alice)
    retry = await api.data(ADD, request, user=alice)
    assert retry["addMessage"]["message"] == first["addMessage"]["message"]
    assert retry["addMessage"]["conversation"]["messageCount"] == 1
    assert contents(await page(api, alice, conversation["id"])) == ["once"]


async def test_reusing_a_message_id_for_other_content_is_a_conflict(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    message_id = new_id()
    base = {"conversationId": conversation["id"], "id": message_id, "role": "USER"}
    await api.data(ADD, {"input": {**base, "content": "original"}}, user=alice)
    error = await api.error(ADD, {"input": {**base, "content": "different"}}, user=alice)
    assert error["extensions"]["code"] == "CONFLICT"
    assert contents(await page(api, alice, conversation["id"])) == ["original"]


async def test_add_messages_stores_a_batch_in_order(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    data = await api.data(
        ADD_MANY,
        {
            "input": {
                "conversationId": conversation["id"],
                "messages": [
                    {"role": "USER", "content": "question"},
                    {"role": "ASSISTANT", "content": "answer", "modelId": "m"},
                ],
            }
        },
        user=alice,
    )
    stored = data["addMessages"]["messages"]
    assert [message["content"] for message in stored] == ["question", "answer"]
    assert stored[0]["createdAt"] < stored[1]["createdAt"]
    assert data["addMessages"]["conversation"] == {
        "messageCount": 2,
        "lastMessage": {"id": stored[1]["id"]},
    }


async def test_a_batch_over_the_limit_is_refused_and_nothing_is_stored(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    limit = api.services.settings.limits.max_batch_messages
    error = await api.error(
        ADD_MANY,
        {
            "input": {
                "conversationId": conversation["id"],
                "messages": [{"role": "USER", "content": "x"}] * (limit + 1),
            }
        },
        user=alice,
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "messages"}
    assert (await page(api, alice, conversation["id"]))["totalCount"] == 0


async def test_one_invalid_message_in_a_batch_stores_none(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    error = await api.error(
        ADD_MANY,
        {
            "input": {
                "conversationId": conversation["id"],
                "messages": [
                    {"role": "USER", "content": "fine"},
                    {"role": "ASSISTANT", "content": ""},
                ],
            }
        },
        user=alice,
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "messages[1].content"}
    assert contents(await page(api, alice, conversation["id"])) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"content": ""}, "content"),
        ({"id": "42"}, "id"),
        ({"conversationId": "not-a-uuid"}, "conversationId"),
        ({"modelId": "m" * 129}, "modelId"),
        ({"errorMessage": "e" * 4097}, "errorMessage"),
    ],
)
async def test_invalid_message_fields_are_refused_naming_the_field(
    api: Api, alice: str, fields: dict[str, str], field: str
) -> None:
    conversation = await create_conversation(api, alice)
    message = {"conversationId": conversation["id"], "role": "USER", "content": "x", **fields}
    error = await api.error(ADD, {"input": message}, user=alice)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    assert error["message"].startswith(f"{field}:")
    assert (await page(api, alice, conversation["id"]))["totalCount"] == 0


async def test_content_is_limited_in_utf8_bytes(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    limit = api.services.settings.limits.max_content_bytes
    at_limit = "€" * (limit // 3) + "x" * (limit % 3)
    assert len(at_limit.encode()) == limit
    stored = await add_messages(api, alice, conversation["id"], [at_limit])
    assert stored[0]["content"] == at_limit
    error = await api.error(
        ADD,
        {
            "input": {
                "conversationId": conversation["id"],
                "role": "USER",
                "content": at_limit + "x",
            }
        },
        user=alice,
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "content"}


async def test_a_batch_filling_the_request_body_limit_is_stored_whole(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    limit = api.services.settings.limits.max_content_bytes
    # As many maximum-size messages as one request body carries: the write to DynamoDB is
    # then over 1 MB, with the newest also copied into the conversation as its preview.
    count = (api.services.settings.max_body_bytes - 4096) // limit
    contents = [str(n) * limit for n in range(count)]
    stored = await add_messages(api, alice, conversation["id"], contents)
    assert [m["content"] for m in stored] == contents
    assert (await page(api, alice, conversation["id"]))["totalCount"] == count


async def test_an_unknown_role_is_bad_input(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    error = await api.error(
        ADD,
        {"input": {"conversationId": conversation["id"], "role": "ROBOT", "content": "x"}},
        user=alice,
    )
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "role" in error["message"]


async def test_adding_to_a_missing_conversation_is_not_found(api: Api, alice: str) -> None:
    error = await api.error(
        ADD, {"input": {"conversationId": new_id(), "role": "USER", "content": "x"}}, user=alice
    )
    assert error["extensions"] == {"code": "NOT_FOUND"}


# --- paging -------------------------------------------------------------------------------


async def test_no_arguments_give_the_newest_default_page_in_chronological_order(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    texts = [f"m{index:02d}" for index in range(25)]
    await add_messages(api, alice, conversation["id"], texts)
    newest = await page(api, alice, conversation["id"])
    assert contents(newest) == texts[-20:]
    assert newest["pageInfo"]["hasPreviousPage"] is True
    assert newest["pageInfo"]["hasNextPage"] is False
    assert newest["totalCount"] == 25


async def test_first_reads_from_the_oldest(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    texts = [f"m{index}" for index in range(5)]
    await add_messages(api, alice, conversation["id"], texts)
    oldest = await page(api, alice, conversation["id"], first=2)
    assert contents(oldest) == ["m0", "m1"]
    assert (oldest["pageInfo"]["hasPreviousPage"], oldest["pageInfo"]["hasNextPage"]) == (
        False,
        True,
    )


async def test_a_long_conversation_walks_both_ways_without_gaps_or_repeats_while_it_grows(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    # Seeded below the API: 250 messages through addMessages would cost 10 slow transactions.
    table = api.services.table
    record = await get_conversation(table, user_id=alice, conversation_id=cid)
    assert record is not None
    await seed_messages(table, record, 250, content="m{index:03d}")
    initial = [f"m{index:03d}" for index in range(250)]

    # Backward from the newest, as a chat screen scrolls up. Messages arriving meanwhile are
    # newer than the window, so the walk still sees each existing message exactly once.
    backward: list[str] = []
    before = None
    arrivals = 0
    while True:
        current = await page(api, alice, cid, last=30, before=before)
        backward = contents(current) + backward
        if arrivals < 3:
            await add_messages(api, alice, cid, [f"late-back-{arrivals}"])
            arrivals += 1
        if not current["pageInfo"]["hasPreviousPage"]:
            break
        before = current["pageInfo"]["startCursor"]
    assert backward == initial

    # Forward from the oldest: messages that arrive mid-walk are reached at the end.
    forward: list[str] = []
    after = None
    pages = 0
    while True:
        current = await page(api, alice, cid, first=40, after=after)
        forward += contents(current)
        pages += 1
        if pages in (2, 5):
            await add_messages(api, alice, cid, [f"late-forward-{pages}"])
        if not current["pageInfo"]["hasNextPage"]:
            break
        after = current["pageInfo"]["endCursor"]
    expected = [*initial, *(f"late-back-{index}" for index in range(3))]
    expected += ["late-forward-2", "late-forward-5"]
    assert forward == expected
    assert len(set(forward)) == len(forward)


async def test_paging_forward_from_the_newest_page_finds_nothing_new_until_a_message_arrives(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a", "b"])
    newest = await page(api, alice, conversation["id"], last=5)
    after = newest["pageInfo"]["endCursor"]
    assert contents(await page(api, alice, conversation["id"], first=5, after=after)) == []
    await add_messages(api, alice, conversation["id"], ["c"])
    following = await page(api, alice, conversation["id"], first=5, after=after)
    assert contents(following) == ["c"]
    assert following["pageInfo"]["hasPreviousPage"] is True


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"first": 1, "last": 1}, "first"),
        ({"first": 1, "before": "x"}, "before"),
        ({"last": 1, "after": "x"}, "after"),
        ({"first": -1}, "first"),
        ({"last": -5}, "last"),
        ({"last": 101}, "last"),
        ({"first": 101}, "first"),
    ],
)
async def test_invalid_page_arguments_are_bad_input(
    api: Api, alice: str, args: dict[str, Any], field: str
) -> None:
    conversation = await create_conversation(api, alice)
    error = await api.error(PAGE, {"id": conversation["id"], **args}, user=alice)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}


async def test_the_maximum_page_size_is_allowed(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    maximum = api.services.settings.limits.max_page_size
    assert (await page(api, alice, conversation["id"], last=maximum))["edges"] == []


# --- cursors ------------------------------------------------------------------------------


async def cursor_of_second_message(api: Api, user: str, conversation_id: str) -> str:
    current = await page(api, user, conversation_id, first=2)
    cursor: str = current["edges"][1]["cursor"]
    return cursor


async def test_a_cursor_from_another_conversation_is_refused(api: Api, alice: str) -> None:
    one, other = await create_conversation(api, alice), await create_conversation(api, alice)
    for conversation in (one, other):
        await add_messages(api, alice, conversation["id"], ["a", "b", "c"])
    cursor = await cursor_of_second_message(api, alice, one["id"])
    error = await api.error(PAGE, {"id": other["id"], "first": 1, "after": cursor}, user=alice)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_another_users_cursor_is_refused(api: Api, alice: str, bob: str) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a", "b", "c"])
    cursor = await cursor_of_second_message(api, alice, conversation["id"])
    bobs = await create_conversation(api, bob)
    error = await api.error(PAGE, {"id": bobs["id"], "last": 1, "before": cursor}, user=bob)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "before"}
    listing = await api.run(
        "query($a: String) { conversations(after: $a) { edges { cursor } } }",
        {"a": cursor},
        user=bob,
    )
    assert listing["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_a_conversation_cursor_is_refused_for_messages(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a"])
    listing = await api.data("{ conversations { edges { cursor } } }", user=alice)
    cursor = listing["conversations"]["edges"][0]["cursor"]
    error = await api.error(
        PAGE, {"id": conversation["id"], "first": 1, "after": cursor}, user=alice
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


@pytest.mark.parametrize(
    "mangle",
    [
        lambda cursor: cursor[:-1] + ("A" if cursor[-1] != "A" else "B"),
        lambda cursor: ("B" if cursor[0] == "A" else "A") + cursor[1:],
        lambda cursor: cursor[:-4],
        lambda cursor: cursor + "AAAA",
        lambda cursor: "!!!" + cursor,
        lambda cursor: "",
        lambda cursor: "x" * 10_000,
    ],
    ids=["last-char", "first-char", "truncated", "extended", "junk", "empty", "huge"],
)
async def test_a_tampered_cursor_is_bad_input_not_a_crash(
    api: Api, alice: str, mangle: Any
) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a", "b", "c"])
    cursor = await cursor_of_second_message(api, alice, conversation["id"])
    error = await api.error(
        PAGE, {"id": conversation["id"], "first": 1, "after": mangle(cursor)}, user=alice
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


# Each edge's cursor is signed only when the selection reads one; these must all agree.
EDGE_CURSOR_SHAPES = {
    "direct": ("edges { cursor node { id } }", ""),
    "aliased": ("edges { at: cursor node { id } }", ""),
    "fragment spread": (
        "edges { ...Place node { id } }",
        "fragment Place on MessageEdge { cursor }",
    ),
    "inline fragment": ("edges { ... on MessageEdge { cursor } node { id } }", ""),
    "edges in a fragment": (
        "...Edges",
        "fragment Edges on MessageConnection { edges { cursor node { id } } }",
    ),
}


def shaped_page(edges: str, fragments: str = "") -> str:
    return f"""
query Shaped($id: ID!, $last: Int, $before: String) {{
  conversation(id: $id) {{
    messages(last: $last, before: $before) {{
      {edges}
      pageInfo {{ hasPreviousPage startCursor endCursor }}
    }}
  }}
}}
{fragments}"""


async def test_edge_cursors_are_the_same_however_the_selection_asks_for_them(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], [f"m{index}" for index in range(6)])
    variables = {"id": conversation["id"], "last": 4}
    answers = {
        name: (await api.data(shaped_page(*shape), variables, user=alice))["conversation"][
            "messages"
        ]
        for name, shape in EDGE_CURSOR_SHAPES.items()
    }
    direct = [edge["cursor"] for edge in answers["direct"]["edges"]]
    assert len(set(direct)) == 4
    assert all(direct)
    assert [edge["at"] for edge in answers["aliased"]["edges"]] == direct
    for name in ("fragment spread", "inline fragment", "edges in a fragment"):
        assert [edge["cursor"] for edge in answers[name]["edges"]] == direct, name
    for answer in answers.values():
        assert answer["pageInfo"]["startCursor"] == direct[0]
        assert answer["pageInfo"]["endCursor"] == direct[-1]


async def test_without_edge_cursors_page_info_still_pages_through_every_message(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    texts = [f"m{index}" for index in range(7)]
    stored = await add_messages(api, alice, conversation["id"], texts)
    query = shaped_page("edges { node { id } }")
    seen: list[str] = []
    before = None
    for _ in range(4):
        variables = {"id": conversation["id"], "last": 3, "before": before}
        messages = (await api.data(query, variables, user=alice))["conversation"]["messages"]
        assert all(set(edge) == {"node"} for edge in messages["edges"])
        seen = [edge["node"]["id"] for edge in messages["edges"]] + seen
        if not messages["pageInfo"]["hasPreviousPage"]:
            break
        before = messages["pageInfo"]["startCursor"]
    assert seen == [message["id"] for message in stored]
