"""Subscription.messageStream over a real WebSocket to a real server (uvicorn on 127.0.0.1): a
streamed answer replayed, then live, then ended; resumed after a drop; isolated per user; and
the three stream mutations on the socket that follows the stream.

Writes go through the HTTP endpoint as the producing device's would (or over the socket). No
test decides by how long something took: a subscription is known to have fixed its starting
point once its first event has come, and what must not come is shown by what comes instead.
Across instances (Redis): tests/integration/test_broadcast.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any, Final

import pytest
import pytest_asyncio

from graphql_api.settings import SubscriptionSettings
from tests.api.harness import add_messages, create_conversation, new_id, new_user
from tests.api.test_operations import operation
from tests.api.test_streaming import FINISH, START, a_stream, append, finish, opened, start
from tests.apps import AppFactory
from tests.clock import MovableClock
from tests.sockets import LEGACY_WS, TRANSPORT_WS, GraphQLSocket, LiveApi

STREAM = operation("MessageStream")
APPEND = operation("AppendMessage")
# Polls are not what these tests wait for (events are), but a lost event would show late
# rather than never with a short one; the lease test needs one to notice the moved clock.
POLL_SECONDS: Final = 0.5
LEASE: Final = timedelta(seconds=30)


@pytest_asyncio.fixture(scope="module")
async def live(make_api: AppFactory) -> AsyncIterator[LiveApi]:
    async with make_api.live(subscriptions=SubscriptionSettings(poll_seconds=POLL_SECONDS)) as app:
        yield app


def following(message: dict[str, Any], after_seq: int | None = None) -> dict[str, Any]:
    variables = {"conversationId": message["conversationId"], "messageId": message["id"]}
    if after_seq is not None:
        variables["afterSeq"] = after_seq
    return variables


async def follow(
    socket: GraphQLSocket, live: LiveApi, user: str, message: dict[str, Any], after: int = 0
) -> str:
    await socket.init(live.api.token(user))
    return await socket.subscribe(STREAM, following(message, after))


async def event(socket: GraphQLSocket, sub: str) -> dict[str, Any]:
    delta: dict[str, Any] = (await socket.next_data(sub))["messageStream"]
    return delta


async def completed(socket: GraphQLSocket, sub: str) -> None:
    assert await socket.receive() == {"id": sub, "type": "complete"}


def shown(seq: int, delta: str, status: str, content: str | None = None) -> dict[str, Any]:
    """An event as the subscription delivers it (MessageStream asks for every field)."""
    return {"seq": seq, "delta": delta, "status": status, "content": content}


def fields(delta: dict[str, Any]) -> dict[str, Any]:
    return {key: delta[key] for key in ("seq", "delta", "status", "content")}


# --- replay, live, end ------------------------------------------------------------------


async def test_the_stored_text_comes_coalesced_then_each_delta_live_then_the_end(
    live: LiveApi,
) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["Hel", "lo", ", "])
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        replayed = await event(socket, sub)
        words = [f"w{n} " for n in range(4, 14)]
        for seq, word in enumerate(words, start=4):
            await append(live.api, user, message, seq, word)
        streamed = [await event(socket, sub) for _ in words]
        await finish(live.api, user, message, "COMPLETE", 13)
        last = await event(socket, sub)
        await completed(socket, sub)
    assert replayed == {"messageId": message["id"], **shown(3, "Hello, ", "STREAMING")}
    assert [fields(delta) for delta in streamed] == [
        shown(seq, word, "STREAMING") for seq, word in enumerate(words, start=4)
    ]
    # The finish adds no text: everything was delivered already, once.
    assert fields(last) == shown(13, "", "COMPLETE")


async def test_after_seq_replays_only_what_follows_it(live: LiveApi) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["a", "bc", "d", "ef"])
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message, after=2)
        replayed = await event(socket, sub)
        await append(live.api, user, message, 5, "g")
        streamed = await event(socket, sub)
    assert fields(replayed) == shown(4, "def", "STREAMING")
    assert fields(streamed) == shown(5, "g", "STREAMING")


async def test_a_stream_with_nothing_after_the_seq_sends_nothing_until_its_next_delta(
    live: LiveApi,
) -> None:
    user = new_user()
    conversation = await create_conversation(live.api, user)
    message = await start(live.api, user, conversation["id"])
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        # Either the subscription's first read finds it (one delta: the same event) or its
        # announcement does.
        await append(live.api, user, message, 1, "first")
        first = await event(socket, sub)
    assert fields(first) == shown(1, "first", "STREAMING")


async def test_resubscribing_with_the_last_seq_received_loses_nothing_and_repeats_nothing(
    live: LiveApi,
) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["The ", "answer "])
    received: list[dict[str, Any]] = []
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        received.append(await event(socket, sub))
        await append(live.api, user, message, 3, "is ")
        received.append(await event(socket, sub))
    # The device dropped mid-stream; the model kept going.
    for seq, delta in enumerate(["forty", "-", "two"], start=4):
        await append(live.api, user, message, seq, delta)
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message, after=received[-1]["seq"])
        received.append(await event(socket, sub))
        await append(live.api, user, message, 7, ".")
        received.append(await event(socket, sub))
        await finish(live.api, user, message, "COMPLETE", 7)
        received.append(await event(socket, sub))
        await completed(socket, sub)
    stored = (await opened(live.api, user, message["conversationId"]))["lastMessage"]
    assert [fields(delta) for delta in received] == [
        shown(2, "The answer ", "STREAMING"),
        shown(3, "is ", "STREAMING"),
        shown(6, "forty-two", "STREAMING"),
        shown(7, ".", "STREAMING"),
        shown(7, "", "COMPLETE"),
    ]
    assert "".join(delta["delta"] for delta in received) == stored["content"]


# --- how a stream ends --------------------------------------------------------------------


@pytest.mark.parametrize("status", ["COMPLETE", "STOPPED", "FAILED"])
async def test_the_last_event_carries_how_the_stream_ended(live: LiveApi, status: str) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["Partial"])
    extra = {"errorMessage": "the model failed"} if status == "FAILED" else {}
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        replayed = await event(socket, sub)
        await finish(live.api, user, message, status, 1, **extra)
        last = await event(socket, sub)
        await completed(socket, sub)
    assert fields(replayed) == shown(1, "Partial", "STREAMING")
    assert fields(last) == shown(1, "", status)


@pytest.mark.parametrize("status", ["COMPLETE", "STOPPED", "FAILED"])
async def test_a_finished_message_replays_and_completes_at_once(live: LiveApi, status: str) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["One, ", "two, ", "three."])
    await finish(live.api, user, message, status, 3)
    async with live.socket() as socket:
        whole = await follow(socket, live, user, message)
        from_start = await event(socket, whole)
        await completed(socket, whole)
        rest = await socket.subscribe(STREAM, following(message, 1))
        after_one = await event(socket, rest)
        await completed(socket, rest)
        caught_up = await socket.subscribe(STREAM, following(message, 3))
        nothing_left = await event(socket, caught_up)
        await completed(socket, caught_up)
    assert fields(from_start) == shown(3, "One, two, three.", status)
    assert fields(after_one) == shown(3, "two, three.", status)
    assert fields(nothing_left) == shown(3, "", status)


async def test_a_finish_that_replaces_the_text_gives_the_whole_of_it_in_content(
    live: LiveApi,
) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["A draft ", "that is "])
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        await event(socket, sub)
        await finish(live.api, user, message, "COMPLETE", 2, content="The final text.")
        last = await event(socket, sub)
        await completed(socket, sub)
        again = await socket.subscribe(STREAM, following(message, 2))
        replayed = await event(socket, again)
        await completed(socket, again)
    assert fields(last) == shown(2, "", "COMPLETE", "The final text.")
    assert fields(replayed) == shown(2, "", "COMPLETE", "The final text.")


async def test_a_stream_finished_with_no_delta_ends_at_seq_zero(live: LiveApi) -> None:
    user = new_user()
    conversation = await create_conversation(live.api, user)
    message = await start(live.api, user, conversation["id"])
    await finish(live.api, user, message, "STOPPED", 0)
    async with live.socket() as socket:
        sub = await follow(socket, live, user, message)
        only = await event(socket, sub)
        await completed(socket, sub)
    assert fields(only) == shown(0, "", "STOPPED")


IMPORT = """
mutation Import($input: ImportConversationsInput!) {
  importConversations(input: $input) { conversations { id } }
}
"""


async def test_an_imported_answer_is_followed_from_its_text_then_its_deltas_once(
    live: LiveApi,
) -> None:
    """An imported STREAMING message starts with its text so far (not a delta): from seq 0 the
    first event gives it, and what is appended after goes on from it, the text never twice."""
    user = new_user()
    conversation_id, message_id = new_id(), new_id()
    long_ago = "2024-05-01T10:00:00.000000Z"
    message = {
        "id": message_id,
        "role": "ASSISTANT",
        "content": "Imported so far",
        "createdAt": long_ago,
        "status": "STREAMING",
    }
    conversation = {"id": conversation_id, "title": "Imported", "createdAt": long_ago}
    await live.api.data(
        IMPORT, {"input": {"conversations": [{**conversation, "messages": [message]}]}}, user=user
    )
    stream = {"conversationId": conversation_id, "id": message_id}
    async with live.socket() as socket:
        sub = await follow(socket, live, user, stream)
        first = await event(socket, sub)
        await append(live.api, user, stream, 1, ", and more")
        appended = await event(socket, sub)
        await finish(live.api, user, stream, "COMPLETE", 1)
        last = await event(socket, sub)
        await completed(socket, sub)
    assert [fields(delta) for delta in (first, appended, last)] == [
        shown(0, "Imported so far", "INTERRUPTED"),
        shown(1, ", and more", "STREAMING"),
        shown(1, "", "COMPLETE"),
    ]


# --- the lease ----------------------------------------------------------------------------


async def test_a_stream_past_its_lease_is_interrupted_once_and_a_later_append_goes_on(
    make_api: AppFactory,
) -> None:
    clock = MovableClock()
    user = new_user()
    async with (
        make_api.live(clock=clock, subscriptions=SubscriptionSettings(poll_seconds=0.2)) as app,
        app.socket() as socket,
    ):
        message = await a_stream(app.api, user, ["Thinking"])
        sub = await follow(socket, app, user, message)
        replayed = await event(socket, sub)
        clock.advance(LEASE + timedelta(seconds=1))
        interrupted = await event(socket, sub)
        # A second device subscribing now hears it at once.
        async with app.socket() as other:
            late = await follow(other, app, user, message)
            late_first = await event(other, late)
        # The app came back: its next append goes on, and so does the stream.
        await append(app.api, user, message, 2, " again")
        resumed = await event(socket, sub)
        await finish(app.api, user, message, "COMPLETE", 2)
        last = await event(socket, sub)
        await completed(socket, sub)
    # Polls ran every 0.2 s throughout: had any of them repeated INTERRUPTED, it would have
    # come before the resumed delta.
    assert [fields(delta) for delta in (replayed, interrupted, resumed, last)] == [
        shown(1, "Thinking", "STREAMING"),
        shown(1, "", "INTERRUPTED"),
        shown(2, " again", "STREAMING"),
        shown(2, "", "COMPLETE"),
    ]
    assert fields(late_first) == shown(1, "Thinking", "INTERRUPTED")


# --- refusals and isolation ---------------------------------------------------------------


async def not_found(socket: GraphQLSocket, variables: dict[str, Any]) -> dict[str, Any]:
    """The first and only result of a messageStream that ends as NOT_FOUND (or another error):
    its error; then complete."""
    sub = await socket.subscribe(STREAM, variables)
    message = await socket.receive()
    assert (message["id"], message["type"]) == (sub, "next"), message
    assert message["payload"]["data"] is None, message
    (error,) = message["payload"]["errors"]
    await completed(socket, sub)
    assert error["path"] == ["messageStream"]
    error_fields: dict[str, Any] = error
    return error_fields


async def test_another_users_message_or_one_not_streamed_ends_as_not_found(
    live: LiveApi,
) -> None:
    alice, bob = new_user(), new_user()
    alices = await a_stream(live.api, alice, ["private"])
    conversation = await create_conversation(live.api, bob)
    (whole,) = await add_messages(live.api, bob, conversation["id"], ["added whole"])
    async with live.socket() as socket:
        await socket.init(live.api.token(bob))
        errors = [
            await not_found(socket, following(alices)),
            await not_found(socket, {"conversationId": conversation["id"], "messageId": new_id()}),
            await not_found(
                socket, {"conversationId": conversation["id"], "messageId": whole["id"]}
            ),
        ]
        invalid = await not_found(socket, {**following(alices), "afterSeq": -1})
        malformed = await not_found(socket, {**following(alices), "messageId": "not-a-uuid"})
    assert [error["extensions"] for error in errors] == [{"code": "NOT_FOUND"}] * 3
    assert "private" not in str(errors)
    assert invalid["extensions"] == {"code": "BAD_USER_INPUT", "field": "afterSeq"}
    assert malformed["extensions"] == {"code": "BAD_USER_INPUT", "field": "messageId"}


async def test_colliding_client_chosen_ids_never_carry_another_users_deltas(
    live: LiveApi,
) -> None:
    """Alice and Bob stream under one message id (ids are client-chosen): Bob's subscriber gets
    his deltas and his end only; Alice's, sent between his, never reach it."""
    alice, bob = new_user(), new_user()
    shared = new_id()
    alices_conversation = await create_conversation(live.api, alice)
    bobs_conversation = await create_conversation(live.api, bob)
    alices = await start(live.api, alice, alices_conversation["id"], id=shared)
    bobs = await start(live.api, bob, bobs_conversation["id"], id=shared)
    await append(live.api, bob, bobs, 1, "B1")
    async with live.socket() as socket:
        sub = await follow(socket, live, bob, bobs)
        first = await event(socket, sub)
        for seq in range(1, 4):
            await append(live.api, alice, alices, seq, f"A{seq}")
            await append(live.api, bob, bobs, seq + 1, f"B{seq + 1}")
        streamed = [await event(socket, sub) for _ in range(3)]
        await finish(live.api, alice, alices, "COMPLETE", 3)
        await finish(live.api, bob, bobs, "STOPPED", 4)
        last = await event(socket, sub)
        await completed(socket, sub)
        # Alice's conversation with the shared id: not Bob's to follow.
        refused = await not_found(socket, {**following(bobs), **following(alices)})
    assert [fields(delta) for delta in (first, *streamed, last)] == [
        shown(1, "B1", "STREAMING"),
        shown(2, "B2", "STREAMING"),
        shown(3, "B3", "STREAMING"),
        shown(4, "B4", "STREAMING"),
        shown(4, "", "STOPPED"),
    ]
    assert refused["extensions"] == {"code": "NOT_FOUND"}


