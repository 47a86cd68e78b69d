"""POST /conversations/{id}/messages: the message as stored, idempotent retries, bad input,
and concurrent adds from several clients, all counted exactly."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.api.harness import Api, new_id
from tests.api.rest_harness import TIMESTAMP, Rest


def messages_path(conversation_id: str) -> str:
    return f"/conversations/{conversation_id}/messages"


@contextlib.asynccontextmanager
async def clients(api: Api, count: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Separate clients, each with its own connection pool, like separate devices."""
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=api.asgi), base_url="http://testserver"
                )
            )
            for _ in range(count)
        ]


async def test_add_answers_201_with_the_message_as_stored(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    message_id = new_id()
    added = await rest.add(
        alice,
        created["id"],
        "An answer.",
        role="assistant",
        id=message_id.upper(),
        modelId="model-1",
        isError=True,
        errorMessage="cut short",
    )
    assert added == {
        "id": message_id,
        "conversationId": created["id"],
        "role": "assistant",
        "content": "An answer.",
        "createdAt": added["createdAt"],
        "modelId": "model-1",
        "isError": True,
        "errorMessage": "cut short",
        "status": "COMPLETE",
        "streamSeq": None,
    }
    assert TIMESTAMP.fullmatch(added["createdAt"])
    after = await rest.get(alice, created["id"])
    assert (after["messageCount"], after["updatedAt"], after["lastMessage"]) == (
        1,
        added["createdAt"],
        added,
    )


async def test_optional_fields_default_as_in_graphql(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    added = await rest.add(alice, created["id"], "hi", role="system")
    assert (added["role"], added["modelId"], added["isError"], added["errorMessage"]) == (
        "system",
        None,
        False,
        None,
    )


async def test_a_retried_add_with_the_same_id_stores_one_message(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    message = {"id": new_id(), "role": "user", "content": "once"}
    first = await rest.ok(
        "POST", messages_path(created["id"]), user=alice, status=201, json=message
    )
    retry = await rest.ok(
        "POST", messages_path(created["id"]), user=alice, status=201, json=message
    )
    assert retry == first
    after = await rest.get(alice, created["id"])
    assert after["messageCount"] == 1
    assert after["messages"] == [first]


async def test_reusing_a_message_id_for_other_content_is_409(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    message_id = new_id()
    await rest.add(alice, created["id"], "original", id=message_id)
    error = await rest.error(
        "POST",
        messages_path(created["id"]),
        user=alice,
        status=409,
        json={"id": message_id, "role": "user", "content": "different"},
    )
    assert error["code"] == "CONFLICT"
    after = await rest.get(alice, created["id"])
    assert [m["content"] for m in after["messages"]] == ["original"]


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"role": "USER"}, "role", "must be one of user, assistant, system"),
        ({"role": "tool"}, "role", "must be one of"),
        ({"role": None}, "role", "must not be null"),
        ({"role": 1}, "role", "must be a string"),
        ({"content": ""}, "content", "must not be empty"),
        ({"content": None}, "content", "must not be null"),
        ({"content": {"text": "x"}}, "content", "must be a string"),
        ({"id": "42"}, "id", "must be a UUID"),
        ({"modelId": "m" * 129}, "modelId", "at most 128"),
        ({"isError": "yes"}, "isError", "must be a boolean"),
        ({"isError": None}, "isError", "must not be null"),
        ({"isError": 1}, "isError", "must be a boolean"),
        ({"errorMessage": "e" * 4097}, "errorMessage", "at most 4096 bytes"),
        ({"errorMessage": 3}, "errorMessage", "must be a string"),
    ],
)
async def test_an_invalid_message_is_400_naming_the_field_and_stores_nothing(
    rest: Rest, alice: str, fields: dict[str, Any], field: str, reason: str
) -> None:
    created = await rest.create(alice)
    body = {"role": "user", "content": "x", **fields}
    error = await rest.error(
        "POST", messages_path(created["id"]), user=alice, status=400, json=body
    )
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field)
    assert error["message"].startswith(f"{field}: ")
    assert reason in error["message"]
    assert (await rest.get(alice, created["id"]))["messageCount"] == 0


