"""The share link routes: every answer checked against the OpenAPI document, the same rules
and codes as GraphQL, and the links they make read on the public route."""

from __future__ import annotations

from typing import Any

from graphql_api.storage.shares import new_link_id
from tests.api.harness import new_id
from tests.api.rest_harness import Rest


async def shared(rest: Rest, user: str, *contents: str) -> tuple[Any, Any]:
    conversation = await rest.create(user, "Tomatoes")
    for index, content in enumerate(contents):
        await rest.add(
            user, conversation["id"], content, role="user" if index % 2 == 0 else "assistant"
        )
    response = await rest.request(
        "POST", f"/conversations/{conversation['id']}/share-links", user=user, json={}
    )
    assert response.status_code == 201, response.text
    link = response.json()
    assert response.headers["location"] == f"/share-links/{link['id']}"
    return conversation, link


async def public(rest: Rest, link: Any) -> Any:
    response = await rest.api.http.get(link["path"], headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_link_is_made_listed_updated_and_revoked(rest: Rest, alice: str) -> None:
    conversation, link = await shared(rest, alice, "q", "a")
    assert (link["conversationId"], link["messageCount"], link["path"]) == (
        conversation["id"],
        2,
        f"/shared/{link['id']}",
    )
    assert [m["content"] for m in (await public(rest, link))["messages"]] == ["q", "a"]
    assert await rest.ok("GET", f"/share-links/{link['id']}", user=alice) == link
    of_conversation = await rest.ok(
        "GET", f"/conversations/{conversation['id']}/share-links", user=alice
    )
    assert of_conversation == {"shareLinks": [link]}

    await rest.add(alice, conversation["id"], "and then?")
    updated = await rest.ok("PATCH", f"/share-links/{link['id']}", user=alice, json={})
    assert (updated["id"], updated["messageCount"]) == (link["id"], 3)
    assert (await rest.ok("GET", "/share-links", user=alice))["shareLinks"] == [updated]

    await rest.ok("DELETE", f"/share-links/{link['id']}", user=alice, status=204)
    response = await rest.api.http.get(link["path"], headers={"Accept": "application/json"})
    assert response.status_code == 404
    missing = await rest.error("GET", f"/share-links/{link['id']}", user=alice, status=404)
    assert missing["code"] == "NOT_FOUND"


async def test_a_link_up_to_a_message_and_the_pages_of_links(rest: Rest, alice: str) -> None:
    conversation = await rest.create(alice)
    first = await rest.add(alice, conversation["id"], "first")
    await rest.add(alice, conversation["id"], "second", role="assistant")
    made = []
    for _ in range(3):
        made.append(
            await rest.ok(
                "POST",
                f"/conversations/{conversation['id']}/share-links",
                user=alice,
                status=201,
                json={"upToMessageId": first["id"]},
            )
        )
    page = await rest.ok("GET", "/share-links", user=alice, params={"limit": 2})
    rest_of = await rest.ok(
        "GET", "/share-links", user=alice, params={"limit": 2, "cursor": page["nextCursor"]}
    )

    assert [link["id"] for link in page["shareLinks"] + rest_of["shareLinks"]] == [
        link["id"] for link in reversed(made)
    ]
    assert rest_of["nextCursor"] is None
    assert [m["content"] for m in (await public(rest, made[0]))["messages"]] == ["first"]


async def test_anyone_signed_in_forks_a_live_link(rest: Rest, alice: str, bob: str) -> None:
    _, link = await shared(rest, alice, "q", "a")

    response = await rest.request("POST", f"/share-links/{link['id']}/forks", user=bob, json={})

    assert response.status_code == 201, response.text
    fork = response.json()
    assert response.headers["location"] == f"/conversations/{fork['id']}"
    assert (fork["title"], fork["messageCount"]) == ("Tomatoes", 2)
    opened = await rest.get(bob, fork["id"])
    assert [(m["role"], m["content"]) for m in opened["messages"]] == [
        ("user", "q"),
        ("assistant", "a"),
    ]
    dead = await rest.error(
        "POST", f"/share-links/{new_link_id()}/forks", user=bob, status=404, json={}
    )
    assert dead["code"] == "NOT_FOUND"


async def test_another_users_links_and_conversations_are_404(
    rest: Rest, alice: str, bob: str
) -> None:
    conversation, link = await shared(rest, alice, "q")
    one = f"/share-links/{link['id']}"

    for method, route, body in (
        ("GET", one, None),
        ("PATCH", one, {}),
        ("DELETE", one, None),
        ("GET", f"/conversations/{conversation['id']}/share-links", None),
        ("POST", f"/conversations/{conversation['id']}/share-links", {}),
    ):
        kw: dict[str, Any] = {} if body is None else {"json": body}
        error = await rest.error(method, route, user=bob, status=404, **kw)
        assert error["code"] == "NOT_FOUND", (method, route)
    assert (await rest.ok("GET", "/share-links", user=bob))["shareLinks"] == []
    assert (await public(rest, link))["title"] == "Tomatoes"


async def test_bad_share_link_input_names_the_field(rest: Rest, alice: str) -> None:
    conversation, link = await shared(rest, alice, "q")
    other = await rest.create(alice)
    elsewhere = await rest.add(alice, other["id"], "elsewhere")
    links = f"/conversations/{conversation['id']}/share-links"
    cases: list[tuple[str, str, dict[str, Any] | None, str]] = [
        ("POST", links, {"upToMessageId": elsewhere["id"]}, "upToMessageId"),
        ("POST", links, {"upToMessageId": "nope"}, "upToMessageId"),
        ("POST", links, {"upToMessageId": 5}, "upToMessageId"),
        ("POST", f"/conversations/{other['id']}x/share-links", {}, "id"),
        ("PATCH", f"/share-links/{link['id']}", {"upToMessageId": new_id()}, "upToMessageId"),
        ("GET", "/share-links/not-a-link", None, "id"),
        ("DELETE", "/share-links/not-a-link", None, "id"),
        ("POST", "/share-links/not-a-link/forks", {}, "id"),
    ]
    for method, path, body, field in cases:
        kw: dict[str, Any] = {} if body is None else {"json": body}
        error = await rest.error(method, path, user=alice, status=400, **kw)
        assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field), (path, body)


async def test_the_routes_need_a_token_but_the_public_one_takes_none(
    rest: Rest, alice: str
) -> None:
    _, link = await shared(rest, alice, "q")
    for method, route in (
        ("GET", "/share-links"),
        ("DELETE", f"/share-links/{link['id']}"),
        ("POST", f"/share-links/{link['id']}/forks"),
    ):
        error = await rest.error(method, route, user=None, status=401, json={})
        assert error["code"] == "UNAUTHENTICATED"
    # A token sent to the public route, even a forged one, is not looked at.
    forged = {"Authorization": "Bearer not.a.token", "Accept": "application/json"}
    response = await rest.api.http.get(link["path"], headers=forged)
    assert response.status_code == 200