async def test_one_users_two_messages_of_one_id_in_two_conversations_stay_apart(
    live: LiveApi,
) -> None:
    user = new_user()
    shared = new_id()
    first = await create_conversation(live.api, user, "first")
    second = await create_conversation(live.api, user, "second")
    followed = await start(live.api, user, first["id"], id=shared)
    other = await start(live.api, user, second["id"], id=shared)
    await append(live.api, user, followed, 1, "mine")
    async with live.socket() as socket:
        sub = await follow(socket, live, user, followed)
        replayed = await event(socket, sub)
        await append(live.api, user, other, 1, "other")
        await finish(live.api, user, other, "COMPLETE", 1)
        await append(live.api, user, followed, 2, " too")
        streamed = await event(socket, sub)
    assert fields(replayed) == shown(1, "mine", "STREAMING")
    assert fields(streamed) == shown(2, " too", "STREAMING")


# --- the stream mutations on the socket that follows the stream -------------------------


async def operation_messages(socket: GraphQLSocket, id: str) -> list[dict[str, Any]]:
    """Every message of operation `id` up to its complete (others are kept for later)."""
    messages = [await socket.receive_for(id)]
    while messages[-1]["type"] != "complete":
        messages.append(await socket.receive_for(id))
    return messages


async def run_beside(
    socket: GraphQLSocket, query: str, variables: dict[str, Any]
) -> dict[str, Any]:
    """A mutation's one result, its messages told apart from a subscription's on the socket:
    exactly one `next` (`data` in graphql-ws), then `complete`."""
    id = await socket.subscribe(query, variables)
    messages = await operation_messages(socket, id)
    kind = "next" if socket.protocol == TRANSPORT_WS else "data"
    assert [message["type"] for message in messages] == [kind, "complete"], messages
    assert "errors" not in messages[0]["payload"], messages
    data: dict[str, Any] = messages[0]["payload"]["data"]
    return data


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_the_stream_mutations_run_on_the_socket_that_follows_the_stream(
    live: LiveApi, protocol: str
) -> None:
    user = new_user()
    conversation = await create_conversation(live.api, user)
    async with live.socket(protocol=protocol) as socket:
        await socket.init(live.api.token(user))
        started = await run_beside(socket, START, {"conversationId": conversation["id"]})
        message = started["startMessage"]["message"]
        sub = await socket.subscribe(STREAM, following(message))
        appended = [
            await run_beside(
                socket,
                APPEND,
                {**following(message), "seq": seq, "delta": delta},
            )
            for seq, delta in enumerate(["On ", "the ", "socket."], start=1)
        ]
        finished = await run_beside(
            socket, FINISH, {**following(message), "status": "COMPLETE", "lastSeq": 3}
        )
        events = await operation_messages(socket, sub)
    assert message["status"] == "STREAMING"
    assert [data["appendMessage"] for data in appended] == [
        {"messageId": message["id"], "seq": seq, "length": length}
        for seq, length in ((1, 3), (2, 7), (3, 14))
    ]
    assert finished["finishMessage"]["message"]["content"] == "On the socket."
    kind = "next" if protocol == TRANSPORT_WS else "data"
    assert [item["type"] for item in events] == [kind] * (len(events) - 1) + ["complete"]
    delivered = [item["payload"]["data"]["messageStream"] for item in events[:-1]]
    # Each delta once, in order, however the first read and the appends interleaved.
    assert "".join(delta["delta"] for delta in delivered) == "On the socket."
    seqs = [delta["seq"] for delta in delivered[:-1]]
    assert seqs == sorted(set(seqs))
    assert fields(delivered[-1]) == shown(3, "", "COMPLETE")


async def test_over_http_the_subscription_is_refused_before_it_runs(live: LiveApi) -> None:
    user = new_user()
    message = await a_stream(live.api, user, ["x"])
    body = await live.api.run(STREAM, following(message), user=user)
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
