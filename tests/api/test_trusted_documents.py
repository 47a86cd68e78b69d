"""Trusted documents over HTTP: ids instead of documents (Apollo's APQ and the spec's
documentId), over POST and GET, and TRUSTED_DOCUMENTS_ONLY refusing everything else unparsed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from graphql import DocumentNode, parse

from graphql_api.app import create_app
from graphql_api.gql import executor
from graphql_api.gql.trusted import (
    OPERATIONS_DIR,
    TrustedDocument,
    apollo_manifest,
    document_id,
    documents_map,
    from_operations,
)
from graphql_api.settings import SettingsError
from tests.api.harness import Api, create_conversation
from tests.apps import AppFactory

SPEC = "application/graphql-response+json"
LEGACY = "application/json"
APOLLO_CLIENT_ACCEPT = "application/graphql-response+json,application/json;q=0.9"
MANIFEST = {document.name: document for document in from_operations()}
HOME = MANIFEST["HomeConversations"]
CREATE = MANIFEST["CreateConversation"]
# Not in any manifest: its id is unknown until an APQ client registers it.
AD_HOC = "query AdHoc { conversations(first: 1) { totalCount } }"


def file_text(name: str) -> str:
    return (OPERATIONS_DIR / f"{name}.graphql").read_text(encoding="utf-8")


def persisted(sha256: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha256}}


async def post(
    api: Api, user: str, body: dict[str, Any], *, accept: str | None = None
) -> httpx.Response:
    headers = api.headers(user) if accept is None else {**api.headers(user), "Accept": accept}
    return await api.http.post("/graphql", json=body, headers=headers)


async def get(
    api: Api, user: str, params: dict[str, Any], *, accept: str | None = APOLLO_CLIENT_ACCEPT
) -> httpx.Response:
    encoded = {
        name: value if isinstance(value, str) else json.dumps(value)
        for name, value in params.items()
    }
    headers = api.headers(user) if accept is None else {**api.headers(user), "Accept": accept}
    return await api.http.get("/graphql", params=encoded, headers=headers)


def only_error(response: httpx.Response) -> dict[str, Any]:
    (error,) = response.json()["errors"]
    assert isinstance(error, dict)
    return error


# --- ids on the service's own manifest -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"documentId": f"sha256:{HOME.id}"},
        {"documentId": HOME.id},
        {"documentId": f"SHA256:{HOME.id.upper()}"},
        {"extensions": persisted(HOME.id)},
        {"extensions": persisted(HOME.id), "query": HOME.body},
        {"documentId": HOME.id, "extensions": persisted(HOME.id)},
        {"query": HOME.body},
    ],
    ids=["documentId", "bare hex", "upper case", "APQ", "APQ with query", "both ids", "body text"],
)
async def test_a_known_document_runs_by_its_id_over_post(
    api: Api, alice: str, body: dict[str, Any]
) -> None:
    await create_conversation(api, alice, "Named by id")

    response = await post(api, alice, {**body, "variables": {"first": 5}})

    assert response.status_code == 200, response.text
    (edge,) = response.json()["data"]["conversations"]["edges"]
    assert edge["node"]["title"] == "Named by id"


@pytest.mark.parametrize(
    "params",
    [
        {"documentId": f"sha256:{HOME.id}"},
        {"extensions": persisted(HOME.id), "operationName": "HomeConversations"},
    ],
    ids=["documentId", "APQ"],
)
async def test_a_known_document_runs_by_its_id_over_get(
    api: Api, alice: str, params: dict[str, Any]
) -> None:
    await create_conversation(api, alice, "Fetched by GET")

    response = await get(api, alice, {**params, "variables": {"first": 5}})

    assert response.status_code == 200, response.text
    (edge,) = response.json()["data"]["conversations"]["edges"]
    assert edge["node"]["title"] == "Fetched by GET"


async def test_a_browser_get_with_an_id_gets_the_answer_not_graphiql(api: Api, alice: str) -> None:
    response = await get(api, alice, {"documentId": HOME.id}, accept="text/html,*/*;q=0.8")

    assert response.status_code == 200
    assert response.json()["data"]["conversations"]["edges"] == []


async def test_a_known_mutation_by_id_over_get_is_405_and_writes_nothing(
    api: Api, alice: str
) -> None:
    response = await get(api, alice, {"documentId": CREATE.id, "variables": {"title": "no"}})

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    home = await post(api, alice, {"documentId": HOME.id})
    assert home.json()["data"]["conversations"]["edges"] == []


async def test_a_known_document_refuses_another_operation_name(api: Api, alice: str) -> None:
    response = await post(
        api, alice, {"documentId": HOME.id, "operationName": "OpenConversation"}, accept=SPEC
    )

    assert response.status_code == 400
    assert only_error(response)["message"] == "Unknown operation named 'OpenConversation'."


async def test_a_known_document_still_coerces_its_variables(api: Api, alice: str) -> None:
    response = await post(
        api, alice, {"documentId": HOME.id, "variables": {"first": "many"}}, accept=SPEC
    )

    assert response.status_code == 400
    assert only_error(response)["extensions"]["code"] == "BAD_USER_INPUT"


# --- automatic persisted queries: miss, registration, hit --------------------------------


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY, None])
@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_an_unknown_id_is_persisted_query_not_found_with_200(
    api: Api, alice: str, accept: str | None, method: str
) -> None:
    unknown = document_id(f"{AD_HOC} # {method} {accept}")
    request = {"extensions": persisted(unknown)}
    response = await (
        post(api, alice, request, accept=accept)
        if method == "POST"
        else get(api, alice, request, accept=accept)
    )

    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    error = only_error(response)
    # Apollo iOS and Kotlin match the message, Apollo Client the code.
    assert error["message"] == "PersistedQueryNotFound"
    assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


async def test_an_unknown_document_id_is_not_found_either(api: Api, alice: str) -> None:
    response = await post(api, alice, {"documentId": f"sha256:{'0' * 64}"}, accept=SPEC)

    assert response.status_code == 200
    assert only_error(response)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest_asyncio.fixture(scope="module")
async def apq_api(make_api: AppFactory) -> AsyncIterator[Api]:
    """An app that keeps documents whichever cache the suite chose: APQ registrations live as
    long as its document cache would keep them, so without one nothing is registered."""
    async with make_api(graphql_document_cache_size=512) as running:
        yield running


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_apq_registers_a_document_sent_with_its_hash_then_serves_the_hash(
    apq_api: Api, alice: str, method: str
) -> None:
    api = apq_api
    query = f"{AD_HOC} # registered over {method}"
    sha256 = document_id(query)
    send = post if method == "POST" else get
    miss = await send(api, alice, {"extensions": persisted(sha256)})
    assert only_error(miss)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    registered = await send(api, alice, {"query": query, "extensions": persisted(sha256)})
    assert registered.json() == {"data": {"conversations": {"totalCount": 0}}}

    hit = await send(api, alice, {"extensions": persisted(sha256)})
    assert hit.json() == {"data": {"conversations": {"totalCount": 0}}}


async def test_apq_registers_nothing_that_does_not_validate(apq_api: Api, alice: str) -> None:
    api = apq_api
    query = "query Broken { nope }"
    sha256 = document_id(query)

    refused = await post(api, alice, {"query": query, "extensions": persisted(sha256)})
    assert refused.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"

    again = await post(api, alice, {"extensions": persisted(sha256)})
    assert only_error(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
@pytest.mark.parametrize(
    "body",
    [
        {"query": AD_HOC, "extensions": persisted(document_id(AD_HOC + " "))},
        {"query": AD_HOC, "documentId": HOME.id},
        {"query": file_text("HomeConversations"), "extensions": persisted(HOME.id)},
    ],
    ids=["another text", "a known id", "the file's text with the body's id"],
)
async def test_an_id_that_is_not_the_hash_of_the_document_sent_is_refused(
    api: Api, alice: str, accept: str, body: dict[str, Any]
) -> None:
    response = await post(api, alice, body, accept=accept)

    assert response.status_code == 400
    assert "data" not in response.json()
    error = only_error(response)
    assert error["message"] == "provided sha does not match query"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"extensions": {"persistedQuery": {"version": 2, "sha256Hash": HOME.id}}}, "version"),
        ({"extensions": {"persistedQuery": {"version": 1}}}, "sha256Hash"),
        ({"extensions": {"persistedQuery": "abc"}}, "version"),
        ({"documentId": 7}, "documentId"),
        ({"documentId": ""}, "documentId"),
        (
            {"documentId": HOME.id, "extensions": persisted(CREATE.id)},
            "name different documents",
        ),
    ],
    ids=["version 2", "no hash", "not an object", "number", "empty", "two ids"],
)
async def test_a_malformed_id_is_not_a_graphql_request(
    api: Api, alice: str, body: dict[str, Any], message: str
) -> None:
    response = await post(api, alice, body, accept=SPEC)

    assert response.status_code == 400
    error = only_error(response)
    assert message in error["message"]
    assert error["extensions"]["code"] == "BAD_REQUEST"


# --- TRUSTED_DOCUMENTS_ONLY ------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def trusted_api(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(trusted_documents_only=True) as running:
        yield running


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every document the runner parses from a request, as it parses it."""
    seen: list[str] = []

    def counting(source: str, **options: Any) -> DocumentNode:
        seen.append(source)
        return parse(source, **options)

    monkeypatch.setattr(executor, "parse", counting)
    return seen


