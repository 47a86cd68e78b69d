"""importConversations and deleteAllMyData over the API: kept times, order and branches;
idempotent; parts equal one call; bounded; isolated; erasure resumable to the end."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.domain import rules
from graphql_api.storage.imports import ConversationImport
from graphql_api.storage.items import PREVIEW_CHARS
from graphql_api.storage.records import format_timestamp
from tests.api.harness import Api, create_conversation, new_id, new_user
from tests.apps import AppFactory
from tests.import_builders import (
    EDITED,
    START,
    imported,
    long_branchy_shape,
    message_id,
    name_of,
)

IMPORT = """
mutation Import($input: ImportConversationsInput!) {
  importConversations(input: $input) {
    conversations {
      id title modelId createdAt updatedAt messageCount activeLeafId
      lastMessage { id content }
    }
  }
}
"""

DELETE_ALL = """
mutation { deleteAllMyData { done conversationsRemaining } }
"""

BRANCH = """
query Branch($id: ID!, $leaf: ID) {
  conversation(id: $id) {
    activeLeafId
    messages(last: 100, leafId: $leaf) {
      edges { node { id parentId role content createdAt modelId siblingIds } }
    }
  }
}
"""

HOME = """
query { conversations(first: 50) { edges { node { id updatedAt } } } }
"""

SYNC = """
query Sync($since: String) { changes(since: $since, first: 100) {
  syncToken resyncRequired changes { kind conversationId } } }
