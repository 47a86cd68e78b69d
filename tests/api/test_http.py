"""The HTTP surface: authentication before GraphQL, methods, health and readiness."""

from __future__ import annotations

import gc
import json

import httpx
import pytest

from tests.api.harness import Api
from tests.apps import AppFactory
from tests.tokens import SigningKey, tamper_signature, unsigned

QUERY = {"query": "{ conversations { edges { cursor } } }"}


def assert_unauthenticated(response: httpx.Response) -> str:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert list(body) == ["errors"]
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "UNAUTHENTICATED"}
    message: str = error["message"]
    assert 0 < len(message) < 80
    return message


async def test_a_request_without_a_token_is_401(api: Api) -> None:
    response = await api.http.post("/graphql", json=QUERY)
    assert assert_unauthenticated(response) == "missing bearer token"


@pytest.mark.parametrize(
    "authorization",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer not.a.jwt!", "Bearer a.b"],
    ids=["basic", "empty", "malformed", "two-segments"],
)
async def test_a_malformed_authorization_header_is_401(api: Api, authorization: str) -> None:
    response = await api.http.post("/graphql", json=QUERY, headers={"Authorization": authorization})
    assert_unauthenticated(response)


async def test_invalid_tokens_are_401_and_never_echoed(api: Api, alice: str) -> None:
    minter = api.pool.minter
    good = minter.access_token(sub=alice)
    tokens = [
        minter.access_token(sub=alice, lifetime=-3600),
        tamper_signature(good),
        unsigned({"sub": alice, "iss": minter.issuer, "token_use": "access"}),
        minter.access_token(sub=alice, key=SigningKey.generate()),
        minter.access_token(sub=alice, client_id="another-client"),
    ]
    for token in tokens:
        response = await api.http.post(
            "/graphql", json=QUERY, headers={"Authorization": f"Bearer {token}"}
        )
        assert_unauthenticated(response)
        assert token not in response.text
        assert token.split(".")[1][:16] not in response.text


async def test_the_user_is_the_tokens_subject_never_the_request(api: Api, alice: str) -> None:
    await api.data(
        'mutation { createConversation(input: {title: "mine"}) { conversation { id } } }',
        user=alice,
    )
    response = await api.http.post(
        "/graphql",
        json={**QUERY, "variables": {"userId": alice}, "extensions": {"sub": alice}},
        headers={**api.headers("someone-else"), "X-User-Id": alice},
    )
    assert response.json() == {"data": {"conversations": {"edges": []}}}


async def test_get_serves_queries(api: Api, alice: str) -> None:
    response = await api.http.get(
        "/graphql",
        params={"query": "{ conversations { edges { cursor } } }"},
        headers=api.headers(alice),
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"conversations": {"edges": []}}}


async def test_a_mutation_over_get_is_405(api: Api, alice: str) -> None:
    mutation = 'mutation { createConversation(input: {title: "x"}) { conversation { id } } }'
    response = await api.http.get(
        "/graphql", params={"query": mutation}, headers=api.headers(alice)
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    data = await api.data("{ conversations { totalCount } }", user=alice)
    assert data["conversations"]["totalCount"] == 0


async def test_a_get_without_a_token_is_401_even_for_queries(api: Api) -> None:
    response = await api.http.get("/graphql", params=QUERY, headers={"Accept": "application/json"})
    assert_unauthenticated(response)


async def test_an_oversized_body_is_413(api: Api, alice: str) -> None:
    limit = api.services.settings.max_body_bytes
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * limit}})
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={**api.headers(alice), "Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_an_oversized_query_document_is_refused_by_its_limit(api: Api, alice: str) -> None:
    limit = api.services.settings.max_query_bytes
    query = "{ __typename }" + " " * limit
    error = await api.error(query, user=alice)
    assert error["extensions"]["code"] == "MAX_DOCUMENT_BYTES_LIMIT"
    assert f"larger than the limit of {limit} bytes" in error["message"]


async def test_a_too_deep_query_is_refused_by_the_depth_limit(
    api: Api, make_api: AppFactory, alice: str
) -> None:
    nested = "{ conversations { edges { node { messages { edges { node { id } } } } } } }"
    assert (await api.run(nested, user=alice)).get("errors") is None
    async with make_api(max_query_depth=5) as shallow:
        body = await shallow.run(nested, user=alice)
    assert "data" not in body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": "MAX_DEPTH_LIMIT"}
    assert "nested 6 levels deep; the limit is 5" in error["message"]


# --- health -------------------------------------------------------------------------------


async def test_healthz_needs_no_token(api: Api) -> None:
    response = await api.http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_is_200_when_the_table_and_keys_are_reachable(api: Api) -> None:
    response = await api.http.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"dynamodb": "ok", "signingKeys": "ok"},
    }


async def test_other_methods_are_405(api: Api, alice: str) -> None:
    response = await api.http.put("/graphql", json=QUERY, headers=api.headers(alice))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_lone_surrogates_in_input_are_bad_input_not_a_crash(api: Api, alice: str) -> None:
    body = (
        '{"query": "mutation($t: String!) { createConversation(input: {title: $t}) '
        '{ conversation { id } } }", "variables": {"t": "bad \\ud800 title"}}'
    )
    response = await api.http.post(
        "/graphql",
        content=body,
        headers={**api.headers(alice), "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    (error,) = response.json()["errors"]
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "title"}


async def test_cors_preflight_is_answered_for_configured_origins(make_api: AppFactory) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    async with make_api(cors_allow_origins=("https://chat.example",)) as cors:
        allowed = await cors.http.options(
            "/graphql", headers={**preflight, "Origin": "https://chat.example"}
        )
        refused = await cors.http.options(
            "/graphql", headers={**preflight, "Origin": "https://evil.example"}
        )
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_startup_objects_are_frozen_out_of_garbage_collection(
    make_api: AppFactory,
) -> None:
    try:
        async with make_api(gc_freeze_after_startup=True):
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
