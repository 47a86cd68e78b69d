"""Answers saved as they stream, over GraphQL: start, append, finish, and every read mid-stream.

Two apps on one table are two instances, each with its own stream cache; an app with a
movable clock and small limits shows the lease and the bounds.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import aioboto3  # type: ignore[import-untyped]
import pytest
import pytest_asyncio

from graphql_api.settings import (
    INLINE_CONTENT_BYTES,
    ContentSettings,
    InputLimits,
    StreamingSettings,
)
from graphql_api.storage.deltas import read_deltas
from graphql_api.transfer import write_export
from graphql_api.transfer_cli import conversation_draft, exported
from tests.api.harness import Api, add_messages, create_conversation, sync_token
from tests.api.test_operations import operation
from tests.apps import AppFactory
from tests.clock import MovableClock
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.transfer_checks import imported, read_all

START = operation("StartMessage")
APPEND = operation("AppendMessage")
FINISH = operation("FinishMessage")
OPEN = """
query Open($id: ID!) {
  conversation(id: $id) {
    lastMessage { id content status streamSeq }
    messages(last: 5) { edges { node { id role content status streamSeq } } }
  }
}
"""
HOME = "{ conversations(first: 20) { edges { node { id lastMessage { content status } } } } }"
FEED = """
query Feed($since: String) {
  changes(since: $since) { changes { kind messages { id content status streamSeq } } }
}
"""
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
LEASE = timedelta(seconds=30)


@pytest_asyncio.fixture(scope="module")
async def twin(make_api: AppFactory) -> AsyncIterator[Api]:
    """A second instance of the same service on the same table: its own stream cache."""
    async with make_api() as running:
        yield running


@pytest.fixture(scope="module")
def clock() -> MovableClock:
    return MovableClock()


@pytest_asyncio.fixture(scope="module")
async def small(make_api: AppFactory, clock: MovableClock) -> AsyncIterator[Api]:
    """An app with small streaming limits, on a clock the test moves."""
    async with make_api(
        clock=clock,
        limits=InputLimits(max_content_bytes=40),
        streaming=StreamingSettings(
            lease_seconds=LEASE.total_seconds(), max_delta_bytes=8, max_streaming_messages=2
        ),
    ) as running:
        yield running


async def start(api: Api, user: str, conversation_id: str, **fields: Any) -> dict[str, Any]:
    data = await api.data(START, {"conversationId": conversation_id, **fields}, user=user)
    message: dict[str, Any] = data["startMessage"]["message"]
    return message


def appending(message: dict[str, Any], seq: int, delta: str) -> dict[str, Any]:
    return {
        "conversationId": message["conversationId"],
        "messageId": message["id"],
        "seq": seq,
        "delta": delta,
    }


async def append(
    api: Api, user: str, message: dict[str, Any], seq: int, delta: str
) -> dict[str, Any]:
    data = await api.data(APPEND, appending(message, seq, delta), user=user)
    appended: dict[str, Any] = data["appendMessage"]
    return appended


async def refused_append(
    api: Api, user: str, message: dict[str, Any], seq: int, delta: str
) -> dict[str, Any]:
    return await api.error(APPEND, appending(message, seq, delta), user=user)


def finishing(message: dict[str, Any], status: str, last_seq: int, **fields: Any) -> dict[str, Any]:
    return {
        "conversationId": message["conversationId"],
        "messageId": message["id"],
        "status": status,
        "lastSeq": last_seq,
        **fields,
    }


async def finish(
    api: Api, user: str, message: dict[str, Any], status: str, last_seq: int, **fields: Any
) -> dict[str, Any]:
    data = await api.data(FINISH, finishing(message, status, last_seq, **fields), user=user)
    finished: dict[str, Any] = data["finishMessage"]
    return finished


async def a_stream(api: Api, user: str, deltas: list[str]) -> dict[str, Any]:
    conversation = await create_conversation(api, user)
    message = await start(api, user, conversation["id"])
    for seq, delta in enumerate(deltas, start=1):
        await append(api, user, message, seq, delta)
    return message


async def opened(api: Api, user: str, conversation_id: str) -> dict[str, Any]:
    data = await api.data(OPEN, {"id": conversation_id}, user=user)
    conversation: dict[str, Any] = data["conversation"]
    return conversation


async def newest(api: Api, user: str, conversation_id: str) -> dict[str, Any]:
    node: dict[str, Any] = (await opened(api, user, conversation_id))["messages"]["edges"][-1][
        "node"
    ]
    return node


async def stored_deltas(api: Api, user: str, message: dict[str, Any]) -> list[tuple[str, bool]]:
    deltas = await read_deltas(
        api.services.table,
        user_id=user,
        conversation_id=message["conversationId"],
        message_id=message["id"],
    )
    return [(delta.text, delta.folded) for delta in deltas]


# --- the whole life of a streamed answer


async def test_an_answer_reads_as_it_streams_on_every_path_then_completes(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    (question,) = await add_messages(api, alice, conversation["id"], ["Why is the sky blue?"])
    since = await sync_token(api, alice)

    message = await start(api, alice, conversation["id"], modelId="model-1")
    assert (message["status"], message["streamSeq"], message["content"]) == ("STREAMING", 0, "")
    assert (message["role"], message["parentId"]) == ("ASSISTANT", question["id"])
    first = await append(api, alice, message, 1, "Rayleigh")
    second = await append(api, alice, message, 2, " scattering, ünï")
    assert (first["seq"], first["length"]) == (1, 8)
    assert (second["messageId"], second["seq"], second["length"]) == (message["id"], 2, 24)

    so_far = "Rayleigh scattering, ünï"
    shown = await opened(api, alice, conversation["id"])
    nodes = [edge["node"] for edge in shown["messages"]["edges"]]
    assert [(n["content"], n["status"], n["streamSeq"]) for n in nodes] == [
        ("Why is the sky blue?", "COMPLETE", None),
        (so_far, "STREAMING", 2),
    ]
    assert shown["lastMessage"] == {
        "id": message["id"],
        "content": so_far,
        "status": "STREAMING",
        "streamSeq": 2,
    }
    home = (await api.data(HOME, user=alice))["conversations"]["edges"]
    (row,) = [edge["node"] for edge in home if edge["node"]["id"] == conversation["id"]]
    assert row["lastMessage"] == {"content": so_far, "status": "STREAMING"}
    changes = (await api.data(FEED, {"since": since}, user=alice))["changes"]["changes"]
    assert changes == [
        {
            "kind": "MESSAGES_ADDED",
            "messages": [
                {"id": message["id"], "content": so_far, "status": "STREAMING", "streamSeq": 2}
            ],
        }
    ]

    finished = await finish(api, alice, message, "COMPLETE", 2)
    assert finished["message"] == {
        "id": message["id"],
        "content": so_far,
        "status": "COMPLETE",
        "streamSeq": None,
        "isError": False,
        "errorMessage": None,
    }
    assert finished["conversation"]["lastMessage"]["status"] == "COMPLETE"
    changes = (await api.data(FEED, {"since": since}, user=alice))["changes"]["changes"]
    assert [change["kind"] for change in changes] == ["MESSAGES_ADDED", "MESSAGE_FINISHED"]
    assert changes[1]["messages"] == [
        {"id": message["id"], "content": so_far, "status": "COMPLETE", "streamSeq": None}
    ]


async def test_a_write_answering_with_the_conversation_shows_its_preview_streamed(
    api: Api, alice: str
) -> None:
    message = await a_stream(api, alice, ["so", " far"])
    renamed = await api.data(
        'mutation($id: ID!) { renameConversation(input: {id: $id, title: "Renamed"}) '
        "{ conversation { lastMessage { content status streamSeq } } } }",
        {"id": message["conversationId"]},
        user=alice,
    )
    assert renamed["renameConversation"]["conversation"]["lastMessage"] == {
        "content": "so far",
        "status": "STREAMING",
        "streamSeq": 2,
    }


async def test_a_regenerated_answer_streams_on_a_new_branch(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    question, answer = await add_messages(api, alice, conversation["id"], ["Q", "first answer"])

    message = await start(api, alice, conversation["id"], parentId=question["id"])
    await append(api, alice, message, 1, "second answer")

    data = await api.data(
        "query($id: ID!) { conversation(id: $id) { messageCount activeLeafId messages { edges "
        "{ node { content siblingIds } } } } }",
        {"id": conversation["id"]},
        user=alice,
    )
    shown = data["conversation"]
    assert (shown["messageCount"], shown["activeLeafId"]) == (3, message["id"])
    assert [edge["node"] for edge in shown["messages"]["edges"]] == [
        {"content": "Q", "siblingIds": [question["id"]]},
        {"content": "second answer", "siblingIds": [answer["id"], message["id"]]},
    ]


# --- what an append costs


async def test_an_append_is_one_put_item_once_the_instance_knows_the_stream(
    api: Api, twin: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    message = await start(api, alice, conversation["id"])

    with api.counting() as counter:
        await append(api, alice, message, 1, "started here, ")
    assert counter.operations == ["PutItem"]
    with twin.counting() as counter:
        await append(twin, alice, message, 2, "cold there, ")
    assert [sorted(wave) for wave in counter.waves] == [["GetItem", "Query"], ["PutItem"]]
    with twin.counting() as counter:
        await append(twin, alice, message, 3, "then warm.")
    assert counter.operations == ["PutItem"]


async def test_a_finish_is_one_read_wave_one_transaction_then_batches_of_tombstones(
    api: Api, alice: str
) -> None:
    deltas = [f"{index} " for index in range(30)]
    message = await a_stream(api, alice, deltas)

    with api.counting() as counter:
        finished = await finish(api, alice, message, "COMPLETE", 30)

    assert [sorted(wave) for wave in counter.waves[:2]] == [
        ["BatchGetItem", "Query"],
        ["TransactWriteItems"],
    ]
    assert counter.operations[3:] == ["BatchWriteItem"] * math.ceil(30 / 25)
    assert finished["message"]["content"] == "".join(deltas)
    assert all(folded for _, folded in await stored_deltas(api, alice, message))


# --- idempotence and order


async def test_a_stored_seq_sent_again_is_answered_as_the_first_time_and_writes_nothing(
    api: Api, alice: str
) -> None:
    message = await a_stream(api, alice, ["one "])
    first = await append(api, alice, message, 2, "two ")

    with api.counting() as counter:
        again = await append(api, alice, message, 2, "two ")
        earlier = await append(api, alice, message, 1, "one ")

    assert again == first
    assert (earlier["seq"], earlier["length"]) == (1, 4)
    assert not WRITES & set(counter.operations)
    other = await refused_append(api, alice, message, 2, "deux ")
    assert other["extensions"]["code"] == "CONFLICT"
    assert (await newest(api, alice, message["conversationId"]))["content"] == "one two "


async def test_a_seq_past_the_next_is_a_conflict_carrying_the_expected_seq(
    api: Api, alice: str
) -> None:
    message = await a_stream(api, alice, ["a", "b"])

    refused = await refused_append(api, alice, message, 4, "d")

    assert refused["extensions"] == {"code": "CONFLICT", "expectedSeq": 3}
    assert "seq 3" in refused["message"]
    early = await api.error(FINISH, finishing(message, "COMPLETE", 5), user=alice)
    assert early["extensions"] == {"code": "CONFLICT", "expectedSeq": 3}


async def test_a_stale_cache_on_another_instance_cannot_append_to_a_finished_message(
    api: Api, twin: Api, alice: str
) -> None:
    message = await a_stream(api, alice, ["a"])
    # The twin learns the stream at seq 2, then this instance goes on and finishes it.
    await append(twin, alice, message, 2, "b")
    await append(api, alice, message, 3, "c")
    await append(api, alice, message, 4, "d")
    await finish(api, alice, message, "COMPLETE", 4)

    with twin.counting() as counter:
        # The twin's cache still says seq 2: it puts seq 3, a tombstone since the cleanup.
        stale = await refused_append(twin, alice, message, 3, "late")
        # Now it reads the stream, finished; and after the last delta is the finish's own.
        reread = await refused_append(twin, alice, message, 5, "later")
    again = await refused_append(api, alice, message, 5, "later")

    for refused in (stale, reread, again):
        assert refused["extensions"]["code"] == "CONFLICT"
        assert "finished" in refused["message"]
    assert counter.operations.count("PutItem") == 1
    assert await stored_deltas(api, alice, message) == [("", True)] * 5
    assert (await newest(api, alice, message["conversationId"]))["content"] == "abcd"


async def test_two_clients_retrying_the_same_seqs_at_once_store_the_text_once(
    api: Api, twin: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    message = await start(api, alice, conversation["id"])
    words = [f"word{index} " for index in range(10)]

    for seq, word in enumerate(words, start=1):
        answers = await asyncio.gather(
            append(api, alice, message, seq, word), append(twin, alice, message, seq, word)
        )
        assert answers[0] == answers[1]
        assert answers[0]["length"] == len("".join(words[:seq]))

    assert await stored_deltas(api, alice, message) == [(word, False) for word in words]
    finished = await finish(twin, alice, message, "COMPLETE", len(words))
    assert finished["message"]["content"] == "".join(words)


# --- the lease, stop and failure


async def test_an_answer_with_no_append_for_the_lease_reads_interrupted_and_can_still_finish(
    small: Api, clock: MovableClock, alice: str
) -> None:
    message = await a_stream(small, alice, ["Half an", " answer"])
    clock.advance(LEASE - timedelta(seconds=1))
    assert (await newest(small, alice, message["conversationId"]))["status"] == "STREAMING"

    clock.advance(timedelta(seconds=2))
    shown = await opened(small, alice, message["conversationId"])
    assert shown["lastMessage"]["status"] == "INTERRUPTED"
    node = shown["messages"]["edges"][-1]["node"]
    assert (node["content"], node["status"], node["streamSeq"]) == (
        "Half an answer",
        "INTERRUPTED",
        2,
    )

    clock.advance(timedelta(minutes=10))
    finished = await finish(small, alice, message, "COMPLETE", 2)
    assert (finished["message"]["status"], finished["message"]["content"]) == (
        "COMPLETE",
        "Half an answer",
    )


async def test_a_stop_is_a_finish_as_stopped_and_a_failure_carries_its_error(
    api: Api, alice: str
) -> None:
    stopped = await a_stream(api, alice, ["Once upon"])
    failed = await a_stream(api, alice, [])

    as_stopped = await finish(api, alice, stopped, "STOPPED", 1)
    as_failed = await finish(api, alice, failed, "FAILED", 0, errorMessage="model overloaded")

    assert (as_stopped["message"]["status"], as_stopped["message"]["content"]) == (
        "STOPPED",
        "Once upon",
    )
    assert as_failed["message"] == {
        "id": failed["id"],
        "content": "",
        "status": "FAILED",
        "streamSeq": None,
        "isError": True,
        "errorMessage": "model overloaded",
    }
    # The same finish again is a retry; another is a conflict.
    assert (await finish(api, alice, stopped, "STOPPED", 1))["message"] == as_stopped["message"]
    other = await api.error(FINISH, finishing(stopped, "COMPLETE", 1), user=alice)
    assert other["extensions"]["code"] == "CONFLICT"
    other_stream = await a_stream(api, alice, ["x"])
    misplaced = await api.error(
        FINISH, finishing(other_stream, "STOPPED", 1, errorMessage="?"), user=alice
    )
    assert misplaced["extensions"] == {"code": "BAD_USER_INPUT", "field": "errorMessage"}


async def test_the_content_given_at_finish_replaces_the_streamed_text(api: Api, alice: str) -> None:
    message = await a_stream(api, alice, ["draft"])
    finished = await finish(api, alice, message, "COMPLETE", 3, content="The final word.")
    assert finished["message"]["content"] == "The final word."
    assert (await newest(api, alice, message["conversationId"]))["content"] == "The final word."


# --- limits and bad input


async def test_a_delta_over_its_limit_or_the_content_limit_stores_nothing_of_it(
    small: Api, alice: str
) -> None:
    message = await a_stream(small, alice, ["12345678"] * 4)

    too_long = await refused_append(small, alice, message, 5, "123456789")
    empty = await refused_append(small, alice, message, 5, "")
    zero = await refused_append(small, alice, message, 0, "x")
    assert (await append(small, alice, message, 5, "12345678"))["length"] == 40
    too_much = await refused_append(small, alice, message, 6, "x")

    assert too_long["extensions"] == {"code": "BAD_USER_INPUT", "field": "delta"}
    assert "8 bytes" in too_long["message"]
    assert empty["extensions"] == {"code": "BAD_USER_INPUT", "field": "delta"}
    assert zero["extensions"] == {"code": "BAD_USER_INPUT", "field": "seq"}
    assert too_much["extensions"] == {"code": "BAD_USER_INPUT", "field": "delta"}
    assert "40 bytes" in too_much["message"]
    assert await stored_deltas(small, alice, message) == [("12345678", False)] * 5


async def test_at_most_so_many_messages_stream_at_once_and_an_interrupted_one_frees_its_place(
    small: Api, clock: MovableClock, alice: str
) -> None:
    conversation = await create_conversation(small, alice)
    await start(small, alice, conversation["id"])
    await start(small, alice, conversation["id"])

    refused = await small.error(START, {"conversationId": conversation["id"]}, user=alice)
    assert refused["extensions"]["code"] == "CONFLICT"
    assert "at most 2 messages" in refused["message"]

    clock.advance(LEASE + timedelta(seconds=1))
    started = await start(small, alice, conversation["id"])
    assert started["status"] == "STREAMING"


async def test_another_users_conversation_or_message_is_not_found(
    api: Api, alice: str, bob: str
) -> None:
    message = await a_stream(api, alice, ["mine"])

    refusals = [
        await api.error(START, {"conversationId": message["conversationId"]}, user=bob),
        await refused_append(api, bob, message, 2, "theirs"),
        await refused_append(api, bob, message, 1, "mine"),
        await api.error(FINISH, finishing(message, "COMPLETE", 1), user=bob),
    ]

    assert [refusal["extensions"]["code"] for refusal in refusals] == ["NOT_FOUND"] * 4
    assert (await newest(api, alice, message["conversationId"]))["content"] == "mine"
    added_whole = (await add_messages(api, alice, message["conversationId"], ["whole"]))[0]
    not_a_stream = await refused_append(
        api, alice, {**added_whole, "conversationId": message["conversationId"]}, 1, "more"
    )
    assert not_a_stream["extensions"]["code"] == "NOT_FOUND"


# --- large answers


@pytest_asyncio.fixture
async def objects(content_bucket: ContentSettings) -> AsyncIterator[Any]:
    session = aioboto3.Session(
        aws_access_key_id=LOCAL_CREDENTIALS[0],
        aws_secret_access_key=LOCAL_CREDENTIALS[1],
        region_name=REGION,
    )
    async with session.client("s3", endpoint_url=content_bucket.endpoint_url) as s3:
        yield s3


async def test_an_answer_over_the_inline_limit_goes_to_the_content_bucket_at_finish(
    api: Api, alice: str, objects: Any, content_bucket: ContentSettings
) -> None:
    chunk = "€" * (20 * 1024)  # 60 KiB of UTF-8
    chunks = [chunk] * (INLINE_CONTENT_BYTES // len(chunk.encode()) + 1)
    message = await a_stream(api, alice, chunks)
    given = await a_stream(api, alice, ["short"])

    folded = await finish(api, alice, message, "COMPLETE", len(chunks))
    replaced = await finish(api, alice, given, "COMPLETE", 1, content="ü" * INLINE_CONTENT_BYTES)

    assert folded["message"]["content"] == "".join(chunks)
    assert replaced["message"]["content"] == "ü" * INLINE_CONTENT_BYTES
    for stored, text in ((message, "".join(chunks)), (given, "ü" * INLINE_CONTENT_BYTES)):
        listed = await objects.list_objects_v2(
            Bucket=content_bucket.bucket, Prefix=f"content/{stored['conversationId']}/"
        )
        assert [entry["Key"].split("/")[2] for entry in listed["Contents"]] == [stored["id"]]
        assert (await newest(api, alice, stored["conversationId"]))["content"] == text


# --- export and import


async def test_an_export_mid_stream_carries_the_text_so_far_and_imports_as_interrupted(
    small: Api, clock: MovableClock, alice: str, tmp_path: Path
) -> None:
    message = await a_stream(small, alice, ["It was", " a dark"])
    chat = small.services.chat

    exports = [
        exported(conversation, messages)
        async for conversation, messages in chat.for_user(alice).export_conversations()
    ]
    path = tmp_path / "export.json"
    with path.open("w", encoding="utf-8") as out:
        write_export(out, exports, format="json", exported_at=clock())

    (written,) = json.loads(path.read_text(encoding="utf-8"))["conversations"]
    (fields,) = written["messages"]
    assert (fields["id"], fields["content"], fields["status"]) == (
        message["id"],
        "It was a dark",
        "STREAMING",
    )
    # Into an account that lost it, as a restore does.
    await chat.for_user(alice).delete_conversation(conversation_id=message["conversationId"])
    (read_back,) = imported(read_all(path))
    await chat.for_user(alice).import_conversations([conversation_draft(read_back)])
    clock.advance(LEASE)
    node = await newest(small, alice, message["conversationId"])
    assert (node["content"], node["status"], node["streamSeq"]) == (
        "It was a dark",
        "INTERRUPTED",
        0,
    )
    finished = await finish(small, alice, message, "STOPPED", 0)
    assert (finished["message"]["content"], finished["message"]["status"]) == (
        "It was a dark",
        "STOPPED",
    )
