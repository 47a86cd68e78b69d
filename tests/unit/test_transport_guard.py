"""The transport guard: JSON-only POSTs and a body size limit, in front of any ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from graphql_api.transport import TransportGuard, TransportPaths, graphql_paths

LIMIT = 1000


async def echo_size(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


def client() -> httpx.AsyncClient:
    inner = Starlette(routes=[Route("/graphql", echo_size, methods=["GET", "POST"])])
    app = TransportGuard(inner, transports=[graphql_paths("/graphql")], max_body_bytes=LIMIT)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test")


async def test_json_post_within_the_limit_passes() -> None:
    async with client() as http:
        response = await http.post("/graphql", json={"query": "{ x }"})
    assert response.status_code == 200
    assert response.json()["received"] > 0


async def test_url_encoded_post_is_refused() -> None:
    async with client() as http:
        response = await http.post("/graphql", data={"query": "mutation { x }"})
    assert response.status_code == 415
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


async def test_multipart_post_is_refused() -> None:
    async with client() as http:
        response = await http.post("/graphql", files={"operations": ("o.json", b"{}")})
    assert response.status_code == 415


async def test_text_plain_post_is_refused() -> None:
    async with client() as http:
        response = await http.post(
            "/graphql", content=b'{"query":"{ x }"}', headers={"content-type": "text/plain"}
        )
    assert response.status_code == 415


async def test_declared_oversized_body_gets_413() -> None:
    async with client() as http:
        response = await http.post("/graphql", json={"query": "x" * (LIMIT + 1)})
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["errors"][0]["message"]


async def test_streamed_oversized_body_without_length_gets_413() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(5):
            yield b"x" * 400

    async with client() as http:
        response = await http.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413


async def test_other_paths_are_not_guarded() -> None:
    inner = Starlette(routes=[Route("/other", echo_size, methods=["POST"])])
    app = TransportGuard(inner, transports=[graphql_paths("/graphql")], max_body_bytes=LIMIT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        response = await h.post("/other", content=b"a=b" * 1000)
    assert response.status_code == 200


def items_error(message: str, code: str, *, retry_after: int | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


REST_LIKE = TransportPaths(
    covers=lambda path: path.startswith("/items"),
    error_body=items_error,
    body_methods=frozenset({"POST", "PUT"}),
)


def rest_like(inner: Starlette) -> TransportGuard:
    return TransportGuard(inner, transports=[REST_LIKE], max_body_bytes=LIMIT)


async def test_a_transport_refuses_in_its_own_error_shape() -> None:
    inner = Starlette(routes=[Route("/items/{id}", echo_size, methods=["PUT"])])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(rest_like(inner)), base_url="http://t"
    ) as http:
        unsupported = await http.put("/items/1", content=b"a=b")
        too_large = await http.put("/items/1", json={"x": "y" * LIMIT})
        fine = await http.put("/items/1", json={"x": "y"})
    assert unsupported.status_code == 415
    assert unsupported.json() == {
        "error": {
            "code": "BAD_REQUEST",
            "message": "requests must be JSON (Content-Type: application/json)",
        }
    }
    assert too_large.status_code == 413
    assert too_large.json()["error"]["code"] == "BAD_REQUEST"
    assert fine.status_code == 200


async def test_the_graphql_guard_checks_only_post_bodies() -> None:
    inner = Starlette(routes=[Route("/graphql", echo_size, methods=["PUT"])])
    app = TransportGuard(inner, transports=[graphql_paths("/graphql")], max_body_bytes=LIMIT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        response = await h.put("/graphql", content=b"a=b")
    assert response.status_code == 200


async def test_one_guard_refuses_for_each_transport_in_its_own_shape() -> None:
    inner = Starlette(
        routes=[
            Route("/graphql", echo_size, methods=["POST"]),
            Route("/items/{id}", echo_size, methods=["PUT"]),
        ]
    )
    app = TransportGuard(
        inner, transports=[graphql_paths("/graphql"), REST_LIKE], max_body_bytes=LIMIT
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as h:
        graphql = await h.post("/graphql", content=b"a=b")
        rest = await h.put("/items/1", content=b"a=b")
        passed = await h.put("/items/1", json={"x": "y"})

    assert graphql.status_code == rest.status_code == 415
    assert graphql.json()["errors"][0]["extensions"]["code"] == "BAD_REQUEST"
    assert rest.json()["error"]["code"] == "BAD_REQUEST"
    assert passed.status_code == 200
