"""The streamed-answer routes over REST: the same rules, answers and costs as GraphQL's, every
answer held to the OpenAPI document."""

from __future__ import annotations

from typing import Any

from tests.api.harness import Api, new_id
from tests.api.rest_harness import Rest

FINISH = """
mutation($i: FinishMessageInput!) { finishMessage(input: $i) { message { id status } } }
"""


def streamed(conversation_id: str, message_id: str, step: str) -> str:
    return f"/conversations/{conversation_id}/messages/{message_id}/{step}"


async def start(rest: Rest, user: str, conversation_id: str, **body: Any) -> Any:
    return await rest.ok(
        "POST",
        f"/conversations/{conversation_id}/messages/stream",
        user=user,
        status=201,
        json=body,
    )


async def append(rest: Rest, user: str, message: dict[str, Any], seq: int, delta: str) -> Any:
    return await rest.ok(
        "POST",
        streamed(message["conversationId"], message["id"], "deltas"),
        user=user,
        json={"seq": seq, "delta": delta},
    )


async def test_an_answer_streams_reads_mid_stream_and_finishes_over_rest(
    rest: Rest, alice: str
) -> None:
    conversation = await rest.create(alice)
    question = await rest.add(alice, conversation["id"], "Why?")
    message_id = new_id()

    message = await start(rest, alice, conversation["id"], id=message_id, modelId="m-1")
    assert (message["id"], message["role"], message["content"]) == (message_id, "assistant", "")
    assert (message["status"], message["streamSeq"]) == ("STREAMING", 0)
    assert question["status"] == "COMPLETE"
    assert await append(rest, alice, message, 1, "Because ") == {
        "messageId": message_id,
        "seq": 1,
        "length": 8,
    }
    await append(rest, alice, message, 2, "light scatters.")

    shown = await rest.get(alice, conversation["id"])
    assert [(m["content"], m["status"], m["streamSeq"]) for m in shown["messages"]] == [
        ("Why?", "COMPLETE", None),
        ("Because light scatters.", "STREAMING", 2),
    ]
    assert shown["lastMessage"]["status"] == "STREAMING"
    # A retried start answers the message as it is now.
    again = await start(rest, alice, conversation["id"], id=message_id, modelId="m-1")
    assert (again["content"], again["streamSeq"]) == ("Because light scatters.", 2)

    finished = await rest.ok(
        "POST",
        streamed(conversation["id"], message_id, "finish"),
        user=alice,
        json={"status": "COMPLETE", "lastSeq": 2},
    )
    assert (finished["content"], finished["status"], finished["streamSeq"]) == (
        "Because light scatters.",
        "COMPLETE",
        None,
    )
    assert (await rest.get(alice, conversation["id"]))["lastMessage"]["status"] == "COMPLETE"


async def test_out_of_step_is_409_with_the_expected_seq_and_a_finished_message_takes_no_more(
    rest: Rest, alice: str
) -> None:
    conversation = await rest.create(alice)
    message = await start(rest, alice, conversation["id"])
    await append(rest, alice, message, 1, "a")
    ahead = streamed(conversation["id"], message["id"], "deltas")
    finish = streamed(conversation["id"], message["id"], "finish")

    skipped = await rest.error("POST", ahead, user=alice, status=409, json={"seq": 3, "delta": "c"})
    early = await rest.error(
        "POST", finish, user=alice, status=409, json={"status": "STOPPED", "lastSeq": 2}
    )
    await rest.ok("POST", finish, user=alice, json={"status": "STOPPED", "lastSeq": 1})
    late = await rest.error("POST", ahead, user=alice, status=409, json={"seq": 2, "delta": "b"})

    assert (skipped["code"], skipped["expectedSeq"]) == ("CONFLICT", 2)
    assert (early["code"], early["expectedSeq"]) == ("CONFLICT", 2)
    assert late["code"] == "CONFLICT"
    assert "expectedSeq" not in late


async def test_bad_input_is_400_naming_the_field_and_another_users_message_is_404(
    rest: Rest, alice: str, bob: str
) -> None:
    conversation = await rest.create(alice)
    message = await start(rest, alice, conversation["id"], role="user")
    deltas = streamed(conversation["id"], message["id"], "deltas")
    finish = streamed(conversation["id"], message["id"], "finish")

    refusals = {
        "seq": await rest.error(
            "POST", deltas, user=alice, status=400, json={"seq": 0, "delta": "x"}
        ),
        "delta": await rest.error(
            "POST", deltas, user=alice, status=400, json={"seq": 1, "delta": ""}
        ),
        "status": await rest.error(
            "POST", finish, user=alice, status=400, json={"status": "complete", "lastSeq": 0}
        ),
        "messageId": await rest.error(
            "POST",
            streamed(conversation["id"], "nope", "deltas"),
            user=alice,
            status=400,
            json={"seq": 1, "delta": "x"},
        ),
        "role": await rest.error(
            "POST",
            f"/conversations/{conversation['id']}/messages/stream",
            user=alice,
            status=400,
            json={"role": "ASSISTANT"},
        ),
    }
    for field, refused in refusals.items():
        assert (refused["code"], refused["field"]) == ("BAD_USER_INPUT", field)

    theirs = await rest.error(
        "POST", deltas, user=bob, status=404, json={"seq": 1, "delta": "mine now"}
    )
    assert theirs["code"] == "NOT_FOUND"
    foreign = await rest.error(
        "POST",
        f"/conversations/{conversation['id']}/messages/stream",
        user=bob,
        status=404,
        json={},
    )
    assert foreign["code"] == "NOT_FOUND"
    assert message["role"] == "user"


async def test_an_append_costs_over_rest_what_it_costs_over_graphql(
    rest: Rest, api: Api, alice: str
) -> None:
    conversation = await rest.create(alice)
    message = await start(rest, alice, conversation["id"])
    await append(rest, alice, message, 1, "a")

    with api.counting() as counter:
        await append(rest, alice, message, 2, "b")
    assert counter.operations == ["PutItem"]

    with api.counting() as over_rest:
        await rest.ok(
            "POST",
            streamed(conversation["id"], message["id"], "finish"),
            user=alice,
            json={"status": "COMPLETE", "lastSeq": 2},
        )
    other = await start(rest, alice, conversation["id"])
    await append(rest, alice, other, 1, "a")
    await append(rest, alice, other, 2, "b")
    with api.counting() as over_graphql:
        finish = {
            "conversationId": conversation["id"],
            "messageId": other["id"],
            "status": "COMPLETE",
            "lastSeq": 2,
        }
        await api.data(FINISH, {"i": finish}, user=alice)
    assert sorted(over_rest.operations) == sorted(over_graphql.operations)
    assert len(over_rest.waves) <= len(over_graphql.waves)
