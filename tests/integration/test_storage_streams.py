"""Streamed messages against a real endpoint: start, append (one PutItem once the stream is
known), finish (one read wave, one transaction, tombstones in batches), and the reads."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import pytest_asyncio

from graphql_api.errors import (
    ConflictError,
    NotFoundError,
    SequenceConflictError,
    ValidationError,
)
from graphql_api.storage import keys
from graphql_api.storage.changes import read_changes
from graphql_api.storage.client import ChatTable, DynamoDBClient
from graphql_api.storage.conversations import get_conversation, list_conversations
from graphql_api.storage.deltas import StreamState, read_deltas, read_stream
from graphql_api.storage.messages import add_messages, find_message
from graphql_api.storage.records import (
    ConversationRecord,
    DeltaRecord,
    FinishStatus,
    MessageRecord,
    NewMessage,
    StreamEvent,
)
from graphql_api.storage.streams import (
    Appended,
    Ending,
    StreamTip,
    append_delta,
    finish_message,
    start_message,
)
from graphql_api.storage.threads import list_messages
from tests.clock import MovableClock
from tests.counting import RequestCounter
from tests.factories import a_conversation, new_id, own_table, stored_item

LIMIT = 1024 * 1024


@pytest_asyncio.fixture(scope="module")
async def table_name(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    async with own_table(dynamodb_client, purpose="streams") as name:
        yield name


async def started(
    table: ChatTable, conversation: ConversationRecord, *, max_streaming: int = 16
) -> MessageRecord:
    added = await start_message(
        table,
        user_id=conversation.user_id,
        conversation_id=conversation.id,
        message=NewMessage(role="assistant", content="", id=new_id(), model_id="model-1"),
        max_streaming=max_streaming,
    )
    (message,) = added.messages
    return message


async def append(
    table: ChatTable,
    message: MessageRecord,
    seq: int,
    delta: str,
    known: StreamTip | None = None,
    user_id: str | None = None,
) -> Appended:
    return await append_delta(
        table,
        user_id=user_id or message.user_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
        seq=seq,
        delta=delta,
        max_bytes=LIMIT,
        known=known,
    )


async def finish(
    table: ChatTable,
    message: MessageRecord,
    last_seq: int,
    *,
    status: FinishStatus = "complete",
    content: str | None = None,
    error_message: str | None = None,
) -> MessageRecord:
    ending = Ending(status=status, last_seq=last_seq, content=content, error_message=error_message)
    finished = await finish_message(
        table,
        user_id=message.user_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
        ending=ending,
    )
    return finished.message


async def streamed(
    table: ChatTable, *, user_id: str, deltas: list[str]
) -> tuple[MessageRecord, StreamTip | None]:
    conversation = await a_conversation(table, user_id=user_id)
    message = await started(table, conversation)
    tip = None
    for seq, delta in enumerate(deltas, start=1):
        tip = (await append(table, message, seq, delta, known=tip)).tip
    return message, tip


async def read_back(table: ChatTable, message: MessageRecord) -> MessageRecord:
    found = await find_message(
        table,
        user_id=message.user_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
    )
    assert found is not None
    return found


# --- start


async def test_a_start_adds_an_empty_streaming_message_and_logs_it_as_added(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    (question,) = await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[NewMessage(role="user", content="Why?")],
    )

    message = await started(chat_table, conversation)

    assert (message.status, message.content, message.stream_seq) == ("streaming", "", 0)
    assert message.parent_id == question.id
    current = await get_conversation(chat_table, user_id=user_id, conversation_id=conversation.id)
    assert current is not None
    assert current.message_count == 2
    assert current.last_message is not None
    assert current.last_message.status == "streaming"
    log = await read_changes(chat_table, user_id=user_id, after=2, limit=10)
    assert [(change.kind, change.messages) for change in log.changes] == [
        ("MESSAGES_ADDED", (message.position,))
    ]


async def test_a_retried_start_returns_the_stream_it_began_and_writes_nothing(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["Hel", "lo"])
    request_counter.reset()

    again = await start_message(
        chat_table,
        user_id=user_id,
        conversation_id=message.conversation_id,
        message=NewMessage(role="assistant", content="", id=message.id, model_id="model-1"),
        max_streaming=16,
    )

    assert [(m.id, m.content, m.stream_seq) for m in again.messages] == [(message.id, "Hello", 2)]
    assert again.conversation is None
    assert "TransactWriteItems" not in request_counter.operations
    with pytest.raises(ConflictError, match="already used"):
        await start_message(
            chat_table,
            user_id=user_id,
            conversation_id=message.conversation_id,
            message=NewMessage(role="user", content="", id=message.id),
            max_streaming=16,
        )


async def test_an_id_added_whole_cannot_be_started(chat_table: ChatTable, user_id: str) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    (whole,) = await add_messages(
        chat_table,
        user_id=user_id,
        conversation_id=conversation.id,
        messages=[NewMessage(role="assistant", content="done")],
    )
    with pytest.raises(ConflictError, match="already used"):
        await start_message(
            chat_table,
            user_id=user_id,
            conversation_id=conversation.id,
            message=NewMessage(role="assistant", content="", id=whole.id),
            max_streaming=16,
        )


# --- append


async def test_an_append_on_a_known_stream_is_one_put_item(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, tip = await streamed(chat_table, user_id=user_id, deltas=["a"])
    request_counter.reset()

    appended = await append(chat_table, message, 2, "bc", known=tip)

    assert request_counter.operations == ["PutItem"]
    assert (appended.seq, appended.length, appended.written) == (2, 3, True)
    assert appended.tip == StreamTip(seq=2, end=3, size=3)


async def test_an_append_on_an_unknown_stream_reads_marker_and_newest_delta_in_one_wave(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["a", "b"])
    request_counter.reset()

    appended = await append(chat_table, message, 3, "ç€")

    assert [sorted(wave) for wave in request_counter.waves] == [["GetItem", "Query"], ["PutItem"]]
    assert (appended.length, appended.tip) == (4, StreamTip(seq=3, end=4, size=7))


async def test_repeating_a_stored_seq_answers_as_the_first_time_and_writes_nothing(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, tip = await streamed(chat_table, user_id=user_id, deltas=["one ", "two "])
    first = await append(chat_table, message, 3, "three", known=tip)
    request_counter.reset()

    cold = await append(chat_table, message, 2, "two ")
    assert sorted(request_counter.operations) == ["BatchGetItem", "GetItem", "Query"]
    request_counter.reset()
    # A cache that missed the acknowledgement: the put finds the key taken, with the same text.
    lost = await append(chat_table, message, 3, "three", known=tip)
    assert request_counter.operations == ["PutItem", "GetItem"]

    assert (cold.seq, cold.length, cold.written) == (2, 8, False)
    assert (lost.length, lost.written) == (first.length, False)
    assert (await read_back(chat_table, message)).content == "one two three"
    with pytest.raises(ConflictError, match="another delta"):
        await append(chat_table, message, 2, "deux ")


async def test_a_seq_past_the_next_is_a_conflict_naming_the_expected_seq(
    chat_table: ChatTable, user_id: str
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["a", "b"])
    with pytest.raises(SequenceConflictError) as refused:
        await append(chat_table, message, 5, "e")
    assert refused.value.expected_seq == 3
    assert len(await deltas_of(chat_table, message)) == 2


async def test_an_append_past_the_byte_limit_stores_nothing_of_it(
    chat_table: ChatTable, user_id: str
) -> None:
    message, tip = await streamed(chat_table, user_id=user_id, deltas=["12345"])
    with pytest.raises(ValidationError) as refused:
        await append_delta(
            chat_table,
            user_id=user_id,
            conversation_id=message.conversation_id,
            message_id=message.id,
            seq=2,
            delta="€€",
            max_bytes=10,
            known=tip,
        )
    assert refused.value.field == "delta"
    assert [d.text for d in await deltas_of(chat_table, message)] == ["12345"]


async def test_another_users_stream_is_not_found(chat_table: ChatTable, user_id: str) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["secret"])
    with pytest.raises(NotFoundError):
        await append(chat_table, message, 2, "mine?", user_id=f"other-{new_id()}")
    with pytest.raises(NotFoundError):
        await finish_message(
            chat_table,
            user_id=f"other-{new_id()}",
            conversation_id=message.conversation_id,
            message_id=message.id,
            ending=Ending(status="complete", last_seq=1),
        )
    assert await stream_of(chat_table, message, after=0, user_id="someone-else") is None


async def test_concurrent_retries_of_the_same_seqs_store_the_text_once(
    chat_table: ChatTable, user_id: str
) -> None:
    conversation = await a_conversation(chat_table, user_id=user_id)
    message = await started(chat_table, conversation)
    words = [f"w{index} " for index in range(12)]
    tips: list[StreamTip | None] = [None, None]

    async def client(which: int, seq: int, delta: str) -> Appended:
        appended = await append(chat_table, message, seq, delta, known=tips[which])
        tips[which] = appended.tip
        return appended

    for seq, word in enumerate(words, start=1):
        answers = await asyncio.gather(client(0, seq, word), client(1, seq, word))
        assert {answer.length for answer in answers} == {len("".join(words[:seq]))}
        assert sorted(answer.written for answer in answers) == [False, True]

    assert (await read_back(chat_table, message)).content == "".join(words)


# --- finish


async def test_a_finish_is_one_read_wave_one_transaction_and_batches_of_tombstones(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    deltas = [f"{index}," for index in range(30)]
    message, _ = await streamed(chat_table, user_id=user_id, deltas=deltas)
    request_counter.reset()

    final = await finish(chat_table, message, 30)

    assert [sorted(wave) for wave in request_counter.waves[:2]] == [
        ["BatchGetItem", "Query"],
        ["TransactWriteItems"],
    ]
    assert request_counter.operations[3:] == ["BatchWriteItem"] * math.ceil(30 / 25)
    assert (final.status, final.content, final.stream_seq) == ("complete", "".join(deltas), None)
    stored = await deltas_of(chat_table, message)
    assert [delta.seq for delta in stored] == list(range(1, 32))
    assert all(delta.folded and delta.text == "" for delta in stored)
    assert (await read_back(chat_table, message)).content == "".join(deltas)
    item = await stored_item(
        chat_table,
        keys.conversation_partition(message.conversation_id),
        message.position.sort_key(),
    )
    assert item is not None
    assert "status" not in item
    log = await read_changes(chat_table, user_id=user_id, after=2, limit=10)
    assert [(change.kind, change.messages) for change in log.changes] == [
        ("MESSAGE_FINISHED", (message.position,))
    ]


async def test_a_stale_cache_cannot_append_to_a_finished_message(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, tip = await streamed(chat_table, user_id=user_id, deltas=["a", "b", "c"])
    early = StreamTip(seq=1, end=1, size=1)
    await finish(chat_table, message, 3)
    request_counter.reset()

    for known in (tip, early):
        with pytest.raises(ConflictError, match="finished"):
            await append(chat_table, message, (known or early).seq + 1, "late", known=known)
    with pytest.raises(ConflictError, match="finished"):
        await append(chat_table, message, 4, "late")

    assert "TransactWriteItems" not in request_counter.operations
    assert (await read_back(chat_table, message)).content == "abc"
    stored = await deltas_of(chat_table, message)
    assert [delta.seq for delta in stored] == [1, 2, 3, 4]
    assert all(delta.folded for delta in stored)


async def test_a_finish_racing_an_append_folds_it_or_refuses_it(
    chat_table: ChatTable, user_id: str
) -> None:
    message, tip = await streamed(chat_table, user_id=user_id, deltas=["a"])
    appended, finished = await asyncio.gather(
        append(chat_table, message, 2, "b", known=tip),
        finish(chat_table, message, 1),
        return_exceptions=True,
    )
    if isinstance(appended, BaseException):
        assert isinstance(appended, ConflictError)
        assert isinstance(finished, MessageRecord)
        assert finished.content == "a"
    else:
        # The append came first: every acknowledged delta is folded in.
        assert isinstance(finished, MessageRecord)
        assert finished.content == "ab"


async def test_a_finish_missing_deltas_names_the_next_seq_unless_it_gives_the_content(
    chat_table: ChatTable, user_id: str
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["a", "b"])
    with pytest.raises(SequenceConflictError) as refused:
        await finish(chat_table, message, 4)
    assert refused.value.expected_seq == 3

    final = await finish(chat_table, message, 4, content="The whole answer.")
    assert final.content == "The whole answer."
    state = await stream_of(chat_table, message, after=1, user_id=user_id)
    assert state is not None
    assert (state.text, state.replaced, state.seq) == ("The whole answer.", True, 2)


async def test_finishing_again_is_a_retry_with_the_same_status_and_a_conflict_with_another(
    chat_table: ChatTable, user_id: str, request_counter: RequestCounter
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["half"])
    stopped = await finish(chat_table, message, 1, status="stopped")
    request_counter.reset()

    again = await finish(chat_table, message, 1, status="stopped")

    assert (again.status, again.content) == (stopped.status, "half")
    assert "TransactWriteItems" not in request_counter.operations
    with pytest.raises(ConflictError, match="STOPPED"):
        await finish(chat_table, message, 1, status="complete")


async def test_a_failed_finish_is_an_error_message_and_an_empty_complete_one_is_refused(
    chat_table: ChatTable, user_id: str
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=[])
    with pytest.raises(ValidationError):
        await finish(chat_table, message, 0)
    failed = await finish(chat_table, message, 0, status="failed", error_message="overloaded")
    assert (failed.status, failed.is_error, failed.error_message, failed.content) == (
        "failed",
        True,
        "overloaded",
        "",
    )
    assert (await read_back(chat_table, message)).status == "failed"


async def test_the_preview_follows_the_stream_and_its_finish(
    chat_table: ChatTable, user_id: str
) -> None:
    message, _tip = await streamed(chat_table, user_id=user_id, deltas=["Once ", "upon"])

    listed = await list_conversations(chat_table, user_id=user_id, limit=5)
    (preview,) = [c.last_message for c in listed.items if c.id == message.conversation_id]
    assert preview is not None
    assert (preview.content, preview.status, preview.stream_seq) == ("Once upon", "streaming", 2)

    await finish(chat_table, message, 2)
    current = await get_conversation(
        chat_table, user_id=user_id, conversation_id=message.conversation_id
    )
    assert current is not None
    assert current.last_message is not None
    assert (current.last_message.content, current.last_message.status) == ("Once upon", "complete")


# --- reads mid-stream and the lease


async def test_every_read_shows_the_text_so_far_and_the_lease_interrupts_it(
    chat_table: ChatTable, user_id: str
) -> None:
    clock = MovableClock()
    table = dataclasses.replace(chat_table, clock=clock, stream_lease=timedelta(seconds=30))
    message, _ = await streamed(table, user_id=user_id, deltas=["Thinking", "..."])

    page = await list_messages(
        table, user_id=user_id, conversation_id=message.conversation_id, limit=5
    )
    assert [(m.content, m.status, m.stream_seq) for m in page.items] == [
        ("Thinking...", "streaming", 2)
    ]
    clock.advance(timedelta(seconds=31))
    assert (await read_back(table, message)).status == "interrupted"
    state = await stream_of(table, message, after=1, user_id=user_id)
    assert state is not None
    assert (state.text, state.seq, state.status, state.final) == ("...", 2, "interrupted", None)

    await append(table, message, 3, " done")
    assert (await read_back(table, message)).status == "streaming"
    clock.advance(timedelta(seconds=60))
    final = await finish(table, message, 3)
    assert (final.status, final.content) == ("complete", "Thinking... done")


async def test_read_stream_gives_the_rest_of_a_finished_message_from_any_seq(
    chat_table: ChatTable, user_id: str
) -> None:
    message, _ = await streamed(chat_table, user_id=user_id, deltas=["ab", "cd", "ef"])
    await finish(chat_table, message, 3)
    for after, rest in ((0, "abcdef"), (1, "cdef"), (3, "")):
        state = await stream_of(chat_table, message, after=after, user_id=user_id)
        assert state is not None
        assert state.final is not None
        assert (state.text, state.seq, state.status, state.replaced) == (
            rest,
            3,
            "complete",
            False,
        )


async def test_the_listener_hears_each_stored_delta_and_the_finish(
    chat_table: ChatTable, user_id: str
) -> None:
    heard: list[tuple[str, StreamEvent]] = []

    async def listen(user: str, event: StreamEvent) -> None:
        heard.append((user, event))

    table = dataclasses.replace(chat_table, stream_listener=listen)
    message, _tip = await streamed(table, user_id=user_id, deltas=["a", "b"])
    await append(table, message, 2, "b")  # a retry: nothing new to announce
    await finish(table, message, 2, status="stopped")

    expected = [(1, "a", "streaming"), (2, "b", "streaming"), (2, "", "stopped")]
    assert heard == [
        (
            user_id,
            StreamEvent(
                conversation_id=message.conversation_id,
                message_id=message.id,
                seq=seq,
                delta=delta,
                status=status,  # type: ignore[arg-type]
            ),
        )
        for seq, delta, status in expected
    ]


# --- the limit


async def test_the_streaming_limit_counts_only_streams_that_still_stream(
    chat_table: ChatTable, user_id: str
) -> None:
    clock = MovableClock()
    table = dataclasses.replace(chat_table, clock=clock)
    conversation = await a_conversation(table, user_id=user_id)
    first = await started(table, conversation, max_streaming=2)
    await started(table, conversation, max_streaming=2)
    with pytest.raises(ConflictError, match="at most 2 messages"):
        await started(table, conversation, max_streaming=2)

    await finish(table, first, 0, status="stopped")
    third = await started(table, conversation, max_streaming=2)
    clock.advance(table.stream_lease + timedelta(seconds=1))
    # Both open streams are past the lease now: they no longer hold a place.
    await started(table, conversation, max_streaming=2)
    await started(table, conversation, max_streaming=2)
    with pytest.raises(ConflictError):
        await started(table, conversation, max_streaming=2)
    assert (await read_back(table, third)).status == "interrupted"


async def deltas_of(table: ChatTable, message: MessageRecord) -> list[DeltaRecord]:
    return await read_deltas(
        table,
        user_id=message.user_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
    )


async def stream_of(
    table: ChatTable, message: MessageRecord, *, after: int, user_id: str
) -> StreamState | None:
    return await read_stream(
        table,
        user_id=user_id,
        conversation_id=message.conversation_id,
        message_id=message.id,
        after=after,
    )