REFUSED_UNPARSED = [
    ("an ad hoc query", AD_HOC),
    ("introspection", "{ __schema { queryType { name } } }"),
    ("a document that does not parse", "query {"),
    ("the file's text of a trusted document", file_text("HomeConversations")),
    ("a trusted document with one more space", HOME.body + " "),
]


@pytest.mark.parametrize(
    ("row", "query"), REFUSED_UNPARSED, ids=[row for row, _ in REFUSED_UNPARSED]
)
@pytest.mark.parametrize("accept", [APOLLO_CLIENT_ACCEPT, LEGACY])
async def test_trusted_only_refuses_any_other_document_before_parsing_it(
    trusted_api: Api, alice: str, parses: list[str], row: str, query: str, accept: str
) -> None:
    response = await post(trusted_api, alice, {"query": query}, accept=accept)

    assert response.status_code == (403 if accept == APOLLO_CLIENT_ACCEPT else 200)
    assert "data" not in response.json()
    error = only_error(response)
    assert error["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"
    assert parses == []


async def test_without_trusted_only_the_same_documents_are_parsed(
    api: Api, alice: str, parses: list[str]
) -> None:
    response = await post(api, alice, {"query": "query {"})

    assert only_error(response)["extensions"]["code"] == "BAD_USER_INPUT"
    assert parses == ["query {"]


async def test_trusted_only_serves_trusted_documents_by_id_and_by_text_unparsed(
    trusted_api: Api, alice: str, parses: list[str]
) -> None:
    created = await post(
        trusted_api, alice, {"documentId": CREATE.id, "variables": {"title": "Trusted"}}
    )
    assert created.status_code == 200, created.text

    for body in ({"documentId": HOME.id}, {"extensions": persisted(HOME.id)}, {"query": HOME.body}):
        response = await post(trusted_api, alice, body)
        (edge,) = response.json()["data"]["conversations"]["edges"]
        assert edge["node"]["title"] == "Trusted"
    assert parses == []


async def test_trusted_only_registers_no_apq_document(trusted_api: Api, alice: str) -> None:
    sha256 = document_id(AD_HOC)
    miss = await post(trusted_api, alice, {"extensions": persisted(sha256)})
    assert only_error(miss)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"

    # What an APQ client sends next: the document with its hash. It is still not trusted.
    retry = await post(trusted_api, alice, {"query": AD_HOC, "extensions": persisted(sha256)})
    assert only_error(retry)["extensions"]["code"] == "QUERY_NOT_IN_SAFELIST"

    again = await post(trusted_api, alice, {"extensions": persisted(sha256)})
    assert only_error(again)["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


# --- manifests beyond the service's own --------------------------------------------------

CLIENT_BUILD = """query AppHome {
  conversations(first: 3) {
    __typename
    edges { __typename cursor node { __typename id title } }
  }
}"""


def client_manifest(tmp_path: Path, body: str, *, as_map: bool = False) -> Path:
    """A manifest as a client build writes it: the client's text, the client's hash."""
    document = TrustedDocument(id=document_id(body), name="Client", type="query", body=body)
    path = tmp_path / ("client-map.json" if as_map else "client-manifest.json")
    path.write_text(documents_map([document]) if as_map else apollo_manifest([document]))
    return path


@pytest.mark.parametrize("as_map", [False, True], ids=["apollo", "id map"])
async def test_a_client_builds_manifest_is_trusted_too(
    make_api: AppFactory, alice: str, tmp_path: Path, as_map: bool
) -> None:
    path = client_manifest(tmp_path, CLIENT_BUILD, as_map=as_map)
    async with make_api(
        trusted_documents_only=True, trusted_documents_manifests=(str(path),)
    ) as running:
        by_id = await post(running, alice, {"extensions": persisted(document_id(CLIENT_BUILD))})
        own = await post(running, alice, {"documentId": HOME.id})

    assert by_id.json() == {
        "data": {"conversations": {"__typename": "ConversationConnection", "edges": []}}
    }
    assert own.json()["data"] == {
        "conversations": {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    }


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("query Stale { conversations { nope } }", "does not validate"),
        ("query Deep { " + "conversation(id: 1) { " * 9 + "id" + " }" * 10, "nested"),
        ("query A { tags { tag } } query B { tags { tag } }", "exactly one named operation"),
    ],
    ids=["stale", "over the limits", "two operations"],
)
def test_a_manifest_document_the_service_cannot_run_stops_it_from_starting(
    make_api: AppFactory, tmp_path: Path, body: str, problem: str
) -> None:
    path = client_manifest(tmp_path, body, as_map=True)
    settings = make_api.settings(trusted_documents_manifests=(str(path),))

    with pytest.raises(SettingsError) as refused:
        create_app(settings)

    assert refused.value.variable == "TRUSTED_DOCUMENTS_MANIFESTS"
    assert str(path) in str(refused.value)
    assert problem in str(refused.value)


def test_a_manifest_whose_id_lies_about_its_body_stops_the_service(
    make_api: AppFactory, tmp_path: Path
) -> None:
    path = tmp_path / "lying.json"
    path.write_text(json.dumps({HOME.id: AD_HOC}))
    settings = make_api.settings(trusted_documents_manifests=(str(path),))

    with pytest.raises(SettingsError, match="is not the SHA-256 of its body"):
        create_app(settings)
