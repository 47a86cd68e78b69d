"""The production endpoint against the probes of the graphql-cop audit, one test per probe.

Every probe is sent with a valid token, as an attacker with an account would send it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from tests.api.harness import Api, new_user
from tests.apps import AppFactory

CIRCULAR_INTROSPECTION = """
query { __schema { types { fields { type { fields { type { fields { type { name } } } } } } } } }
"""


@pytest_asyncio.fixture(scope="module")
async def production(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(introspection_enabled=False, graphiql_enabled=False) as api:
        yield api


def refused_without_data(body: dict[str, Any]) -> list[dict[str, Any]]:
    assert "data" not in body, body
    errors: list[dict[str, Any]] = body["errors"]
    assert errors
    return errors


async def test_alias_overloading_is_refused(production: Api) -> None:
    aliases = " ".join(f"a{i}: conversations {{ totalCount }}" for i in range(101))
    (error,) = refused_without_data(await production.run(f"{{ {aliases} }}", user=new_user()))
    assert "101 aliases" in error["message"]
    assert error["extensions"]["code"] == "MAX_ALIASES_LIMIT"


async def test_batched_queries_are_refused(production: Api) -> None:
    batch = [{"query": "{ __typename }"}] * 10
    response = await production.http.post(
        "/graphql", json=batch, headers=production.headers(new_user())
    )
    assert response.status_code == 400
    assert "__typename" not in response.text


async def test_field_duplication_is_refused(production: Api) -> None:
    query = "query { " + "__typename " * 500 + "}"
    (error,) = refused_without_data(await production.run(query, user=new_user()))
    assert "repeats one field 500 times" in error["message"]
    assert error["extensions"]["code"] == "MAX_FIELD_REPEATS_LIMIT"


async def test_directive_overloading_gets_one_error(production: Api) -> None:
    query = "query { __typename " + "@aa" * 50 + " }"
    errors = refused_without_data(await production.run(query, user=new_user()))
    assert len(errors) == 1
    assert "directives" in errors[0]["message"]
    assert errors[0]["extensions"]["code"] == "MAX_DIRECTIVES_LIMIT"


async def test_circular_introspection_is_refused(production: Api) -> None:
    errors = refused_without_data(await production.run(CIRCULAR_INTROSPECTION, user=new_user()))
    assert len(errors) == 1
    assert errors[0]["extensions"]["code"] == "INTROSPECTION_DISABLED"


async def test_introspection_is_off(production: Api) -> None:
    body = await production.run("{ __schema { queryType { name } } }", user=new_user())
    (error,) = refused_without_data(body)
    assert "introspection" in error["message"].lower()
    assert error["extensions"]["code"] == "INTROSPECTION_DISABLED"
    assert "Query" not in json.dumps(body)


@pytest.mark.parametrize(
    ("accept", "status"),
    [("application/graphql-response+json", 400), ("application/json", 200)],
)
async def test_introspection_off_is_a_request_error_with_its_own_code(
    production: Api, accept: str, status: int
) -> None:
    response = await production.http.post(
        "/graphql",
        json={"query": "{ __schema { queryType { name } } }"},
        headers={**production.headers(new_user()), "Accept": accept},
    )

    assert response.status_code == status
    (error,) = refused_without_data(response.json())
    assert error["extensions"]["code"] == "INTROSPECTION_DISABLED"


async def test_type_introspection_is_off_too(production: Api) -> None:
    body = await production.run('{ __type(name: "Conversation") { name } }', user=new_user())
    refused_without_data(body)


async def test_field_suggestions_are_not_given(production: Api) -> None:
    body = await production.run("{ conversation { titl } conversatoins }", user=new_user())
    text = json.dumps(refused_without_data(body))
    assert "Did you mean" not in text
    assert "conversations" not in text


async def test_graphiql_is_not_exposed(production: Api) -> None:
    for path in ("/graphql", "/graphiql", "/"):
        response = await production.http.get(path, headers={"Accept": "text/html"})
        assert response.status_code in (401, 404, 405), path
        assert "graphiql" not in response.text.lower()


async def test_a_query_over_get_is_served(production: Api) -> None:
    response = await production.http.get(
        "/graphql",
        params={"query": "{ conversations { totalCount } }"},
        headers=production.headers(new_user()),
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"conversations": {"totalCount": 0}}}


async def test_a_mutation_over_get_is_405_and_writes_nothing(production: Api) -> None:
    user = new_user()
    response = await production.http.get(
        "/graphql",
        params={
            "query": 'mutation { createConversation(input: {title: "x"}) { conversation { id } } }'
        },
        headers=production.headers(user),
    )
    assert response.status_code == 405
    listed = await production.data("{ conversations { totalCount } }", user=user)
    assert listed == {"conversations": {"totalCount": 0}}


async def test_a_url_encoded_post_is_refused_and_writes_nothing(production: Api) -> None:
    user = new_user()
    response = await production.http.post(
        "/graphql",
        data={
            "query": 'mutation { createConversation(input: {title: "x"}) { conversation { id } } }'
        },
        headers=production.headers(user),
    )
    assert response.status_code == 415
    listed = await production.data("{ conversations { totalCount } }", user=user)
    assert listed == {"conversations": {"totalCount": 0}}


async def test_errors_carry_no_tracing_no_exception_and_no_stack(production: Api) -> None:
    user = new_user()
    probes = [
        "{ conversation(id: 1) { id } }",
        "{ __typename @deprecated }",
        "query { conversations(first: 100000) { totalCount } }",
        "{",
    ]
    for probe in probes:
        response = await production.post(probe, user=user)
        body = response.json()
        assert response.status_code == 200, probe
        assert "tracing" not in body.get("extensions", {})
        for error in body["errors"]:
            assert set(error.get("extensions", {})) <= {"code", "field", "retryable"}, error
            assert "Traceback" not in json.dumps(error)


async def test_cors_allows_no_origin_by_default(production: Api) -> None:
    response = await production.http.options(
        "/graphql",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert "access-control-allow-origin" not in response.headers


async def test_a_huge_body_is_413_before_authentication(production: Api) -> None:
    limit = production.services.settings.max_body_bytes
    response = await production.http.post(
        "/graphql",
        content=b'{"query": "' + b" " * limit + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
