"""What each share link operation costs in DynamoDB requests, counted exactly, with the waves
they go out in: the public read of a 200-message link is two requests, making one is reading
its branch and one transaction."""

from __future__ import annotations

from collections import Counter

import pytest_asyncio

from tests.api.harness import Api, add_messages, create_conversation, new_user
from tests.api.test_operations import operation
from tests.api.test_share_links import BRANCH, CREATE, LINKS, OF_CONVERSATION, REVOKE, UPDATE, share

FORK = operation("ForkSharedConversation")
HOME_LINKS = """
{ conversations(first: 20) { edges { node { id shareLinks { id messageCount } } } } }
"""


@pytest_asyncio.fixture(scope="module")
async def long_link(api: Api) -> tuple[str, str, str]:
    """A user, a conversation of 200 messages of ordinary size (about 1 KB each), its link."""
    user = new_user()
    conversation = await create_conversation(api, user)
    await add_messages(
        api, user, conversation["id"], [f"{index} " + "words " * 170 for index in range(200)]
    )
    link = await share(api, user, conversation["id"])
    assert link["messageCount"] == 200
    return user, conversation["id"], link["id"]


async def test_reading_a_200_message_link_is_two_requests(
    api: Api, long_link: tuple[str, str, str]
) -> None:
    _, _, link_id = long_link
    with api.counting() as counter:
        response = await api.http.get(f"/shared/{link_id}", headers={"Accept": "application/json"})

    assert response.status_code == 200
    assert len(response.json()["messages"]) == 200
    # The snapshot (HEAD and its parts, one page: under 1 MB), then whether it still stands.
    assert counter.waves == [["Query"], ["BatchGetItem"]]


async def test_making_a_link_is_reading_its_branch_and_one_transaction(
    api: Api, long_link: tuple[str, str, str]
) -> None:
    user, conversation_id, _ = long_link
    with api.counting() as counter:
        await api.data(CREATE, {"conversationId": conversation_id}, user=user)

    # The conversation, its tree and PROFILE; the branch (one segment: one Query); the write.
    assert counter.waves == [["BatchGetItem"], ["Query"], ["TransactWriteItems"]]


async def test_a_branch_across_segments_is_read_in_one_wave(api: Api) -> None:
    user = new_user()
    conversation = await create_conversation(api, user)
    cid = conversation["id"]
    stored = await add_messages(api, user, cid, ["q1", "a1", "q2", "a2"])
    # An edit of the second question: the branch shared now crosses two segments.
    await api.data(
        BRANCH,
        {
            "input": {
                "conversationId": cid,
                "parentId": stored[1]["id"],
                "role": "USER",
                "content": "q2, edited",
            }
        },
        user=user,
    )

    with api.counting() as counter:
        await api.data(CREATE, {"conversationId": cid}, user=user)

    assert counter.waves == [["BatchGetItem"], ["Query", "Query"], ["TransactWriteItems"]]


async def test_updating_reads_the_link_first_and_revoking_is_one_transaction(
    api: Api, long_link: tuple[str, str, str]
) -> None:
    user, conversation_id, _ = long_link
    link = await share(api, user, conversation_id)
    with api.counting() as updating:
        await api.data(UPDATE, {"id": link["id"]}, user=user)
    with api.counting() as revoking:
        await api.data(REVOKE, {"id": link["id"]}, user=user)

    # The link and PROFILE, then its conversation, tree (and marker), then the branch.
    assert updating.waves == [
        ["BatchGetItem"],
        ["BatchGetItem"],
        ["Query"],
        ["TransactWriteItems"],
    ]
    assert revoking.waves == [["BatchGetItem"], ["TransactWriteItems"]]


async def test_the_lists_of_links_are_one_wave(api: Api) -> None:
    user = new_user()
    conversations = []
    for index in range(3):
        conversation = await create_conversation(api, user, f"c{index}")
        await add_messages(api, user, conversation["id"], ["q"])
        await share(api, user, conversation["id"])
        conversations.append(conversation)

    with api.counting() as listing:
        listed = await api.data(LINKS, user=user)
    with api.counting() as sheet:
        opened = await api.data(OF_CONVERSATION, {"id": conversations[0]["id"]}, user=user)
    with api.counting() as home:
        everywhere = await api.data(HOME_LINKS, user=user)

    assert listed["shareLinks"]["totalCount"] == 3
    # A page from GSI1, and the count from PROFILE beside it.
    assert sorted(listing.operations) == ["GetItem", "Query"]
    assert len(listing.waves) == 1
    assert len(opened["conversation"]["shareLinks"]) == 1
    assert sorted(sheet.operations) == ["BatchGetItem", "Query"]
    assert len(sheet.waves) == 1
    # A page, then every conversation's pointers at once.
    assert [len(edge["node"]["shareLinks"]) for edge in everywhere["conversations"]["edges"]] == [
        1,
        1,
        1,
    ]
    assert home.waves == [["Query"], ["Query"] * 3]


async def test_forking_is_the_public_read_then_an_import(
    api: Api, long_link: tuple[str, str, str]
) -> None:
    _, _, link_id = long_link
    with api.counting() as counter:
        forked = await api.data(FORK, {"shareId": link_id}, user=new_user())

    assert forked["forkSharedConversation"]["conversation"]["messageCount"] == 200
    # 200 messages in transactions of at most 47 (imports.MAX_MESSAGES_PER_TRANSACTION).
    assert Counter(counter.operations) == {
        "Query": 1,
        "BatchGetItem": 1 + 5,
        "TransactWriteItems": 5,
    }
    assert counter.waves[:2] == [["Query"], ["BatchGetItem"]]
