"""GraphQL over HTTP: every row of the spec's status-code table, for both response media types.

`application/graphql-response+json` clients get the spec's codes: 400 for a request refused
before execution (a request error). `application/json` clients (and clients sending no Accept)
keep what they always got: 200 for GraphQL's own refusals, 400 for a body that is not a
GraphQL request. A request error carries no `data` with either.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from graphql_api.errors import Code
from tests.api.harness import Api

SPEC = "application/graphql-response+json"
LEGACY = "application/json"
APOLLO_CLIENT_ACCEPT = "application/graphql-response+json,application/json;q=0.9"

ONE_ID = "query One($id: ID!) { conversation(id: $id) { id } }"


def nested(levels: int) -> str:
    return "{ " + "a { " * levels + "b" + " }" * levels + " }"


# One document per document limit, over it by the service's defaults (api_settings): each
# refused with the limit's own code. Introspection disabled is test_hardening's: the app here
# allows it.
OVER_A_LIMIT: list[tuple[str, str, Code]] = [
    ("depth", nested(21), Code.MAX_DEPTH_LIMIT),
    (
        "aliases",
        "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }",
        Code.MAX_ALIASES_LIMIT,
    ),
    ("tokens", "{ " + "a " * 2000 + "}", Code.MAX_TOKENS_LIMIT),
    ("bytes", "{ __typename }" + " " * 16 * 1024, Code.MAX_DOCUMENT_BYTES_LIMIT),
    ("directives", "{ __typename" + " @skip(if: false)" * 21 + " }", Code.MAX_DIRECTIVES_LIMIT),
    ("repeats of a field", "{ " + "__typename " * 4 + "}", Code.MAX_FIELD_REPEATS_LIMIT),
    (
        "introspection lists",
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }",
        Code.MAX_INTROSPECTION_LISTS_LIMIT,
    ),
]

# (row, method, body or query string, status for legacy JSON, every error's code); the spec's
# media type answers 400 to each.
REQUEST_ERRORS: list[tuple[str, str, str, int, Code]] = [
    ("body is not JSON", "POST", "NONSENSE", 400, Code.BAD_REQUEST),
    ("body is truncated JSON", "POST", '{"query":', 400, Code.BAD_REQUEST),
    ("body is empty", "POST", "", 400, Code.BAD_REQUEST),
    ("body nests deeper than any parser goes", "POST", "[" * 100_000, 400, Code.BAD_REQUEST),
    (
        "body is a JSON array (a batch)",
        "POST",
        '[{"query": "{ __typename }"}]',
        400,
        Code.BAD_REQUEST,
    ),
    ("body is a JSON string", "POST", '"{ __typename }"', 400, Code.BAD_REQUEST),
    ("query is missing", "POST", '{"qeury": "{ __typename }"}', 400, Code.BAD_REQUEST),
    ("query is null", "POST", '{"query": null}', 400, Code.BAD_REQUEST),
    ("query is a number", "POST", '{"query": 7}', 400, Code.BAD_REQUEST),
    ("query is false", "POST", '{"query": false}', 400, Code.BAD_REQUEST),
    ("query is an object", "POST", '{"query": {"a": 1}}', 400, Code.BAD_REQUEST),
    (
        "variables is a list",
        "POST",
        '{"query": "{ __typename }", "variables": [7]}',
        400,
        Code.BAD_REQUEST,
    ),
    (
        "operationName is a number",
        "POST",
        '{"query": "{ __typename }", "operationName": 5}',
        400,
        Code.BAD_REQUEST,
    ),
    (
        "extensions is a string",
        "POST",
        '{"query": "{ __typename }", "extensions": "x"}',
        400,
        Code.BAD_REQUEST,
    ),
    ("document does not parse", "POST", json.dumps({"query": "{"}), 200, Code.BAD_USER_INPUT),
    (
        "document does not validate",
        "POST",
        json.dumps({"query": "{ nope }"}),
        200,
        Code.BAD_USER_INPUT,
    ),
    *(
        (f"document is over the limit of {limit}", "POST", json.dumps({"query": query}), 200, code)
        for limit, query, code in OVER_A_LIMIT
    ),
    (
        "operation is ambiguous",
        "POST",
        json.dumps({"query": "query A { __typename } query B { __typename }"}),
        400,
        Code.BAD_USER_INPUT,
    ),
    (
        "operation name is unknown",
        "POST",
        json.dumps({"query": "query A { __typename }", "operationName": "B"}),
        400,
        Code.BAD_USER_INPUT,
    ),
    (
        "variable has the wrong type",
        "POST",
        json.dumps({"query": ONE_ID, "variables": {"id": 5.5}}),
        200,
        Code.BAD_USER_INPUT,
    ),
    (
        "required variable is null",
        "POST",
        json.dumps({"query": ONE_ID, "variables": {"id": None}}),
        200,
        Code.BAD_USER_INPUT,
    ),
    (
        "required variable is missing",
        "POST",
        json.dumps({"query": ONE_ID}),
        200,
        Code.BAD_USER_INPUT,
    ),
    (
        "subscription over HTTP",
        "POST",
        json.dumps({"query": "subscription { __typename }"}),
        200,
        Code.BAD_USER_INPUT,
    ),
    ("GET with an empty query", "GET", "query=&variables=%7B%7D", 400, Code.BAD_REQUEST),
    (
        "GET with variables that are not JSON",
        "GET",
        "query=%7B__typename%7D&variables=x",
        400,
        Code.BAD_REQUEST,
    ),
    ("GET with a document that does not parse", "GET", "query=%7B", 200, Code.BAD_USER_INPUT),
    (
        "GET with a document over a limit",
        "GET",
        urlencode({"query": nested(21)}),
        200,
        Code.MAX_DEPTH_LIMIT,
    ),
]


async def send(
    api: Api, user: str, method: str, payload: str, *, accept: str | None, **headers: str
) -> httpx.Response:
    sent = {**api.headers(user), **headers}
    if accept is not None:
        sent["Accept"] = accept
    if method == "GET":
        return await api.http.get(f"/graphql?{payload}", headers=sent)
    sent.setdefault("Content-Type", "application/json")
    return await api.http.request(method, "/graphql", content=payload.encode(), headers=sent)


def request_error(response: httpx.Response, code: Code) -> list[dict[str, Any]]:
    """The errors of a request refused before execution: each with `code`, and no `data`."""
    body = response.json()
    assert "data" not in body, body
    errors: list[dict[str, Any]] = body["errors"]
    assert errors, body
    assert all(error["message"] for error in errors), body
    assert [error["extensions"]["code"] for error in errors] == [code.value] * len(errors), body
    return errors


@pytest.mark.parametrize(
    ("row", "method", "payload", "legacy_status", "code"),
    REQUEST_ERRORS,
    ids=[row[0] for row in REQUEST_ERRORS],
)
@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, SPEC])
async def test_a_request_error_with_the_spec_media_type_is_400_without_data(
    api: Api,
    alice: str,
    row: str,
    method: str,
    payload: str,
    legacy_status: int,
    code: Code,
    accept: str,
) -> None:
    response = await send(api, alice, method, payload, accept=accept)

    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == f"{SPEC}; charset=utf-8"
    request_error(response, code)


@pytest.mark.parametrize(
    ("row", "method", "payload", "legacy_status", "code"),
    REQUEST_ERRORS,
    ids=[row[0] for row in REQUEST_ERRORS],
)
@pytest.mark.parametrize("accept", [LEGACY, None, "*/*"], ids=["json", "no-accept", "any"])
async def test_a_request_error_for_a_legacy_client_keeps_its_old_status_without_data(
    api: Api,
    alice: str,
    row: str,
    method: str,
    payload: str,
    legacy_status: int,
    code: Code,
    accept: str | None,
) -> None:
    response = await send(api, alice, method, payload, accept=accept)

    assert response.status_code == legacy_status, response.text
    assert response.headers["content-type"] == LEGACY
    request_error(response, code)


@pytest.mark.parametrize(
    ("limit", "query", "code"), OVER_A_LIMIT, ids=[row[0] for row in OVER_A_LIMIT]
)
async def test_a_document_over_a_limit_gets_one_error_naming_the_limit(
    api: Api, alice: str, limit: str, query: str, code: Code
) -> None:
    response = await send(api, alice, "POST", json.dumps({"query": query}), accept=SPEC)

    (error,) = request_error(response, code)
    assert "limit" in error["message"], error


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, SPEC, LEGACY, None])
async def test_a_served_query_is_200_with_data_in_the_media_type_asked_for(
    api: Api, alice: str, accept: str | None
) -> None:
    response = await send(
        api, alice, "POST", json.dumps({"query": "{ conversations { totalCount } }"}), accept=accept
    )

    assert response.status_code == 200
    assert response.json() == {"data": {"conversations": {"totalCount": 0}}}
    expected = f"{SPEC}; charset=utf-8" if accept in (APOLLO_CLIENT_ACCEPT, SPEC) else LEGACY
    assert response.headers["content-type"] == expected


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_field_errors_during_execution_stay_200_with_data(
    api: Api, alice: str, accept: str
) -> None:
    query = '{ conversations { totalCount } conversation(id: "not-a-uuid") { id } }'
    response = await send(api, alice, "POST", json.dumps({"query": query}), accept=accept)

    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"conversations": {"totalCount": 0}, "conversation": None}
    (error,) = body["errors"]
    assert (error["path"], error["extensions"]["code"]) == (["conversation"], "BAD_USER_INPUT")


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_a_mutation_over_get_is_405_allowing_post_and_writes_nothing(
    api: Api, alice: str, accept: str
) -> None:
    mutation = 'mutation { createConversation(input: {title: "x"}) { conversation { id } } }'
    response = await api.http.get(
        "/graphql", params={"query": mutation}, headers={**api.headers(alice), "Accept": accept}
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "data" not in response.json()
    listed = await api.data("{ conversations { totalCount } }", user=alice)
    assert listed == {"conversations": {"totalCount": 0}}


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
async def test_other_methods_are_405_allowing_get_and_post(
    api: Api, alice: str, accept: str, method: str
) -> None:
    response = await send(api, alice, method, '{"query": "{ __typename }"}', accept=accept)

    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_a_body_that_is_not_json_by_its_type_is_415(
    api: Api, alice: str, accept: str
) -> None:
    response = await send(
        api, alice, "POST", "query={__typename}", accept=accept, **{"Content-Type": "text/plain"}
    )

    assert response.status_code == 415


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_a_body_over_the_limit_is_413(api: Api, alice: str, accept: str) -> None:
    limit = api.services.settings.max_body_bytes
    payload = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * limit}})

    response = await send(api, alice, "POST", payload, accept=accept)

    assert response.status_code == 413


@pytest.mark.parametrize("accept", ["text/html", "application/xml", f"{SPEC};q=0, {LEGACY};q=0"])
async def test_no_acceptable_media_type_is_406(api: Api, alice: str, accept: str) -> None:
    response = await send(api, alice, "POST", '{"query": "{ __typename }"}', accept=accept)

    assert response.status_code == 406
    assert "data" not in response.json()


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_missing_and_bad_tokens_stay_401(api: Api, accept: str) -> None:
    query = json.dumps({"query": "{ __typename }"})
    headers = {"Accept": accept, "Content-Type": "application/json"}
    missing = await api.http.post("/graphql", content=query, headers=headers)
    bad = await api.http.post(
        "/graphql", content=query, headers={**headers, "Authorization": "Bearer a.b.c"}
    )

    for response in (missing, bad):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