"""


def as_input(conversation: ConversationImport, **fields: Any) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "modelId": conversation.model_id,
        "createdAt": format_timestamp(conversation.created_at),
        "updatedAt": None
        if conversation.updated_at is None
        else format_timestamp(conversation.updated_at),
        "activeLeafId": conversation.active_leaf_id,
        "messages": [
            {
                "id": message.id,
                "parentId": message.parent_id,
                "role": message.role.upper(),
                "content": message.content,
                "createdAt": format_timestamp(message.created_at),
                "modelId": message.model_id,
            }
            for message in conversation.messages
        ],
        **fields,
    }


async def import_all(api: Api, user: str, *conversations: dict[str, Any]) -> list[dict[str, Any]]:
    data = await api.data(IMPORT, {"input": {"conversations": list(conversations)}}, user=user)
    result: list[dict[str, Any]] = data["importConversations"]["conversations"]
    return result


async def branch(api: Api, user: str, cid: str, leaf: str | None = None) -> dict[str, Any]:
    data = await api.data(BRANCH, {"id": cid, "leaf": leaf}, user=user)
    conversation: dict[str, Any] = data["conversation"]
    return conversation


async def test_an_import_keeps_times_and_branches_and_returns_the_conversation(
    api: Api, alice: str
) -> None:
    conversation = imported("api-keeps", EDITED, active_leaf="a2", updated_at=START + timedelta(1))

    (result,) = await import_all(api, alice, as_input(conversation))

    assert result == {
        "id": conversation.id,
        "title": "Imported",
        "modelId": "gpt-4o",
        "createdAt": "2023-03-04T05:06:07.000008Z",
        "updatedAt": "2023-03-05T05:06:07.000008Z",
        "messageCount": 7,
        "activeLeafId": message_id("api-keeps", "a2"),
        "lastMessage": {"id": message_id("api-keeps", "a2"), "content": "a2: api-keeps"},
    }
    active = await branch(api, alice, conversation.id)
    nodes = [edge["node"] for edge in active["messages"]["edges"]]
    given = {message.id: message for message in conversation.messages}
    assert [name_of("api-keeps", EDITED, node["id"]) for node in nodes] == ["q1", "a1", "q2", "a2"]
    for node in nodes:
        message = given[node["id"]]
        assert node["createdAt"] == format_timestamp(message.created_at)
        assert node["parentId"] == message.parent_id
        assert node["role"] == message.role.upper()
        assert node["modelId"] == message.model_id
    assert nodes[-1]["siblingIds"] == [message_id("api-keeps", n) for n in ("a2", "a2b")]
    edited = await branch(api, alice, conversation.id, message_id("api-keeps", "a2c"))
    assert [name_of("api-keeps", EDITED, e["node"]["id"]) for e in edited["messages"]["edges"]] == [
        "q1",
        "a1",
        "q2b",
        "a2c",
    ]


async def test_the_home_list_follows_the_imported_updated_at(api: Api) -> None:
    user = new_user()
    live = await create_conversation(api, user, "made today")
    old = imported(f"{user}-old", EDITED, updated_at=START + timedelta(days=1))
    older = imported(f"{user}-older", EDITED, start=START - timedelta(days=400))

    await import_all(api, user, as_input(old), as_input(older))

    data = await api.data(HOME, user=user)
    assert [edge["node"]["id"] for edge in data["conversations"]["edges"]] == [
        live["id"],
        old.id,
        older.id,
    ]


async def test_importing_again_returns_the_same_and_logs_no_change(api: Api, alice: str) -> None:
    conversation = as_input(imported(f"{alice}-again", EDITED))
    first = await import_all(api, alice, conversation)
    token = (await api.data(SYNC, user=alice))["changes"]["syncToken"]

    again = await import_all(api, alice, conversation)

    assert again == first
    changes = (await api.data(SYNC, {"since": token}, user=alice))["changes"]
    assert changes["changes"] == []
    assert not changes["resyncRequired"]


async def test_a_conversation_imported_in_several_calls_equals_one_call(api: Api) -> None:
    user = new_user()
    shape = long_branchy_shape(60)
    whole = imported(f"{user}-whole", shape, active_leaf="r49")
    parts = imported(f"{user}-parts", shape, active_leaf="r49")

    (at_once,) = await import_all(api, user, as_input(whole))
    for start in range(0, len(parts.messages), 25):
        piece = dataclasses.replace(parts, messages=parts.messages[start : start + 25])
        (in_parts,) = await import_all(api, user, as_input(piece))

    def named(namespace: str, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: named(namespace, item) for key, item in value.items() if key != "id"}
        if isinstance(value, list):
            return [named(namespace, item) for item in value]
        if isinstance(value, str) and value.count("-") == 4 and len(value) == 36:
            return name_of(namespace, shape, value)
        return value.replace(namespace, "") if isinstance(value, str) else value

    assert named(f"{user}-whole", at_once) == named(f"{user}-parts", in_parts)
    for leaf in (None, message_id(f"{user}-whole", "e24a")):
        other = None if leaf is None else message_id(f"{user}-parts", "e24a")
        one = await branch(api, user, whole.id, leaf)
        two = await branch(api, user, parts.id, other)
        assert named(f"{user}-whole", one) == named(f"{user}-parts", two)


def without_parents(conversation: dict[str, Any], *ids: str) -> dict[str, Any]:
    """The input with parentId left out of the messages of `ids` (of every one, without)."""
    messages = [
        {key: value for key, value in message.items() if key != "parentId"}
        if not ids or message["id"] in ids
        else message
        for message in conversation["messages"]
    ]
    return {**conversation, "messages": messages}


FLAT = [(f"m{index}", f"m{index - 1}" if index else None) for index in range(10)]


def thread_of(namespace: str, conversation: dict[str, Any]) -> list[tuple[str, str | None]]:
    """The active branch as (name, parent's name), first message first."""
    return [
        (
            name_of(namespace, FLAT, edge["node"]["id"]),
            edge["node"]["parentId"] and name_of(namespace, FLAT, edge["node"]["parentId"]),
        )
        for edge in conversation["messages"]["edges"]
    ]


async def test_a_flat_list_imports_as_one_thread_in_order(api: Api, alice: str) -> None:
    namespace = f"{alice}-flat"
    given = without_parents(as_input(imported(namespace, FLAT[:5])))

    (result,) = await import_all(api, alice, given)

    assert (result["messageCount"], result["activeLeafId"]) == (5, message_id(namespace, "m4"))
    assert result["lastMessage"] == {
        "id": message_id(namespace, "m4"),
        "content": f"m4: {namespace}",
    }
    thread = await branch(api, alice, result["id"])
    assert thread_of(namespace, thread) == FLAT[:5]
    assert [edge["node"]["content"] for edge in thread["messages"]["edges"]] == [
        f"m{index}: {namespace}" for index in range(5)
    ]


async def test_a_flat_list_imported_in_two_calls_continues_after_the_first(api: Api) -> None:
    user = new_user()
    namespace = f"{user}-two-calls"
    given = without_parents(as_input(imported(namespace, FLAT)))

    (first,) = await import_all(api, user, {**given, "messages": given["messages"][:5]})
    (second,) = await import_all(api, user, {**given, "messages": given["messages"][5:]})

    assert (first["messageCount"], second["messageCount"]) == (5, 10)
    assert second["lastMessage"]["id"] == message_id(namespace, "m9")
    assert thread_of(namespace, await branch(api, user, given["id"])) == FLAT


async def test_a_flat_list_imported_again_returns_the_same_and_logs_no_change(api: Api) -> None:
    user = new_user()
    namespace = f"{user}-flat-again"
    given = without_parents(as_input(imported(namespace, FLAT)))
    first = await import_all(api, user, given)
    token = (await api.data(SYNC, user=user))["changes"]["syncToken"]

    again = await import_all(api, user, given)
    part = await import_all(api, user, {**given, "messages": given["messages"][3:6]})

    assert again == part == first
    changes = (await api.data(SYNC, {"since": token}, user=user))["changes"]
    assert changes["changes"] == []
    assert thread_of(namespace, await branch(api, user, given["id"])) == FLAT


async def test_parent_id_omitted_null_and_given_mix_in_one_list(api: Api) -> None:
    user = new_user()
    namespace = f"{user}-mixed"
    # q2 starts over (null); a1b answers q1 again (given); the rest say nothing, so each
    # follows the message before it in the list.
    shape = [
        ("q1", None),
        ("a1", "q1"),
        ("q2", None),
        ("a2", "q2"),
        ("a1b", "q1"),
        ("q3", "a1b"),
    ]
    omitted = [message_id(namespace, name) for name in ("q1", "a1", "a2", "q3")]
    given = without_parents(as_input(imported(namespace, shape)), *omitted)
    assert [("parentId" in m, m.get("parentId")) for m in given["messages"]] == [
        (False, None),
        (False, None),
        (True, None),
        (False, None),
        (True, message_id(namespace, "q1")),
        (False, None),
    ]

    (result,) = await import_all(api, user, given)

    assert (result["messageCount"], result["activeLeafId"]) == (6, message_id(namespace, "q3"))
    active = (await branch(api, user, given["id"]))["messages"]["edges"]
    assert [name_of(namespace, shape, edge["node"]["id"]) for edge in active] == ["q1", "a1b", "q3"]
    assert [name_of(namespace, shape, i) for i in active[0]["node"]["siblingIds"]] == ["q1", "q2"]
    assert [name_of(namespace, shape, i) for i in active[1]["node"]["siblingIds"]] == ["a1", "a1b"]
    other = await branch(api, user, given["id"], message_id(namespace, "a2"))
    assert [
        (name_of(namespace, shape, edge["node"]["id"]), edge["node"]["parentId"])
        for edge in other["messages"]["edges"]
    ] == [("q2", None), ("a2", message_id(namespace, "q2"))]


async def test_another_users_conversation_id_is_a_conflict(api: Api, alice: str, bob: str) -> None:
    conversation = as_input(imported(f"{alice}-mine", EDITED))
    await import_all(api, alice, conversation)

    error = await api.error(IMPORT, {"input": {"conversations": [conversation]}}, user=bob)

    assert error["extensions"]["code"] == "CONFLICT"
    assert (await api.data(BRANCH, {"id": conversation["id"]}, user=bob))["conversation"] is None
    mine = await branch(api, alice, conversation["id"])
    assert len(mine["messages"]["edges"]) == 4


def many_messages(count: int, *, content: str = "hi") -> dict[str, Any]:
    shape = [("m0", None), *((f"m{i}", f"m{i - 1}") for i in range(1, count))]
    conversation = imported(f"bound-{count}-{len(content)}", shape)
    return as_input(dataclasses.replace(conversation, messages=conversation.messages))


@pytest.mark.parametrize(
    ("conversations", "message"),
    [
        (
            [many_messages(rules.IMPORT_MAX_MESSAGES + 1)],
            f"conversations: must hold at most {rules.IMPORT_MAX_MESSAGES} messages in one call",
        ),
        (
            [as_input(imported(f"many-{i}", [("q", None)])) for i in range(101)],
            "conversations: must be at most 100 in one call",
        ),
        (
            [
                {
                    **many_messages(8),
                    "messages": [
                        {**message, "content": "x" * 100_000}
                        for message in many_messages(8)["messages"]
                    ],
                }
            ],
            f"conversations: must hold at most {rules.IMPORT_MAX_BYTES} bytes of message content",
        ),
        ([], "conversations: must not be empty"),
    ],
    ids=["messages", "conversations", "bytes", "empty"],
)
async def test_a_call_over_the_bound_is_bad_input(
    api: Api, alice: str, conversations: list[dict[str, Any]], message: str
) -> None:
    error = await api.error(IMPORT, {"input": {"conversations": conversations}}, user=alice)

    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(message)


async def test_the_largest_call_within_the_bound_is_accepted(api: Api) -> None:
    user = new_user()
    conversation = many_messages(rules.IMPORT_MAX_MESSAGES)

    (result,) = await import_all(api, user, conversation)

    assert result["messageCount"] == rules.IMPORT_MAX_MESSAGES


async def test_a_message_larger_than_a_calls_content_goes_in_a_call_of_its_own(
    api: Api, alice: str
) -> None:
    conversation = as_input(imported(f"{alice}-large", [("q", None), ("a", "q")]))
    large = "é" * 600_000  # 1.2 MB of UTF-8: kept in the content bucket
    question, answer = conversation["messages"]
    answer = {**answer, "content": large}

    together = await api.error(
        IMPORT,
        {"input": {"conversations": [{**conversation, "messages": [question, answer]}]}},
        user=alice,
    )
    await import_all(api, alice, {**conversation, "messages": [question]})
    (alone,) = await import_all(api, alice, {**conversation, "messages": [answer]})

    assert together["extensions"]["code"] == "BAD_USER_INPUT"
    assert alone["messageCount"] == 2
    assert len(alone["lastMessage"]["content"]) == PREVIEW_CHARS
    read = await branch(api, alice, conversation["id"])
    assert [edge["node"]["content"] for edge in read["messages"]["edges"]] == [
        question["content"],
        large,
    ]


def refused_inputs() -> dict[str, tuple[dict[str, Any], str]]:
    conversation = as_input(imported("refused", EDITED))
    first, second, *rest = conversation["messages"]
    future = format_timestamp(datetime.now(UTC) + timedelta(days=3))
    return {
        "parent after child": (
            {**conversation, "messages": [second, first, *rest]},
            "conversations[0].messages[0].parentId",
        ),
        "same id twice": (
            {**conversation, "messages": [first, first]},
            "conversations[0].messages[1].id",
        ),
        "future": ({**conversation, "createdAt": future}, "conversations[0].createdAt"),
        "updated before created": (
            {**conversation, "updatedAt": "2001-01-01T00:00:00Z"},
            "conversations[0].updatedAt",
        ),
        "naive time": (
            {**conversation, "messages": [{**first, "createdAt": "2023-01-01T00:00:00"}]},
            "Variable '$input' has invalid value at .conversations[0].messages[0].createdAt",
        ),
        "not a uuid": ({**conversation, "id": "conversation-1"}, "conversations[0].id"),
        "empty title": ({**conversation, "title": "  "}, "conversations[0].title"),
    }


@pytest.mark.parametrize("case", list(refused_inputs()))
async def test_bad_conversations_are_refused_with_the_field_at_fault(
    api: Api, alice: str, case: str
) -> None:
    conversation, field = refused_inputs()[case]

    body = await api.run(IMPORT, {"input": {"conversations": [conversation]}}, user=alice)

    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(field)
    assert (await api.data(HOME, user=alice))["conversations"]["edges"] == []


# --- deleteAllMyData -----------------------------------------------------------------------


@dataclasses.dataclass
class TickingClock:
    """Real time that also moves a second at every reading: a call's 5 s budget lasts a few
    units, so erasing even a small account takes several calls."""

    ticks: int = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return datetime.now(UTC) + timedelta(seconds=self.ticks)


@pytest_asyncio.fixture
async def ticking_api(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(clock=TickingClock()) as running:
        yield running


async def test_delete_all_my_data_resumes_until_done_and_spares_other_users(
    ticking_api: Api,
) -> None:
    api = ticking_api
    alice, bob = new_user(), new_user()
    theirs = await import_all(api, bob, as_input(imported(f"{bob}-kept", EDITED)))
    for index in range(4):
        conversation = imported(f"{alice}-{index}", long_branchy_shape(40))
        await import_all(api, alice, as_input(conversation))
    # A device that synced before the erasure.
    token = (await api.data(SYNC, user=alice))["changes"]["syncToken"]
    await create_conversation(api, alice, "made here")

    calls = []
    for _ in range(50):
        calls.append((await api.data(DELETE_ALL, user=alice))["deleteAllMyData"])
        if calls[-1]["done"]:
            break

    assert len(calls) > 1
    assert calls[-1] == {"done": True, "conversationsRemaining": 0}
    remaining = [call["conversationsRemaining"] for call in calls]
    assert remaining == sorted(remaining, reverse=True)
    assert (await api.data(HOME, user=alice))["conversations"]["edges"] == []
    changes = (await api.data(SYNC, {"since": token}, user=alice))["changes"]
    assert changes["resyncRequired"]
    home = (await api.data(HOME, user=bob))["conversations"]["edges"]
    assert [edge["node"]["id"] for edge in home] == [theirs[0]["id"]]
    kept = await branch(api, bob, theirs[0]["id"])
    assert len(kept["messages"]["edges"]) == 4


async def test_delete_all_my_data_on_an_empty_account_is_done_at_once(api: Api) -> None:
    data = await api.data(DELETE_ALL, user=new_user())

    assert data["deleteAllMyData"] == {"done": True, "conversationsRemaining": 0}


# --- streamed messages (issue 21)

STREAMED = """
query Streamed($id: ID!) {
  conversation(id: $id) {
    lastMessage { status }
    messages(last: 5) { edges { node { id content status streamSeq } } }
  }
}
"""
APPEND = """
mutation($i: AppendMessageInput!) { appendMessage(input: $i) { seq length } }
"""
FINISH = """
mutation($i: FinishMessageInput!) { finishMessage(input: $i) { message { content status } } }
"""


async def test_an_imported_streaming_message_reads_interrupted_and_goes_on_when_finished(
    api: Api,
) -> None:
    user = new_user()
    cid, question, answer, stopped = (new_id() for _ in range(4))
    at = datetime.now(UTC) - timedelta(hours=2)
    messages = [
        {
            "id": question,
            "role": "USER",
            "content": "Tell me a story",
            "createdAt": format_timestamp(at),
        },
        {
            "id": answer,
            "parentId": question,
            "role": "ASSISTANT",
            "content": "Once upon",
            "createdAt": format_timestamp(at + timedelta(seconds=1)),
            "status": "STREAMING",
        },
        {
            "id": stopped,
            "parentId": question,
            "role": "ASSISTANT",
            "content": "",
            "createdAt": format_timestamp(at + timedelta(seconds=2)),
            "status": "STOPPED",
        },
    ]
    conversation = {
        "id": cid,
        "title": "Imported mid-stream",
        "createdAt": format_timestamp(at),
        "activeLeafId": answer,
        "messages": messages,
    }
    await import_all(api, user, conversation)

    shown = (await api.data(STREAMED, {"id": cid}, user=user))["conversation"]
    assert shown["lastMessage"]["status"] == "INTERRUPTED"
    assert [edge["node"] for edge in shown["messages"]["edges"]][-1] == {
        "id": answer,
        "content": "Once upon",
        "status": "INTERRUPTED",
        "streamSeq": 0,
    }
    on = {"conversationId": cid, "messageId": answer}
    appended = await api.data(APPEND, {"i": {**on, "seq": 1, "delta": " a time"}}, user=user)
    assert appended["appendMessage"] == {"seq": 1, "length": len("Once upon a time")}
    finished = await api.data(FINISH, {"i": {**on, "status": "COMPLETE", "lastSeq": 1}}, user=user)
    assert finished["finishMessage"]["message"] == {
        "content": "Once upon a time",
        "status": "COMPLETE",
    }
    branch_of_stopped = await branch(api, user, cid, stopped)
    last = branch_of_stopped["messages"]["edges"][-1]["node"]
    assert (last["id"], last["content"]) == (stopped, "")


async def test_an_imported_complete_message_still_needs_text(api: Api) -> None:
    at = format_timestamp(datetime.now(UTC) - timedelta(days=1))
    conversation = {
        "id": new_id(),
        "title": "Empty",
        "createdAt": at,
        "messages": [{"id": new_id(), "role": "USER", "content": "", "createdAt": at}],
    }
    error = await api.error(IMPORT, {"input": {"conversations": [conversation]}}, user=new_user())
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT",
        "field": "conversations[0].messages[0].content",
    }
