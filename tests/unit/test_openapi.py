"""The committed OpenAPI document stays true to the code, valid OpenAPI 3.1, and in the forms
swift-openapi-generator turns into a usable client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openapi_spec_validator import validate

from graphql_api.rest.bodies import SHAPES
from graphql_api.rest.openapi import OPENAPI_PATH, openapi_document, openapi_json
from graphql_api.settings import InputLimits

DOCUMENT = openapi_document(InputLimits())
OPERATIONS = [
    (path, method, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
]


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def resolve(pointer: str) -> Any:
    node: Any = DOCUMENT
    for part in pointer.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_the_committed_document_matches_the_code() -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8")
    assert committed == openapi_json(InputLimits()), (
        "schema/openapi.json is stale: run `chat-history-api export-openapi` and commit it"
    )


def test_it_is_a_valid_openapi_3_1_document() -> None:
    assert DOCUMENT["openapi"] == "3.1.0"
    validate(json.loads(openapi_json(InputLimits())))


def test_it_describes_the_seed_routes_the_stream_routes_the_project_routes_and_no_more() -> None:
    assert sorted((method.upper(), path, op["operationId"]) for path, method, op in OPERATIONS) == [
        ("DELETE", "/conversations/{id}", "deleteConversation"),
        ("DELETE", "/projects/{id}", "deleteProject"),
        ("GET", "/conversations", "listConversations"),
        ("GET", "/conversations/{id}", "getConversation"),
        ("GET", "/projects", "listProjects"),
        ("GET", "/projects/{id}", "getProject"),
        ("PATCH", "/projects/{id}", "updateProject"),
        ("POST", "/conversations", "createConversation"),
        ("POST", "/conversations/{id}/messages", "addMessage"),
        ("POST", "/conversations/{id}/messages/stream", "startMessage"),
        ("POST", "/conversations/{id}/messages/{messageId}/deltas", "appendMessage"),
        ("POST", "/conversations/{id}/messages/{messageId}/finish", "finishMessage"),
        ("POST", "/projects", "createProject"),
        ("PUT", "/conversations/{id}", "updateConversation"),
    ]


def test_every_reference_resolves() -> None:
    for key, value in walk(DOCUMENT):
        if key == "$ref":
            assert resolve(value), value


def test_no_construct_the_swift_generator_mishandles() -> None:
    # It drops `anyOf`/`oneOf` with a null branch, and 3.1 has no `nullable`.
    keys = {key for key, _ in walk(DOCUMENT)}
    assert not keys & {"anyOf", "oneOf", "allOf", "nullable"}


def test_nullable_values_are_type_arrays() -> None:
    model_id = DOCUMENT["components"]["schemas"]["Conversation"]["properties"]["modelId"]
    assert model_id["type"] == ["string", "null"]
    assert "modelId" in DOCUMENT["components"]["schemas"]["Conversation"]["required"]


def test_bodies_are_named_components() -> None:
    for _, _, operation in OPERATIONS:
        contents = [
            response.get("content")
            for response in operation["responses"].values()
            if "$ref" not in response
        ]
        if "requestBody" in operation:
            contents.append(operation["requestBody"]["content"])
        for content in filter(None, contents):
            assert list(content) == ["application/json"]
            assert set(content["application/json"]["schema"]) == {"$ref"}


@pytest.mark.parametrize(
    ("path", "method", "operation"),
    OPERATIONS,
    ids=[operation["operationId"] for _, _, operation in OPERATIONS],
)
def test_every_error_response_has_the_error_schema(
    path: str, method: str, operation: dict[str, Any]
) -> None:
    statuses = set(operation["responses"])
    assert {"401", "500", "503"} <= statuses
    if "requestBody" in operation:
        assert {"413", "415"} <= statuses
    if "{id}" in path:
        assert {"400", "404"} <= statuses
    for status, response in operation["responses"].items():
        if int(status) < 400:
            continue
        schema = resolve(response["$ref"])["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/Error"}


def test_every_operation_needs_the_bearer_token() -> None:
    scheme = DOCUMENT["components"]["securitySchemes"]["cognito"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    assert DOCUMENT["security"] == [{"cognito": []}]
    assert all("security" not in operation for _, _, operation in OPERATIONS)


def test_error_codes_are_those_of_graphql() -> None:
    codes = DOCUMENT["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
    assert "NOT_FOUND" in codes
    assert "BAD_USER_INPUT" in codes
    assert "UNAUTHENTICATED" in codes


def test_page_sizes_are_the_configured_ones() -> None:
    document = openapi_document(InputLimits(default_page_size=10, max_page_size=50))
    (limit,) = [
        parameter
        for parameter in document["paths"]["/conversations"]["get"]["parameters"]
        if parameter["name"] == "limit"
    ]
    assert limit["schema"] == {
        "type": "integer",
        "format": "int32",
        "minimum": 0,
        "maximum": 50,
        "default": 10,
    }


def test_every_shape_is_a_component_once() -> None:
    names = [shape.name for shape in SHAPES]
    assert len(names) == len(set(names))
    assert sorted(DOCUMENT["components"]["schemas"]) == sorted(names)