@pytest.mark.parametrize("missing", ["role", "content"])
async def test_a_required_field_missing_is_400(rest: Rest, alice: str, missing: str) -> None:
    created = await rest.create(alice)
    body = {"role": "user", "content": "x"}
    del body[missing]
    error = await rest.error(
        "POST", messages_path(created["id"]), user=alice, status=400, json=body
    )
    assert error == {
        "code": "BAD_USER_INPUT",
        "message": f"{missing}: is required",
        "field": missing,
    }


async def test_content_is_limited_in_utf8_bytes(rest: Rest, alice: str) -> None:
    created = await rest.create(alice)
    limit = rest.api.services.settings.limits.max_content_bytes
    # Three bytes a character: as many characters as fit, then one more.
    fits = "€" * (limit // 3)
    await rest.add(alice, created["id"], fits)
    error = await rest.error(
        "POST",
        messages_path(created["id"]),
        user=alice,
        status=400,
        json={"role": "user", "content": fits + "€"},
    )
    assert error["field"] == "content"
    assert f"at most {limit} bytes" in error["message"]
    assert (await rest.get(alice, created["id"]))["messageCount"] == 1


async def test_a_malformed_conversation_id_is_400_naming_the_path_id(
    rest: Rest, alice: str
) -> None:
    error = await rest.error(
        "POST",
        messages_path("not-a-uuid"),
        user=alice,
        status=400,
        json={"role": "user", "content": "x"},
    )
    assert error == {
        "code": "BAD_USER_INPUT",
        "message": "id: must be a UUID (8-4-4-4-12 hex digits)",
        "field": "id",
    }


async def test_adding_to_a_missing_conversation_is_404(rest: Rest, alice: str) -> None:
    error = await rest.error(
        "POST",
        messages_path(new_id()),
        user=alice,
        status=404,
        json={"role": "user", "content": "x"},
    )
    assert error["code"] == "NOT_FOUND"


# --- concurrency --------------------------------------------------------------------------


async def test_twenty_concurrent_adds_from_four_clients_are_all_stored_and_counted(
    rest: Rest, alice: str
) -> None:
    created = await rest.create(alice)
    async with clients(rest.api, 4) as devices:
        responses = await asyncio.gather(
            *(
                rest.request(
                    "POST",
                    messages_path(created["id"]),
                    user=alice,
                    json={"role": "user", "content": f"m{n}"},
                    client=devices[n % 4],
                )
                for n in range(20)
            )
        )
    assert [response.status_code for response in responses] == [201] * 20
    after = await rest.get(alice, created["id"], limit=100)
    assert after["messageCount"] == 20
    assert after["olderCursor"] is None
    assert sorted(m["content"] for m in after["messages"]) == sorted(f"m{n}" for n in range(20))
    # The order they are stored in is the order of their timestamps, each one distinct.
    stamps = [m["createdAt"] for m in after["messages"]]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 20
    assert after["lastMessage"] == after["messages"][-1]


async def test_the_same_add_sent_ten_times_at_once_stores_one_message(
    rest: Rest, alice: str
) -> None:
    created = await rest.create(alice)
    message = {"id": new_id(), "role": "assistant", "content": "sent over a flaky network"}
    async with clients(rest.api, 4) as devices:
        responses = await asyncio.gather(
            *(
                rest.request(
                    "POST",
                    messages_path(created["id"]),
                    user=alice,
                    json=message,
                    client=devices[n % 4],
                )
                for n in range(10)
            )
        )
    assert [response.status_code for response in responses] == [201] * 10
    assert len({response.content for response in responses}) == 1
    after = await rest.get(alice, created["id"])
    assert after["messageCount"] == 1
    assert [m["id"] for m in after["messages"]] == [message["id"]]


async def test_concurrent_renames_at_one_version_have_exactly_one_winner(
    rest: Rest, alice: str
) -> None:
    created = await rest.create(alice, "original")
    path = f"/conversations/{created['id']}"
    async with clients(rest.api, 4) as devices:
        responses = await asyncio.gather(
            *(
                rest.request(
                    "PUT",
                    path,
                    user=alice,
                    json={"title": f"title {n}", "expectedVersion": 1},
                    client=devices[n % 4],
                )
                for n in range(12)
            )
        )
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200] + [409] * 11
    (winner,) = [r.json() for r in responses if r.status_code == 200]
    final = await rest.get(alice, created["id"])
    assert (final["title"], final["version"]) == (winner["title"], 2)
