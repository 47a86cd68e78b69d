"""The project routes, and projectId on the conversation routes: every answer checked against
the OpenAPI document, the same rules and codes as GraphQL."""

from __future__ import annotations

from typing import Any

from graphql_api.errors import PROJECT_NOT_FOUND_MESSAGE
from tests.api.harness import new_id
from tests.api.rest_harness import Rest


async def new_project(rest: Rest, user: str, name: str = "A project", **fields: Any) -> Any:
    return await rest.ok(
        "POST", "/projects", user=user, status=201, json={"id": new_id(), "name": name, **fields}
    )


async def test_a_project_is_created_read_renamed_and_listed(rest: Rest, alice: str) -> None:
    project_id = new_id()
    body = {"id": project_id.upper(), "name": " Garden ", "instructions": "Metric units."}
    response = await rest.request("POST", "/projects", user=alice, json=body)
    assert response.status_code == 201
    created = response.json()
    assert response.headers["location"] == f"/projects/{project_id}"
    assert (created["id"], created["name"], created["conversationCount"]) == (
        project_id,
        "Garden",
        0,
    )
    again = await rest.ok("POST", "/projects", user=alice, status=201, json=body)
    assert again == created

    changes = {"name": "Allotment", "expectedVersion": 1}
    renamed = await rest.ok("PATCH", f"/projects/{project_id}", user=alice, json=changes)
    assert (renamed["name"], renamed["instructions"], renamed["version"]) == (
        "Allotment",
        "Metric units.",
        2,
    )
    assert await rest.ok("GET", f"/projects/{project_id}", user=alice) == renamed
    stale = await rest.error(
        "PATCH", f"/projects/{project_id}", user=alice, status=409, json=changes
    )
    assert stale["code"] == "CONFLICT"


async def test_projects_page_with_next_cursor(rest: Rest, alice: str) -> None:
    for index in range(3):
        await new_project(rest, alice, f"p{index}")
    first = await rest.ok("GET", "/projects", user=alice, params={"limit": 2})
    second = await rest.ok(
        "GET", "/projects", user=alice, params={"limit": 2, "cursor": first["nextCursor"]}
    )

    assert [project["name"] for project in first["projects"]] == ["p2", "p1"]
    assert [project["name"] for project in second["projects"]] == ["p0"]
    assert second["nextCursor"] is None


async def test_conversations_are_created_in_and_moved_between_projects(
    rest: Rest, alice: str
) -> None:
    project = await new_project(rest, alice)
    created = await rest.create(alice, "In it", projectId=project["id"])
    assert created["projectId"] == project["id"]

    moved = await rest.ok(
        "PUT",
        f"/conversations/{created['id']}",
        user=alice,
        json={"projectId": None, "title": "Out of it", "expectedVersion": 1},
    )
    assert (moved["projectId"], moved["title"], moved["version"]) == (None, "Out of it", 2)
    read = await rest.ok("GET", f"/projects/{project['id']}", user=alice)
    assert read["conversationCount"] == 0
    untouched = await rest.ok(
        "PUT", f"/conversations/{created['id']}", user=alice, json={"title": "Renamed"}
    )
    assert untouched["projectId"] is None


async def test_deleting_a_project_answers_progress_until_done(rest: Rest, alice: str) -> None:
    project = await new_project(rest, alice)
    kept = await rest.create(alice, "kept", projectId=project["id"])
    doomed = await new_project(rest, alice)
    gone = await rest.create(alice, "gone", projectId=doomed["id"])

    moved_out = await rest.ok("DELETE", f"/projects/{project['id']}", user=alice)
    deleted = await rest.ok(
        "DELETE",
        f"/projects/{doomed['id']}",
        user=alice,
        params={"deleteConversations": "true"},
    )

    assert moved_out == deleted == {"done": True, "conversationsRemaining": 0}
    assert (await rest.get(alice, kept["id"]))["projectId"] is None
    missing = await rest.error("GET", f"/conversations/{gone['id']}", user=alice, status=404)
    assert missing["code"] == "NOT_FOUND"
    error = await rest.error("GET", f"/projects/{project['id']}", user=alice, status=404)
    assert error == {"code": "NOT_FOUND", "message": PROJECT_NOT_FOUND_MESSAGE}


async def test_another_users_project_is_404_everywhere(rest: Rest, alice: str, bob: str) -> None:
    theirs = await new_project(rest, alice)
    mine = await rest.create(bob)
    path = f"/projects/{theirs['id']}"

    for method, route, body in (
        ("GET", path, None),
        ("PATCH", path, {"name": "hijacked"}),
        ("DELETE", path, None),
        ("POST", "/conversations", {"title": "planted", "projectId": theirs["id"]}),
        ("PUT", f"/conversations/{mine['id']}", {"projectId": theirs["id"]}),
    ):
        kw: dict[str, Any] = {} if body is None else {"json": body}
        error = await rest.error(method, route, user=bob, status=404, **kw)
        assert error["code"] == "NOT_FOUND", (method, route)
    assert await rest.ok("GET", path, user=alice) == theirs
    assert (await rest.ok("GET", "/projects", user=bob))["projects"] == []


async def test_bad_project_input_names_the_field(rest: Rest, alice: str) -> None:
    cases: list[tuple[str, str, dict[str, Any] | None, dict[str, str], str]] = [
        ("POST", "/projects", {"id": new_id(), "name": ""}, {}, "name"),
        ("POST", "/projects", {"id": new_id(), "name": "x" * 201}, {}, "name"),
        ("POST", "/projects", {"name": "no id"}, {}, "id"),
        (
            "POST",
            "/projects",
            {"id": new_id(), "name": "n", "instructions": "i" * 8001},
            {},
            "instructions",
        ),
        (
            "DELETE",
            f"/projects/{new_id()}",
            None,
            {"deleteConversations": "yes"},
            "deleteConversations",
        ),
        ("GET", "/projects/not-a-uuid", None, {}, "id"),
    ]
    for method, path, body, params, field in cases:
        kw: dict[str, Any] = {"params": params}
        if body is not None:
            kw["json"] = body
        error = await rest.error(method, path, user=alice, status=400, **kw)
        assert (error["code"], error["field"]) == ("BAD_USER_INPUT", field), (path, body)
    assert (await rest.ok("GET", "/projects", user=alice))["projects"] == []
