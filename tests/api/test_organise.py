"""Organising a long history: pins, archive, tags, title search, temporary conversations."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.api.harness import Api, add_messages, create_conversation, new_user
from tests.apps import AppFactory
from tests.clock import MovableClock

LIST = """
query List($first: Int, $after: String, $last: Int, $before: String,
           $filter: ConversationFilter) {
  conversations(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    totalCount
    edges { cursor node { id title pinned archived tags expiresAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
UPDATE = """
mutation Update($input: UpdateConversationInput!) {
  updateConversation(input: $input) { conversation { id pinned archived tags version } }
}
"""
TAGS = "{ tags { tag count } }"
ONE = """
query One($id: ID!) {
  conversation(id: $id) { id messages(last: 10) { edges { node { content } } } }
}
"""


async def update(api: Api, user: str, conversation_id: str, **fields: Any) -> dict[str, Any]:
    data = await api.data(UPDATE, {"input": {"id": conversation_id, **fields}}, user=user)
    updated: dict[str, Any] = data["updateConversation"]["conversation"]
    return updated


async def titles(
    api: Api, user: str, *, page: int = 100, backward: bool = False, **filter: Any
) -> list[str]:
    """Every conversation of a list, walked a page at a time in one direction."""
    found: list[str] = []
    cursor = None
    while True:
        if backward:
            variables = {"last": page, "before": cursor, "filter": filter or None}
        else:
            variables = {"first": page, "after": cursor, "filter": filter or None}
        connection = (await api.data(LIST, variables, user=user))["conversations"]
        names = [edge["node"]["title"] for edge in connection["edges"]]
        info = connection["pageInfo"]
        if backward:
            found = names + found
            if not info["hasPreviousPage"]:
                return found
            cursor = info["startCursor"]
        else:
            found += names
            if not info["hasNextPage"]:
                return found
            cursor = info["endCursor"]


async def seven(api: Api, user: str) -> dict[str, str]:
    """c0..c6, c6 updated last; c1 and c4 pinned, c1 then c4."""
    ids = {f"c{n}": (await create_conversation(api, user, f"c{n}"))["id"] for n in range(7)}
    await update(api, user, ids["c1"], pinned=True)
    await update(api, user, ids["c4"], pinned=True)
    for name in ("c0", "c2", "c3", "c5", "c6"):
        await add_messages(api, user, ids[name], ["touch"])
    return ids


async def test_pinned_conversations_head_the_list_in_both_directions_across_pages(
    api: Api, alice: str
) -> None:
    await seven(api, alice)
    expected = ["c4", "c1", "c6", "c5", "c3", "c2", "c0"]

    assert await titles(api, alice, page=3) == expected
    assert await titles(api, alice, page=2, backward=True) == expected
    assert await titles(api, alice, page=2, pinned=True) == ["c4", "c1"]
    assert await titles(api, alice, page=2, pinned=False) == expected[2:]


async def test_archiving_moves_a_conversation_out_of_the_home_list_at_once_and_back(
    api: Api, alice: str
) -> None:
    ids = await seven(api, alice)
    await update(api, alice, ids["c5"], archived=True)
    await update(api, alice, ids["c1"], archived=True)

    assert await titles(api, alice) == ["c4", "c6", "c3", "c2", "c0"]
    assert await titles(api, alice, archived=True) == ["c1", "c5"]
    listed = (await api.data(LIST, {"first": 10, "filter": {"archived": True}}, user=alice))[
        "conversations"
    ]
    assert listed["totalCount"] == 2
    assert [edge["node"]["archived"] for edge in listed["edges"]] == [True, True]
    await update(api, alice, ids["c5"], archived=False)
    assert await titles(api, alice) == ["c4", "c5", "c6", "c3", "c2", "c0"]


async def test_archiving_mid_walk_repeats_nothing_and_skips_nothing_else(
    api: Api, alice: str
) -> None:
    ids = await seven(api, alice)
    first = (await api.data(LIST, {"first": 3}, user=alice))["conversations"]
    seen = [edge["node"]["title"] for edge in first["edges"]]
    # One not reached yet leaves; one already passed is archived and back (it moves to the top).
    await update(api, alice, ids["c2"], archived=True)
    await update(api, alice, ids["c6"], archived=True)
    await update(api, alice, ids["c6"], archived=False)
    cursor = first["pageInfo"]["endCursor"]
    while True:
        page = (await api.data(LIST, {"first": 3, "after": cursor}, user=alice))["conversations"]
        seen += [edge["node"]["title"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        cursor = page["pageInfo"]["endCursor"]

    assert seen == ["c4", "c1", "c6", "c5", "c3", "c0"]


async def test_tags_are_trimmed_told_apart_case_insensitively_and_filtered_on(
    api: Api, alice: str
) -> None:
    ids = await seven(api, alice)
    tagged = await update(api, alice, ids["c0"], tags=["  Work ", "work", "Travel"])
    await update(api, alice, ids["c3"], tags=["WORK"])
    await update(api, alice, ids["c6"], tags=["travel", "Éte"])

    assert tagged["tags"] == ["Work", "Travel"]
    assert await titles(api, alice, tag="work") == ["c3", "c0"]
    assert await titles(api, alice, tag="TRAVEL") == ["c6", "c0"]
    assert await titles(api, alice, tag="ete") == ["c6"]
    # Most used first; a tag is shown as it was last given.
    assert (await api.data(TAGS, user=alice))["tags"] == [
        {"tag": "travel", "count": 2},
        {"tag": "WORK", "count": 2},
        {"tag": "Éte", "count": 1},
    ]
    listed = (await api.data(LIST, {"first": 1, "filter": {"tag": "work"}}, user=alice))[
        "conversations"
    ]
    assert listed["totalCount"] == 2
    await update(api, alice, ids["c3"], tags=[])
    assert await titles(api, alice, tag="work") == ["c0"]


async def test_a_title_search_ignores_case_and_accents(api: Api, alice: str) -> None:
    for title in ("Café in Lisbon", "CAFE menu", "Naïve Bayes", "Plain title"):
        await create_conversation(api, alice, title)

    assert sorted(await titles(api, alice, titleContains="cafe")) == [
        "CAFE menu",
        "Café in Lisbon",
    ]
    assert await titles(api, alice, titleContains="CAFÉ IN") == ["Café in Lisbon"]
    assert await titles(api, alice, titleContains="naive") == ["Naïve Bayes"]
    assert await titles(api, alice, titleContains="nothing like it") == []


async def test_a_search_with_rare_matches_never_returns_an_empty_page_before_the_end(
    api: Api, alice: str
) -> None:
    for n in range(120):
        title = f"needle {n}" if n in (3, 60, 117) else f"hay {n}"
        await create_conversation(api, alice, title)

    pages = []
    cursor = None
    with api.counting() as counter:
        while True:
            variables = {"first": 1, "after": cursor, "filter": {"titleContains": "NEEDLE"}}
            connection = (await api.data(LIST, variables, user=alice))["conversations"]
            pages.append([edge["node"]["title"] for edge in connection["edges"]])
            if not connection["pageInfo"]["hasNextPage"]:
                break
            cursor = connection["pageInfo"]["endCursor"]

    assert pages == [["needle 117"], ["needle 60"], ["needle 3"]]
    # A search page reads the list a few hundred items a request: three pages, few requests.
    assert counter.operations.count("Query") <= 6


@pytest.mark.parametrize(
    ("tags", "field"),
    [
        ([f"t{n}" for n in range(21)], "tags"),
        ([""], "tags[0]"),
        (["   "], "tags[0]"),
        (["x" * 41], "tags[0]"),
        (["ok", "a\x00b"], "tags[1]"),
    ],
)
async def test_bad_tags_are_refused_naming_the_field(
    api: Api, alice: str, tags: list[str], field: str
) -> None:
    conversation = await create_conversation(api, alice)
    error = await api.error(UPDATE, {"input": {"id": conversation["id"], "tags": tags}}, user=alice)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)


@pytest.mark.parametrize(
    ("filter", "field"),
    [
        ({"titleContains": "x" * 10_240}, "titleContains"),
        ({"titleContains": "  "}, "titleContains"),
        ({"tag": "x" * 41}, "tag"),
    ],
)
async def test_bad_filters_are_refused_naming_the_field(
    api: Api, alice: str, filter: dict[str, str], field: str
) -> None:
    error = await api.error(LIST, {"first": 5, "filter": filter}, user=alice)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("BAD_USER_INPUT", field)


async def test_another_users_lists_tags_and_filters_never_show_yours(
    api: Api, alice: str, bob: str
) -> None:
    ids = await seven(api, alice)
    await update(api, alice, ids["c0"], tags=["secret"], archived=True)

    for filter in (
        {},
        {"archived": True},
        {"pinned": True},
        {"tag": "secret"},
        {"titleContains": "c"},
    ):
        assert await titles(api, bob, **filter) == []
    assert (await api.data(TAGS, user=bob))["tags"] == []
    refused = await api.error(UPDATE, {"input": {"id": ids["c1"], "pinned": False}}, user=bob)
    assert refused["extensions"]["code"] == "NOT_FOUND"


async def test_the_home_list_and_the_archive_are_one_query_a_page(api: Api, alice: str) -> None:
    ids = await seven(api, alice)
    await update(api, alice, ids["c3"], archived=True)
    for filter in (None, {"archived": True}, {"pinned": True}):
        with api.counting() as counter:
            await api.data(LIST, {"first": 3, "filter": filter}, user=alice)
        # The page, and the counter for totalCount, together.
        assert sorted(counter.operations) == ["GetItem", "Query"], filter
        assert len(counter.waves) == 1


# --- temporary conversations -------------------------------------------------------------


async def test_a_temporary_conversation_vanishes_from_every_read_at_its_time(
    make_api: AppFactory,
) -> None:
    clock = MovableClock()
    async with make_api(clock=clock) as api:
        user = new_user()
        kept = await create_conversation(api, user, "kept", tags=["x"])
        temporary = await api.data(
            'mutation { createConversation(input: {title: "gone soon", temporary: true, '
            'tags: ["x"]}) { conversation { id expiresAt } } }',
            user=user,
        )
        gone = temporary["createConversation"]["conversation"]
        await add_messages(api, user, gone["id"], ["a", "b"])
        retention = api.services.settings.retention.temporary_retention
        assert gone["expiresAt"] is not None

        assert await titles(api, user) == ["gone soon", "kept"]
        clock.advance(retention - timedelta(seconds=5))
        assert len(await titles(api, user)) == 2
        clock.advance(timedelta(seconds=10))

        assert await titles(api, user) == ["kept"]
        assert (await api.data(ONE, {"id": gone["id"]}, user=user))["conversation"] is None
        listed = (await api.data(LIST, {"first": 5}, user=user))["conversations"]
        assert listed["totalCount"] == 1
        assert (await api.data(TAGS, user=user))["tags"] == [{"tag": "x", "count": 1}]
        missing = await api.error(
            "mutation($id: ID!) { addMessage(input: {conversationId: $id, role: USER, "
            'content: "late"}) { message { id } } }',
            {"id": gone["id"]},
            user=user,
        )
        assert missing["extensions"]["code"] == "NOT_FOUND"
        # The next write sweeps it out of the counters for good.
        await update(api, user, kept["id"], pinned=True)
        listed = (await api.data(LIST, {"first": 5}, user=user))["conversations"]
        assert listed["totalCount"] == 1
