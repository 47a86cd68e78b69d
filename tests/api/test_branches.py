"""Branches: edits and regenerates start new branches, nothing is ever lost, "< 2/3 >" works,
feedback, and the request budgets of reading along a branch."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.api.harness import Api, add_messages, create_conversation, new_id

ADD = """
mutation Add($input: AddMessageInput!) {
  addMessage(input: $input) { message { id parentId siblingIds } conversation { activeLeafId } }
}
"""
ADD_MANY = """
mutation AddMany($input: AddMessagesInput!) {
  addMessages(input: $input) { messages { id parentId } conversation { activeLeafId } }
}
"""
PATH = """
query Path($id: ID!, $last: Int, $before: String, $leaf: ID, $first: Int, $after: String) {
  conversation(id: $id) {
    activeLeafId
    messageCount
    lastMessage { id content }
    messages(last: $last, before: $before, leafId: $leaf, first: $first, after: $after) {
      edges { cursor node { id content parentId siblingIds } }
      pageInfo { hasPreviousPage hasNextPage startCursor endCursor }
    }
  }
}
"""
SWITCH = """
mutation Switch($input: SetActiveBranchInput!) {
  setActiveBranch(input: $input) {
    conversation { activeLeafId lastMessage { id content } version }
  }
}
"""
RATE = """
mutation Rate($input: SetMessageFeedbackInput!) {
  setMessageFeedback(input: $input) {
    message { id feedback { rating comment updatedAt } }
  }
}
"""


async def add(
    api: Api,
    user: str,
    conversation_id: str,
    content: str,
    *,
    parent: str | None = None,
    role: str = "USER",
) -> dict[str, Any]:
    fields: dict[str, Any] = {"conversationId": conversation_id, "role": role, "content": content}
    if parent is not None:
        fields["parentId"] = parent
    data = await api.data(ADD, {"input": fields}, user=user)
    added: dict[str, Any] = data["addMessage"]
    return added


async def branch(
    api: Api, user: str, conversation_id: str, *, leaf: str | None = None, page: int = 100
) -> list[dict[str, Any]]:
    """Every message of a branch, oldest first, paging back from its leaf."""
    nodes: list[dict[str, Any]] = []
    before = None
    while True:
        data = await api.data(
            PATH, {"id": conversation_id, "last": page, "before": before, "leaf": leaf}, user=user
        )
        connection = data["conversation"]["messages"]
        nodes = [edge["node"] for edge in connection["edges"]] + nodes
        if not connection["pageInfo"]["hasPreviousPage"]:
            return nodes
        before = connection["pageInfo"]["startCursor"]


async def conversation_of(api: Api, user: str, conversation_id: str) -> dict[str, Any]:
    data = await api.data(PATH, {"id": conversation_id, "last": 0}, user=user)
    found: dict[str, Any] = data["conversation"]
    return found


async def a_hundred_messages(api: Api, user: str) -> tuple[str, list[dict[str, Any]]]:
    conversation = await create_conversation(api, user)
    await add_messages(api, user, conversation["id"], [f"m{n}" for n in range(100)])
    return conversation["id"], await branch(api, user, conversation["id"])


async def test_without_a_parent_messages_continue_the_active_branch(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    first = await add(api, alice, conversation["id"], "hello")
    second = await add(api, alice, conversation["id"], "again")

    assert first["message"]["parentId"] is None
    assert second["message"]["parentId"] == first["message"]["id"]
    assert second["message"]["siblingIds"] == [second["message"]["id"]]
    assert second["conversation"]["activeLeafId"] == second["message"]["id"]


async def test_an_edit_in_the_middle_starts_a_branch_and_loses_nothing(
    api: Api, alice: str
) -> None:
    cid, original = await a_hundred_messages(api, alice)
    question = original[49]
    # An edit of message 50: a sibling of it, under the same parent, then its answer.
    data = await api.data(
        ADD_MANY,
        {
            "input": {
                "conversationId": cid,
                "messages": [
                    {"role": "USER", "content": "m49 edited", "parentId": question["parentId"]},
                    {"role": "ASSISTANT", "content": "new answer"},
                ],
            }
        },
        user=alice,
    )
    edited, answer = data["addMessages"]["messages"]
    assert data["addMessages"]["conversation"]["activeLeafId"] == answer["id"]

    active = await branch(api, alice, cid, page=30)
    assert [node["content"] for node in active] == [
        *(f"m{n}" for n in range(49)),
        "m49 edited",
        "new answer",
    ]
    assert active[49]["siblingIds"] == [question["id"], edited["id"]]
    # The first branch is whole, from its own leaf.
    old = await branch(api, alice, cid, leaf=original[-1]["id"], page=30)
    assert [node["content"] for node in old] == [f"m{n}" for n in range(100)]
    assert old[49]["siblingIds"] == [question["id"], edited["id"]]
    conversation = await conversation_of(api, alice, cid)
    assert conversation["messageCount"] == 102
    assert conversation["lastMessage"]["id"] == answer["id"]


async def test_regenerating_twice_then_flipping_between_the_three_answers(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    question = (await add(api, alice, cid, "why?"))["message"]
    answers = [(await add(api, alice, cid, "because", role="ASSISTANT"))["message"]]
    for text in ("because, really", "because, truly"):
        regenerated = await add(api, alice, cid, text, parent=question["id"], role="ASSISTANT")
        answers.append(regenerated["message"])
    ids = [answer["id"] for answer in answers]

    assert answers[-1]["siblingIds"] == ids
    for answer, text in zip(answers, ["because", "because, really", "because, truly"], strict=True):
        switched = await api.data(
            SWITCH, {"input": {"conversationId": cid, "leafId": answer["id"]}}, user=alice
        )
        assert switched["setActiveBranch"]["conversation"]["activeLeafId"] == answer["id"]
        assert switched["setActiveBranch"]["conversation"]["lastMessage"]["content"] == text
        path = await branch(api, alice, cid)
        assert [node["content"] for node in path] == ["why?", text]
        assert path[1]["siblingIds"] == ids


async def test_switching_to_any_message_follows_the_newest_children_to_a_leaf(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    root = (await add(api, alice, cid, "root"))["message"]
    await add_messages(api, alice, cid, ["a1", "a2"])
    # A newer branch under the root, which goes on for two more messages.
    newer = (await add(api, alice, cid, "b0", parent=root["id"]))["message"]
    await add_messages(api, alice, cid, ["b1", "b2"])
    # Back on the old branch, then switch to the root: the newest child at every fork wins.
    old_leaf = (await branch(api, alice, cid, leaf=None))[-1]
    await api.data(SWITCH, {"input": {"conversationId": cid, "leafId": root["id"]}}, user=alice)

    assert [node["content"] for node in await branch(api, alice, cid)] == [
        "root",
        "b0",
        "b1",
        "b2",
    ]
    assert newer["siblingIds"][-1] == newer["id"]
    assert old_leaf["content"] == "b2"


async def test_adding_to_an_older_branch_makes_it_active(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    question = (await add(api, alice, cid, "q"))["message"]
    first = (await add(api, alice, cid, "a1", role="ASSISTANT"))["message"]
    await add(api, alice, cid, "a2", parent=question["id"], role="ASSISTANT")

    follow_up = await add(api, alice, cid, "more on a1", parent=first["id"])

    assert follow_up["conversation"]["activeLeafId"] == follow_up["message"]["id"]
    assert [n["content"] for n in await branch(api, alice, cid)] == ["q", "a1", "more on a1"]


async def test_concurrent_adds_on_two_branches_both_land(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    question = (await add(api, alice, cid, "q"))["message"]
    left = (await add(api, alice, cid, "left", role="ASSISTANT"))["message"]
    right = (await add(api, alice, cid, "right", parent=question["id"], role="ASSISTANT"))[
        "message"
    ]

    on_left, on_right = await asyncio.gather(
        add(api, alice, cid, "more left", parent=left["id"]),
        add(api, alice, cid, "more right", parent=right["id"]),
    )

    for leaf, expected in [
        (on_left["message"]["id"], ["q", "left", "more left"]),
        (on_right["message"]["id"], ["q", "right", "more right"]),
    ]:
        assert [n["content"] for n in await branch(api, alice, cid, leaf=leaf)] == expected
    conversation_now = await conversation_of(api, alice, cid)
    assert conversation_now["messageCount"] == 5
    assert conversation_now["activeLeafId"] in {
        on_left["message"]["id"],
        on_right["message"]["id"],
    }


async def test_another_users_message_ids_are_answered_as_missing_ones(
    api: Api, alice: str, bob: str
) -> None:
    alices = await create_conversation(api, alice)
    alices_message = (await add(api, alice, alices["id"], "mine"))["message"]
    bobs = await create_conversation(api, bob)
    await add(api, bob, bobs["id"], "his")

    for query, variables in [
        (
            ADD,
            {
                "input": {
                    "conversationId": bobs["id"],
                    "role": "USER",
                    "content": "x",
                    "parentId": alices_message["id"],
                }
            },
        ),
        (SWITCH, {"input": {"conversationId": bobs["id"], "leafId": alices_message["id"]}}),
        (PATH, {"id": bobs["id"], "last": 5, "leaf": alices_message["id"]}),
        (
            ADD,
            {
                "input": {
                    "conversationId": bobs["id"],
                    "role": "USER",
                    "content": "x",
                    "parentId": new_id(),
                }
            },
        ),
        (SWITCH, {"input": {"conversationId": bobs["id"], "leafId": new_id()}}),
    ]:
        error = await api.error(query, variables, user=bob)
        assert error["extensions"]["code"] == "NOT_FOUND", (query, error)
    assert [n["content"] for n in await branch(api, alice, alices["id"])] == ["mine"]


async def test_feedback_is_set_changed_and_cleared_and_stays_with_its_owner(
    api: Api, alice: str, bob: str
) -> None:
    conversation = await create_conversation(api, alice)
    message = (await add(api, alice, conversation["id"], "answer", role="ASSISTANT"))["message"]
    target = {"conversationId": conversation["id"], "messageId": message["id"]}

    rated = await api.data(RATE, {"input": {**target, "rating": "UP"}}, user=alice)
    assert rated["setMessageFeedback"]["message"]["feedback"]["rating"] == "UP"
    changed = await api.data(
        RATE, {"input": {**target, "rating": "DOWN", "comment": "wrong year"}}, user=alice
    )
    assert changed["setMessageFeedback"]["message"]["feedback"]["comment"] == "wrong year"
    stored = await branch(api, alice, conversation["id"])
    assert stored[0]["id"] == message["id"]
    refused = await api.error(RATE, {"input": {**target, "rating": "UP"}}, user=bob)
    assert refused["extensions"]["code"] == "NOT_FOUND"
    cleared = await api.data(RATE, {"input": target}, user=alice)
    assert cleared["setMessageFeedback"]["message"]["feedback"] is None
    too_long = await api.error(RATE, {"input": {**target, "comment": "x" * 5000}}, user=alice)
    assert too_long["extensions"]["field"] == "comment"


async def test_parent_ids_only_name_the_message_before_after_the_first(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    error = await api.error(
        ADD_MANY,
        {
            "input": {
                "conversationId": conversation["id"],
                "messages": [
                    {"role": "USER", "content": "a"},
                    {"role": "USER", "content": "b", "parentId": new_id()},
                ],
            }
        },
        user=alice,
    )
    assert error["extensions"]["field"] == "messages[1].parentId"


# --- budgets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", ["linear", "three long branches", "regenerated twice", "last question edited"]
)
async def test_opening_the_active_branch_is_two_requests_in_one_wave(
    api: Api, alice: str, shape: str
) -> None:
    cid, messages = await a_hundred_messages(api, alice)
    if shape == "three long branches":
        # Edits at three places, each continued past a page: the newest is active.
        for fork in (10, 40, 70):
            await add(api, alice, cid, f"edit at {fork}", parent=messages[fork]["id"])
            await add_messages(api, alice, cid, [f"e{fork}.{n}" for n in range(60)])
    elif shape == "regenerated twice":
        for text in ("again", "and again"):
            await add(api, alice, cid, text, parent=messages[-2]["id"], role="ASSISTANT")
    elif shape == "last question edited":
        await add(api, alice, cid, "better question", parent=messages[-3]["id"])
        await add(api, alice, cid, "its answer", role="ASSISTANT")

    with api.counting() as counter:
        data = await api.data(PATH, {"id": cid, "last": 50}, user=alice)

    assert len(data["conversation"]["messages"]["edges"]) == 50
    assert sorted(counter.operations) == ["BatchGetItem", "Query"]
    assert len(counter.waves) == 1


async def test_paging_back_along_a_branch_is_one_query_a_page(api: Api, alice: str) -> None:
    cid, _ = await a_hundred_messages(api, alice)
    before = (await api.data(PATH, {"id": cid, "last": 20}, user=alice))["conversation"][
        "messages"
    ]["pageInfo"]["startCursor"]

    with api.counting() as counter:
        await api.data(PATH, {"id": cid, "last": 20, "before": before}, user=alice)

    assert sorted(counter.operations) == ["BatchGetItem", "Query"]
    assert len(counter.waves) == 1


async def test_setting_feedback_and_switching_branches_are_one_write_each(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    question = (await add(api, alice, cid, "q"))["message"]
    answer = (await add(api, alice, cid, "a", role="ASSISTANT"))["message"]
    await add(api, alice, cid, "b", parent=question["id"], role="ASSISTANT")

    for mutation, variables in [
        (SWITCH, {"input": {"conversationId": cid, "leafId": answer["id"]}}),
        (RATE, {"input": {"conversationId": cid, "messageId": answer["id"], "rating": "UP"}}),
    ]:
        with api.counting() as counter:
            await api.data(mutation, variables, user=alice)
        assert counter.operations.count("TransactWriteItems") == 1
        assert "UpdateItem" not in counter.operations
