"""GraphQL over HTTP: every row of the spec's status-code table, for both response media types.

`application/graphql-response+json` clients get the spec's codes and, for a request refused
before execution, `errors` without `data`; `application/json` clients (and clients sending no
Accept) keep what they always got: 200 for GraphQL's own refusals, 400 for a body that is not
a GraphQL request.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.api.harness import Api

SPEC = "application/graphql-response+json"
LEGACY = "application/json"
APOLLO_CLIENT_ACCEPT = "application/graphql-response+json,application/json;q=0.9"

SIXTEEN_ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(16)) + " }"
ONE_ID = "query One($id: ID!) { conversation(id: $id) { id } }"

# (row, method, body or query string, status with the spec's type, status for legacy JSON)
# A legacy 200 always carries `"data": null` beside the errors.
REQUEST_ERRORS: list[tuple[str, str, str, int, int]] = [
    ("body is not JSON", "POST", "NONSENSE", 400, 400),
    ("body is truncated JSON", "POST", '{"query":', 400, 400),
    ("body is empty", "POST", "", 400, 400),
    ("body nests deeper than any parser goes", "POST", "[" * 100_000, 400, 400),
    ("body is a JSON array (a batch)", "POST", '[{"query": "{ __typename }"}]', 422, 400),
    ("body is a JSON string", "POST", '"{ __typename }"', 422, 400),
    ("query is missing", "POST", '{"qeury": "{ __typename }"}', 422, 400),
    ("query is null", "POST", '{"query": null}', 422, 400),
    ("query is a number", "POST", '{"query": 7}', 422, 400),
    ("query is an object", "POST", '{"query": {"a": 1}}', 422, 400),
    ("variables is a list", "POST", '{"query": "{ __typename }", "variables": [7]}', 422, 400),
    (
        "operationName is a number",
        "POST",
        '{"query": "{ __typename }", "operationName": 5}',
        422,
        400,
    ),
    ("extensions is a string", "POST", '{"query": "{ __typename }", "extensions": "x"}', 422, 400),
    ("document does not parse", "POST", json.dumps({"query": "{"}), 400, 200),
    ("document does not validate", "POST", json.dumps({"query": "{ nope }"}), 422, 200),
    ("document breaks the alias limit", "POST", json.dumps({"query": SIXTEEN_ALIASES}), 422, 200),
    (
        "operation is ambiguous",
        "POST",
        json.dumps({"query": "query A { __typename } query B { __typename }"}),
        422,
        400,
    ),
    (
        "operation name is unknown",
        "POST",
        json.dumps({"query": "query A { __typename }", "operationName": "B"}),
        422,
        400,
    ),
    (
        "variable has the wrong type",
        "POST",
        json.dumps({"query": ONE_ID, "variables": {"id": 5.5}}),
        422,
        200,
    ),
    ("required variable is missing", "POST", json.dumps({"query": ONE_ID}), 422, 200),
    (
        "subscription over HTTP",
        "POST",
        json.dumps({"query": "subscription { __typename }"}),
        422,
        200,
    ),
    ("GET with an empty query", "GET", "query=&variables=%7B%7D", 422, 400),
    ("GET with variables that are not JSON", "GET", "query=%7B__typename%7D&variables=x", 422, 400),
    ("GET with a document that does not parse", "GET", "query=%7B", 400, 200),
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


def the_errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    errors: list[dict[str, Any]] = body["errors"]
    assert errors, body
    assert all(error["message"] for error in errors), body
    codes = {"BAD_REQUEST", "BAD_USER_INPUT", "MAX_ALIASES_LIMIT"}
    assert all(error["extensions"]["code"] in codes for error in errors)
    return errors


@pytest.mark.parametrize(
    ("row", "method", "payload", "spec_status", "legacy_status"),
    REQUEST_ERRORS,
    ids=[row[0] for row in REQUEST_ERRORS],
)
async def test_a_request_error_with_the_spec_media_type_is_4xx_without_data(
    api: Api, alice: str, row: str, method: str, payload: str, spec_status: int, legacy_status: int
) -> None:
    response = await send(api, alice, method, payload, accept=APOLLO_CLIENT_ACCEPT)

    assert response.status_code == spec_status, response.text
    assert response.headers["content-type"] == f"{SPEC}; charset=utf-8"
    assert "data" not in response.json()
    the_errors(response)


@pytest.mark.parametrize(
    ("row", "method", "payload", "spec_status", "legacy_status"),
    REQUEST_ERRORS,
    ids=[row[0] for row in REQUEST_ERRORS],
)
@pytest.mark.parametrize("accept", [LEGACY, None, "*/*"], ids=["json", "no-accept", "any"])
async def test_a_request_error_for_a_legacy_client_keeps_its_old_status(
    api: Api,
    alice: str,
    row: str,
    method: str,
    payload: str,
    spec_status: int,
    legacy_status: int,
    accept: str | None,
) -> None:
    response = await send(api, alice, method, payload, accept=accept)

    assert response.status_code == legacy_status, response.text
    assert response.headers["content-type"] == LEGACY
    body = response.json()
    if legacy_status == 200:
        assert body["data"] is None
    else:
        assert "data" not in body
    the_errors(response)


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
