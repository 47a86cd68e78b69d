"""The REST routes over HTTP: tokens, media types, body size, malformed bodies, methods, and
the OpenAPI document, each refusal in the REST error shape."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest

from tests.api.harness import new_id
from tests.api.rest_harness import Rest
from tests.apps import AppFactory
from tests.tokens import tamper_signature

ROUTES = [
    ("GET", "/conversations"),
    ("POST", "/conversations"),
    ("GET", "/conversations/{id}"),
    ("PUT", "/conversations/{id}"),
    ("DELETE", "/conversations/{id}"),
    ("POST", "/conversations/{id}/messages"),
    ("GET", "/projects"),
    ("POST", "/projects"),
    ("GET", "/projects/{id}"),
    ("PATCH", "/projects/{id}"),
    ("DELETE", "/projects/{id}"),
]
BODIES = {
    "/conversations": {"title": "x"},
    "/conversations/{id}": {"title": "x"},
    "/conversations/{id}/messages": {"role": "user", "content": "x"},
    "/projects": {"id": "3f2a1b0c-0000-4000-8000-000000000001", "name": "x"},
    "/projects/{id}": {"name": "x"},
}
BODY_METHODS = ("POST", "PUT", "PATCH")
WRITES = [(method, path) for method, path in ROUTES if method in BODY_METHODS]


def concrete(path: str) -> str:
    return path.replace("{id}", new_id())


def body_for(method: str, path: str) -> dict[str, str] | None:
    return BODIES[path] if method in BODY_METHODS else None


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_without_a_token_is_401_in_the_rest_shape(
    rest: Rest, method: str, path: str
) -> None:
    response = await rest.request(method, concrete(path), user=None, json=body_for(method, path))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": {"code": "UNAUTHENTICATED", "message": "missing bearer token"}
    }


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_route_with_a_forged_token_is_401_and_never_echoes_it(
    rest: Rest, alice: str, method: str, path: str
) -> None:
    forged = tamper_signature(rest.api.token(alice))
    response = await rest.request(
        method,
        concrete(path),
        user=None,
        json=body_for(method, path),
        headers={"Authorization": f"Bearer {forged}"},
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "UNAUTHENTICATED"
    assert forged not in response.text
    assert forged.split(".")[2][:12] not in response.text


async def test_a_malformed_authorization_header_is_401(rest: Rest) -> None:
    response = await rest.request(
        "GET", "/conversations", user=None, headers={"Authorization": "Basic abc"}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


async def test_graphql_refusals_keep_the_graphql_shape(rest: Rest) -> None:
    response = await rest.api.http.post(
        "/graphql", json={"query": "{ __typename }"}, headers={"Authorization": "Bearer x.y.z"}
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}


# --- media types and sizes ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
async def test_a_body_that_is_not_json_is_415_before_anything_else(
    rest: Rest, alice: str, method: str, path: str, content_type: str | None
) -> None:
    response = await rest.request(
        method,
        concrete(path),
        user=None,  # the media type is refused before the token is looked at
        content=json.dumps(BODIES[path]).encode(),
        headers={} if content_type is None else {"Content-Type": content_type},
    )
    assert response.status_code == 415
    assert response.json() == {
        "error": {
            "code": "BAD_REQUEST",
            "message": "requests must be JSON (Content-Type: application/json)",
        }
    }


async def test_json_with_a_charset_is_json(rest: Rest, alice: str) -> None:
    response = await rest.request(
        "POST",
        "/conversations",
        user=alice,
        content=b'{"title": "charset"}',
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_a_declared_oversized_body_is_413_before_authentication(rest: Rest) -> None:
    limit = rest.api.services.settings.max_body_bytes
    response = await rest.request(
        "POST",
        "/conversations",
        user=None,
        content=b'{"title": "' + b"x" * limit + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "code": "BAD_REQUEST",
            "message": f"request body is larger than the limit of {limit} bytes",
        }
    }


async def test_a_streamed_oversized_body_is_413_and_stores_nothing(
    rest: Rest, alice: str, caplog: pytest.LogCaptureFixture
) -> None:
    created = await rest.create(alice)
    limit = rest.api.services.settings.max_body_bytes

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"role": "user", "content": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = await rest.api.http.post(
        f"/conversations/{created['id']}/messages",
        content=chunks(),
        headers={**rest.api.headers(alice), "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "BAD_REQUEST"
    assert (await rest.get(alice, created["id"]))["messageCount"] == 0
    # The route saw the client go away; that is no fault of ours to log.
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the request body is not valid JSON"),
        (b"{title: 'x'}", "the request body is not valid JSON"),
        (b'{"title": "x"', "the request body is not valid JSON"),
        (b"\xff\xfe\x00", "the request body is not valid JSON"),
        (b"[" * 100_000, "the request body is not valid JSON"),
        (b'["title", "x"]', "the request body must be a JSON object"),
        (b'"x"', "the request body must be a JSON object"),
        (b"null", "the request body must be a JSON object"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400(
    rest: Rest, alice: str, content: bytes, message: str
) -> None:
    error = await rest.error(
        "POST",
        "/conversations",
        user=alice,
        status=400,
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert error == {"code": "BAD_REQUEST", "message": message}
    assert (await rest.ok("GET", "/conversations", user=alice))["conversations"] == []


# --- methods ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/conversations/{id}", "GET, PUT, DELETE"),
        ("DELETE", "/conversations", "GET, POST"),
        ("GET", "/conversations/{id}/messages", "POST"),
    ],
)
async def test_another_method_is_405_with_allow(
    rest: Rest, alice: str, method: str, path: str, allow: str
) -> None:
    response = await rest.request(method, concrete(path), user=alice, json={"title": "x"})
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "BAD_REQUEST"


# --- the document -------------------------------------------------------------------------


async def test_the_openapi_document_is_served_without_a_token(rest: Rest) -> None:
    response = await rest.api.http.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json()["openapi"] == "3.1.0"
    assert {
        operation["operationId"]
        for path in response.json()["paths"].values()
        for operation in path.values()
    } == {
        "listConversations",
        "createConversation",
        "getConversation",
        "updateConversation",
        "deleteConversation",
        "addMessage",
        "startMessage",
        "appendMessage",
        "finishMessage",
        "listProjects",
        "createProject",
        "getProject",
        "updateProject",
        "deleteProject",
    }


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_cors_lets_a_configured_origin_update_and_delete(
    make_api: AppFactory, method: str
) -> None:
    async with make_api(cors_allow_origins=("https://chat.example",)) as cors:
        response = await cors.http.options(
            f"/conversations/{new_id()}",
            headers={
                "Origin": "https://chat.example",
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
    assert response.status_code == 200
    assert method in response.headers["access-control-allow-methods"]
