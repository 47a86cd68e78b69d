"""Drive the REST routes in-process, and hold every answer to the OpenAPI document.

Each response is checked against the document the app serves: its status must be one the
operation documents, its body must validate against that status's schema (with no field the
document does not name), and a documented header must be present. So a test of a route is
also a test that the document tells the truth about it.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker

from tests.api.harness import Api

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_UNSENT: Any = object()


@dataclasses.dataclass
class Rest:
    api: Api
    document: dict[str, Any]

    @classmethod
    async def on(cls, api: Api) -> Rest:
        response = await api.http.get("/openapi.json")
        assert response.status_code == 200, response.text
        return cls(api=api, document=response.json())

    async def request(
        self,
        method: str,
        path: str,
        *,
        user: str | None,
        json: Any = _UNSENT,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> httpx.Response:
        sent = {**({} if user is None else self.api.headers(user)), **(headers or {})}
        response = await (client or self.api.http).request(
            method,
            path,
            params=params,
            headers=sent,
            content=content,
            **({} if json is _UNSENT else {"json": json}),
        )
        conforms(self.document, method, path, response)
        return response

    async def ok(self, method: str, path: str, *, user: str, status: int = 200, **kw: Any) -> Any:
        """The JSON body of a request that must succeed with `status`."""
        response = await self.request(method, path, user=user, **kw)
        assert response.status_code == status, response.text
        return response.json() if response.content else None

    async def error(
        self, method: str, path: str, *, user: str | None, status: int, **kw: Any
    ) -> dict[str, Any]:
        """The `error` object of a request that must fail with `status`."""
        response = await self.request(method, path, user=user, **kw)
        assert response.status_code == status, response.text
        body: dict[str, Any] = response.json()
        assert list(body) == ["error"], body
        detail: dict[str, Any] = body["error"]
        return detail

    async def create(self, user: str, title: str = "A conversation", **fields: Any) -> Any:
        return await self.ok(
            "POST", "/conversations", user=user, status=201, json={"title": title, **fields}
        )

    async def add(
        self, user: str, conversation_id: str, content: str, role: str = "user", **fields: Any
    ) -> Any:
        return await self.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            user=user,
            status=201,
            json={"role": role, "content": content, **fields},
        )

    async def get(self, user: str, conversation_id: str, **params: str | int) -> Any:
        return await self.ok("GET", f"/conversations/{conversation_id}", user=user, params=params)


def conforms(document: dict[str, Any], method: str, path: str, response: httpx.Response) -> None:
    operation = _operation(document, method, path)
    if operation is None:
        # Not a documented operation (another method, say): still the REST error shape.
        if response.status_code >= 400:
            _validate(document, {"$ref": "#/components/schemas/Error"}, response.json())
        return
    status = str(response.status_code)
    assert status in operation["responses"], (
        f"{method} {path} answered {status}, which the document does not list: {response.text}"
    )
    described = operation["responses"][status]
    if "$ref" in described:
        described = _resolve(document, described["$ref"])
    for header in described.get("headers", {}):
        assert header.lower() in response.headers, f"{header} missing from {method} {path}"
    content = described.get("content")
    if content is None:
        assert response.content == b"", response.content
        return
    assert response.headers["content-type"] == "application/json"
    _validate(document, content["application/json"]["schema"], response.json())


def _operation(document: dict[str, Any], method: str, path: str) -> dict[str, Any] | None:
    for template, operations in document["paths"].items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            found: dict[str, Any] | None = operations.get(method.lower())
            return found
    return None


def _resolve(document: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: Any = document
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    resolved: dict[str, Any] = node
    return resolved


def _validate(document: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    components = copy.deepcopy(document["components"])
    for shape in components["schemas"].values():
        # An answer may hold only what the document names.
        shape["additionalProperties"] = False
    validator = Draft202012Validator(
        {**schema, "components": components}, format_checker=FormatChecker()
    )
    validator.validate(instance)
