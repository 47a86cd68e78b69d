"""The change feed: every write once, in commit order, versions without gaps, for its user only."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from graphql_api.domain.cursors import CursorCodec, SyncPosition
from graphql_api.gql.schema import build_schema
from tests.api.harness import Api, add_messages, create_conversation, new_id, new_user
from tests.apps import AppFactory
from tests.clock import MovableClock

FEED = """
query Feed($since: String, $first: Int) {
  changes(since: $since, first: $first) {
    syncToken hasMore resyncRequired
    changes {
      version kind conversationId syncToken
      conversation { id title version pinned }
      messages { id content }
    }
  }
}
"""

ADD = """
mutation Add($input: AddMessageInput!) { addMessage(input: $input) { message { id } } }
"""


async def feed(api: Api, user: str, since: str | None, first: int = 100) -> dict[str, Any]:
    data = await api.data(FEED, {"since": since, "first": first}, user=user)
    changes: dict[str, Any] = data["changes"]
    return changes


async def start(api: Api, user: str) -> str:
    """Where a new device starts: no changes, only the token."""
    now = await feed(api, user, None)
    assert now["changes"] == []
    assert (now["hasMore"], now["resyncRequired"]) == (False, False)
    token: str = now["syncToken"]
    return token


async def all_changes(api: Api, user: str, since: str, first: int = 100) -> list[dict[str, Any]]:
    """Every change after `since`, page by page."""
    found: list[dict[str, Any]] = []
    while True:
        page = await feed(api, user, since, first)
        found += page["changes"]
        since = page["syncToken"]
        if not page["hasMore"]:
            return found


# Every mutation of the schema, as one call each on a conversation `cid` (message `mid`).
WRITES: dict[str, tuple[str, str]] = {
    "createConversation": (
        'mutation($cid: ID) { createConversation(input: {id: $cid, title: "t"}) '
        "{ conversation { id } } }",
        "CONVERSATION_CREATED",
    ),
    "renameConversation": (
        'mutation($cid: ID!) { renameConversation(input: {id: $cid, title: "r"}) '
        "{ conversation { id } } }",
        "CONVERSATION_UPDATED",
    ),
    "updateConversation": (
        "mutation($cid: ID!) { updateConversation(input: {id: $cid, pinned: true, "
        'tags: ["a"]}) { conversation { id } } }',
        "CONVERSATION_UPDATED",
    ),
    "addMessage": (
        "mutation($cid: ID!, $mid: ID) { addMessage(input: {conversationId: $cid, id: $mid, "
        'role: USER, content: "q"}) { message { id } } }',
        "MESSAGES_ADDED",
    ),
    "addMessages": (
        "mutation($cid: ID!) { addMessages(input: {conversationId: $cid, messages: ["
        '{role: USER, content: "q2"}, {role: ASSISTANT, content: "a2"}]}) { messages { id } } }',
        "MESSAGES_ADDED",
    ),
    "startMessage": (
        "mutation($cid: ID!, $sid: ID) { startMessage(input: {conversationId: $cid, id: $sid}) "
        "{ message { id } } }",
        "MESSAGES_ADDED",
    ),
    "finishMessage": (
        "mutation($cid: ID!, $sid: ID!) { finishMessage(input: {conversationId: $cid, "
        "messageId: $sid, status: STOPPED, lastSeq: 0}) { message { id } } }",
        "MESSAGE_FINISHED",
    ),
    "setMessageFeedback": (
        "mutation($cid: ID!, $mid: ID!) { setMessageFeedback(input: {conversationId: $cid, "
        "messageId: $mid, rating: UP}) { message { id } } }",
        "CONVERSATION_UPDATED",
    ),
    "setActiveBranch": (
        "mutation($cid: ID!, $mid: ID!) { setActiveBranch(input: {conversationId: $cid, "
        "leafId: $mid}) { conversation { id } } }",
        "CONVERSATION_UPDATED",
    ),
    "deleteConversation": (
        "mutation($cid: ID!) { deleteConversation(input: {id: $cid}) { deletedConversationId } }",
        "CONVERSATION_DELETED",
    ),
}
# Writes another issue owns; each is held to the same rule by its own tests (projects: in
# tests/api/test_projects.py).
NOT_HERE = {
    "importConversations",
    "deleteAllMyData",
    "createProject",
    "updateProject",
    "deleteProject",
    "moveConversation",
}
# Deltas never enter the change log (tests/api/test_streaming.py holds appends to it).
NO_CHANGE = {"appendMessage"}


def test_every_mutation_of_the_schema_is_held_to_one_change() -> None:
    mutation = build_schema()._schema.mutation_type
    assert mutation is not None
    assert set(mutation.fields) - NOT_HERE - NO_CHANGE == set(WRITES), (
        "a new mutation needs its check here"
    )


async def test_every_write_is_one_change_in_commit_order_with_versions_from_one(
    api: Api, alice: str
) -> None:
    since = await start(api, alice)
    ids = {"cid": new_id(), "mid": new_id(), "sid": new_id()}
    for mutation, _ in WRITES.values():
        variables = {name: value for name, value in ids.items() if f"${name}" in mutation}
        await api.data(mutation, variables, user=alice)

    changes = await all_changes(api, alice, since)

    assert [change["kind"] for change in changes] == [kind for _, kind in WRITES.values()]
    assert [change["version"] for change in changes] == list(range(1, len(WRITES) + 1))
    assert {change["conversationId"] for change in changes} == {ids["cid"]}
    added = [change["messages"] for change in changes if change["kind"] == "MESSAGES_ADDED"]
    # Deleted since: the messages are gone with their conversation, the changes stay.
    assert added == [[], [], []]


async def test_a_change_carries_what_it_added_and_the_conversation_as_it_is_now(
    api: Api, alice: str
) -> None:
    since = await start(api, alice)
    conversation = await create_conversation(api, alice, "first title")
    await add_messages(api, alice, conversation["id"], ["question", "answer"])
    await api.data(
        'mutation($id: ID!) { renameConversation(input: {id: $id, title: "later"}) '
        "{ conversation { id } } }",
        {"id": conversation["id"]},
        user=alice,
    )

    created, added, renamed = await all_changes(api, alice, since)

    assert [c["conversation"]["title"] for c in (created, added, renamed)] == ["later"] * 3
    assert [m["content"] for m in added["messages"]] == ["question", "answer"]
    assert created["messages"] == renamed["messages"] == []


async def test_a_deleted_conversation_leaves_a_tombstone(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    since = await start(api, alice)
    await api.data(WRITES["deleteConversation"][0], {"cid": conversation["id"]}, user=alice)

    (tombstone,) = await all_changes(api, alice, since)

    assert tombstone["kind"] == "CONVERSATION_DELETED"
    assert tombstone["conversationId"] == conversation["id"]
    assert tombstone["conversation"] is None


async def test_twenty_changes_page_two_at_a_time_without_gap_or_repeat(
    api: Api, alice: str
) -> None:
    since = await start(api, alice)
    conversation = await create_conversation(api, alice)
    for index in range(19):
        await api.data(
            ADD,
            {
                "input": {
                    "conversationId": conversation["id"],
                    "role": "USER",
                    "content": f"{index}",
                }
            },
            user=alice,
        )

    pages = []
    token = since
    while True:
        page = await feed(api, alice, token, first=2)
        pages.append([change["version"] for change in page["changes"]])
        token = page["syncToken"]
        if not page["hasMore"]:
            break

    assert [version for page in pages for version in page] == list(range(1, 21))
    assert all(len(page) == 2 for page in pages)
    assert len(pages) == 10
    # Nothing new: an empty page whose token still works.
    quiet = await feed(api, alice, token)
    assert (quiet["changes"], quiet["hasMore"]) == ([], False)
    assert (await feed(api, alice, quiet["syncToken"]))["changes"] == []


async def test_each_changes_token_resumes_just_after_it(api: Api, alice: str) -> None:
    since = await start(api, alice)
    conversation = await create_conversation(api, alice)
    await add_messages(api, alice, conversation["id"], ["a", "b"])
    await add_messages(api, alice, conversation["id"], ["c", "d"])

    created, *_ = await all_changes(api, alice, since)
    after_created = await all_changes(api, alice, created["syncToken"])

    assert [change["version"] for change in after_created] == [2, 3]


async def test_anothers_feed_never_shows_yours_and_your_token_is_refused_to_them(
    api: Api, alice: str, bob: str
) -> None:
    alices_token = await start(api, alice)
    bobs_token = await start(api, bob)
    await create_conversation(api, alice)

    assert await all_changes(api, bob, bobs_token) == []
    error = await api.error(FEED, {"since": alices_token}, user=bob)
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        "BAD_USER_INPUT",
        "since",
    )


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage"])
async def test_a_tampered_token_is_bad_input(api: Api, alice: str, damage: str) -> None:
    token = await start(api, alice)
    tampered = {
        "flip": token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1],
        "truncate": token[:-4],
        "garbage": "not a token",
    }[damage]

    error = await api.error(FEED, {"since": tampered}, user=alice)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_token_older_than_the_retention_asks_for_a_resync(api: Api, alice: str) -> None:
    await create_conversation(api, alice)
    retention = api.services.settings.retention.change_retention
    codec = CursorCodec(secret=api.services.settings.effective_cursor_secret, user_id=alice)
    stale = codec.sync_token(
        SyncPosition(version=0, issued_at=api.services.table.clock() - retention - timedelta(1))
    )

    page = await feed(api, alice, stale)

    assert page["resyncRequired"] is True
    assert page["changes"] == []
    # Reload, then go on from the token it gave: nothing is missed from there.
    assert (await feed(api, alice, page["syncToken"]))["resyncRequired"] is False


async def test_changes_past_the_retention_ask_for_a_resync_not_a_partial_feed(
    make_api: AppFactory,
) -> None:
    clock = MovableClock()
    async with make_api(clock=clock) as api:
        settings = api.services.settings
        user = new_user()
        since = await start(api, user)
        await create_conversation(api, user)
        clock.advance(settings.retention.change_retention - timedelta(hours=1))
        await create_conversation(api, user)
        after_first = (await all_changes(api, user, since))[0]["syncToken"]
        clock.advance(timedelta(hours=2))
        # Change 1 is past the retention now, change 2 is not. A token handed out just now but
        # naming a place before change 1 must not get change 2 alone.
        codec = CursorCodec(secret=settings.effective_cursor_secret, user_id=user)
        before_first = codec.sync_token(SyncPosition(version=0, issued_at=clock()))
        page = await feed(api, user, before_first)
        assert (page["resyncRequired"], page["changes"]) == (True, [])
        kept = await feed(api, user, after_first)
        assert kept["resyncRequired"] is False
        assert [change["version"] for change in kept["changes"]] == [2]


async def test_thirty_concurrent_adds_from_two_devices_are_thirty_changes_in_order(
    api: Api, alice: str
) -> None:
    since = await start(api, alice)
    conversations = [(await create_conversation(api, alice, f"c{n}"))["id"] for n in range(3)]
    first_write = 4
    contents = {f"m{n}" for n in range(30)}

    async def device(offset: int) -> None:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api.asgi), base_url="http://testserver"
        ) as http:
            for n in range(offset, 30, 2):
                body = {
                    "query": ADD,
                    "variables": {
                        "input": {
                            "conversationId": conversations[n % 3],
                            "role": "USER",
                            "content": f"m{n}",
                        }
                    },
                }
                response = await http.post("/graphql", json=body, headers=api.headers(alice))
                assert "errors" not in response.json(), response.text

    await asyncio.gather(device(0), device(1))

    changes = await all_changes(api, alice, since)
    added = [change for change in changes if change["kind"] == "MESSAGES_ADDED"]
    assert [change["version"] for change in changes] == list(range(1, 34))
    assert len(added) == 30
    assert added[0]["version"] == first_write
    seen = [message["content"] for change in added for message in change["messages"]]
    assert sorted(seen) == sorted(contents)


async def test_a_full_feed_page_is_at_most_three_requests_in_two_waves(
    api: Api, alice: str
) -> None:
    since = await start(api, alice)
    conversations = [(await create_conversation(api, alice, f"c{n}"))["id"] for n in range(5)]
    for n in range(40):
        await add_messages(api, alice, conversations[n % 5], [f"q{n}", f"a{n}"])

    with api.counting() as counter:
        page = await feed(api, alice, since, first=100)

    assert len(page["changes"]) == 45
    assert counter.count <= 3
    assert len(counter.waves) <= 2
    assert sorted(counter.operations) == ["BatchGetItem", "BatchGetItem", "Query"]
