"""User B, on user A's conversation by every REST route, learns and changes nothing.

For each route B's answer is compared with the answer for an id that exists nowhere, and
afterwards A's items are read straight from the table: byte for byte what they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from graphql_api.storage import keys
from tests.api.harness import new_id
from tests.api.rest_harness import Rest
from tests.api.test_isolation import snapshot, stored_items

# (method, path, body) for a conversation id and one of its message ids.
Attempt = Callable[[str, str], tuple[str, str, dict[str, Any] | None]]

ATTEMPTS: dict[str, Attempt] = {
    "GET": lambda cid, _: ("GET", f"/conversations/{cid}", None),
    "PUT rename": lambda cid, _: ("PUT", f"/conversations/{cid}", {"title": "hijacked"}),
    "PUT model at version 1": lambda cid, _: (
        "PUT",
        f"/conversations/{cid}",
        {"modelId": "evil-model", "expectedVersion": 1},
    ),
    "DELETE": lambda cid, _: ("DELETE", f"/conversations/{cid}", None),
    "POST message": lambda cid, _: (
        "POST",
        f"/conversations/{cid}/messages",
        {"role": "user", "content": "planted by B"},
    ),
    "POST message reusing A's message id": lambda cid, mid: (
        "POST",
        f"/conversations/{cid}/messages",
        {"id": mid, "role": "user", "content": "planted by B"},
    ),
}


async def planted(rest: Rest, owner: str) -> tuple[str, str, list[list[dict[str, Any]]]]:
    created = await rest.create(owner, "A's private chat", modelId="m1")
    first = await rest.add(owner, created["id"], "one")
    await rest.add(owner, created["id"], "two", role="assistant")
    return created["id"], first["id"], await snapshot(rest.api, owner, created["id"])


@pytest.mark.parametrize("name", list(ATTEMPTS))
async def test_each_route_on_anothers_conversation_answers_as_for_a_missing_one(
    rest: Rest, alice: str, bob: str, name: str
) -> None:
    owned, first_message, before = await planted(rest, alice)
    method, path, body = ATTEMPTS[name](owned, first_message)
    foreign = await rest.request(method, path, user=bob, json=body)
    method, path, body = ATTEMPTS[name](new_id(), first_message)
    absent = await rest.request(method, path, user=bob, json=body)
    assert (foreign.status_code, foreign.json()) == (absent.status_code, absent.json())
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "NOT_FOUND"
    assert await snapshot(rest.api, alice, owned) == before


async def test_anothers_conversations_are_not_listed(rest: Rest, alice: str, bob: str) -> None:
    await planted(rest, alice)
    assert await rest.ok("GET", "/conversations", user=bob) == {
        "conversations": [],
        "nextCursor": None,
    }


async def test_anothers_list_cursor_is_refused_not_followed(
    rest: Rest, alice: str, bob: str
) -> None:
    for title in ("a", "b"):
        await rest.create(alice, title)
    page = await rest.ok("GET", "/conversations", user=alice, params={"limit": 1})
    error = await rest.error(
        "GET", "/conversations", user=bob, status=400, params={"cursor": page["nextCursor"]}
    )
    assert (error["code"], error["field"]) == ("BAD_USER_INPUT", "cursor")


async def test_anothers_message_cursor_is_refused_like_any_foreign_cursor(
    rest: Rest, alice: str, bob: str
) -> None:
    owned, _, before = await planted(rest, alice)
    older = (await rest.get(alice, owned, limit=1))["olderCursor"]
    foreign = await rest.request(
        "GET", f"/conversations/{owned}", user=bob, params={"before": older}
    )
    absent = await rest.request(
        "GET", f"/conversations/{new_id()}", user=bob, params={"before": older}
    )
    assert (foreign.status_code, foreign.json()) == (absent.status_code, absent.json())
    assert foreign.json()["error"]["field"] == "before"
    assert await snapshot(rest.api, alice, owned) == before


async def test_creating_with_anothers_id_is_409_and_changes_nothing(
    rest: Rest, alice: str, bob: str
) -> None:
    owned, _, before = await planted(rest, alice)
    error = await rest.error(
        "POST", "/conversations", user=bob, status=409, json={"id": owned, "title": "B's copy"}
    )
    assert error["code"] == "CONFLICT"
    assert await snapshot(rest.api, alice, owned) == before
    assert await stored_items(rest.api, keys.user_pk(bob)) == []
