"""The Lambda handler, called as Lambda calls it: HTTP API (payload 2.0) events, one at a time,
from one thread, against the suite's moto and real signed tokens."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from graphql_api import aws_lambda
from graphql_api.aws_lambda import LambdaHandler
from graphql_api.settings import Settings, SettingsError
from graphql_api.storage.shares import new_link_id
from tests.api.harness import CREATE, SUITE_RATE_LIMITS
from tests.apps import AppFactory
from tests.conftest import LOCAL_CREDENTIALS, REGION
from tests.lambda_events import LambdaContext, graphql_event, http_api_event
from tests.tokens import FakeUserPool, claims_of

CONVERSATIONS = "{ conversations(first: 10) { totalCount edges { node { id title } } } }"


class LambdaRuntime:
    """Lambda's side of the handler: it builds the handler and calls it, always from the same
    thread (here not the test's, whose event loop belongs to pytest-asyncio)."""

    def __init__(self) -> None:
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lambda-runtime")

    def run(self, function: Any, *args: Any) -> Any:
        return self._thread.submit(function, *args).result(timeout=60)

    def invoke(self, handler: LambdaHandler, event: dict[str, Any]) -> dict[str, Any]:
        response: dict[str, Any] = self.run(handler, event, LambdaContext())
        return response

    def shutdown(self) -> None:
        self._thread.shutdown(wait=True)


@pytest.fixture(scope="module")
def runtime() -> Iterator[LambdaRuntime]:
    runtime = LambdaRuntime()
    yield runtime
    runtime.shutdown()


@pytest.fixture(scope="module")
def settings(make_api: AppFactory) -> Settings:
    return make_api.settings()


@pytest.fixture(scope="module")
def handler(
    runtime: LambdaRuntime, settings: Settings, make_api: AppFactory
) -> Iterator[LambdaHandler]:
    built: LambdaHandler = runtime.run(
        lambda: LambdaHandler(settings, aws_credentials=make_api.credentials)
    )
    yield built
    runtime.run(built.close)


def _body(response: dict[str, Any]) -> dict[str, Any]:
    raw = response.get("body", "")
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    body: dict[str, Any] = json.loads(raw)
    return body


def _event(pool: FakeUserPool, user: str, query: str, **kwargs: Any) -> dict[str, Any]:
    token = pool.minter.access_token(sub=user)
    return graphql_event(query, token=token, claims=claims_of(token), **kwargs)


def test_a_mutation_then_a_query_in_later_invocations(
    runtime: LambdaRuntime, handler: LambdaHandler, user_pool: FakeUserPool
) -> None:
    user = f"user-{uuid.uuid4()}"
    created = runtime.invoke(
        handler, _event(user_pool, user, CREATE, variables={"input": {"title": "From Lambda"}})
    )
    assert created["statusCode"] == 200, created
    assert created["headers"]["content-type"].startswith("application/json")
    conversation = _body(created)["data"]["createConversation"]["conversation"]

    listed = runtime.invoke(handler, _event(user_pool, user, CONVERSATIONS))

    assert listed["statusCode"] == 200, listed
    data = _body(listed)["data"]["conversations"]
    assert data["totalCount"] == 1
    assert [edge["node"] for edge in data["edges"]] == [
        {"id": conversation["id"], "title": "From Lambda"}
    ]


def test_a_query_sees_only_the_callers_conversations(
    runtime: LambdaRuntime, handler: LambdaHandler, user_pool: FakeUserPool
) -> None:
    alice, bob = f"user-{uuid.uuid4()}", f"user-{uuid.uuid4()}"
    runtime.invoke(handler, _event(user_pool, alice, CREATE, variables={"input": {"title": "A"}}))

    response = runtime.invoke(handler, _event(user_pool, bob, CONVERSATIONS))

    assert response["statusCode"] == 200
    assert _body(response)["data"]["conversations"] == {"totalCount": 0, "edges": []}


def test_a_missing_token_is_refused_by_the_service_itself(
    runtime: LambdaRuntime, handler: LambdaHandler
) -> None:
    # API Gateway's authorizer refuses this before Lambda; the service must too, for a route
    # someone adds without the authorizer.
    response = runtime.invoke(handler, graphql_event(CONVERSATIONS, token=None))

    assert response["statusCode"] == 401
    assert response["headers"]["www-authenticate"] == "Bearer"
    assert _body(response)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_a_forged_token_is_refused_even_with_claims_from_the_authorizer(
    runtime: LambdaRuntime, handler: LambdaHandler
) -> None:
    with FakeUserPool() as impostor:
        token = impostor.minter.access_token(sub="victim")
        # The claims in the event say whatever the event says; the service trusts the token.
        event = graphql_event(CONVERSATIONS, token=token, claims=claims_of(token))

        response = runtime.invoke(handler, event)

    assert response["statusCode"] == 401


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-content-length"])
def test_a_body_over_the_limit_gets_413(
    runtime: LambdaRuntime,
    handler: LambdaHandler,
    settings: Settings,
    user_pool: FakeUserPool,
    declared: bool,
) -> None:
    limit = settings.max_body_bytes
    token = user_pool.minter.access_token(sub=f"user-{uuid.uuid4()}")
    padding = "x" * limit
    body = json.dumps({"query": CONVERSATIONS, "variables": {"pad": padding}}).encode()
    event = http_api_event(
        body=body,
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
        content_length=declared,
    )

    response = runtime.invoke(handler, event)

    assert response["statusCode"] == 413
    assert _body(response)["errors"][0]["extensions"]["code"] == "BAD_REQUEST"


def test_a_base64_encoded_body_is_decoded(
    runtime: LambdaRuntime, handler: LambdaHandler, user_pool: FakeUserPool
) -> None:
    user = f"user-{uuid.uuid4()}"
    title = "Grüße, 你好 🌍"  # non-ASCII survives the base64 round trip
    event = _event(
        user_pool, user, CREATE, variables={"input": {"title": title}}, base64_encoded=True
    )
    assert event["isBase64Encoded"] is True

    response = runtime.invoke(handler, event)

    assert response["statusCode"] == 200, response
    assert _body(response)["data"]["createConversation"]["conversation"]["title"] == title
    listed = runtime.invoke(handler, _event(user_pool, user, CONVERSATIONS))
    assert _body(listed)["data"]["conversations"]["totalCount"] == 1


def test_readiness_answers_without_a_token(runtime: LambdaRuntime, handler: LambdaHandler) -> None:
    response = runtime.invoke(handler, http_api_event(method="GET", path="/readyz"))

    assert response["statusCode"] == 200
    assert _body(response) == {
        "status": "ready",
        "checks": {"dynamodb": "ok", "signingKeys": "ok"},
    }


def test_lambdas_lookup_of_handler_builds_it_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    runtime: LambdaRuntime,
    user_pool: FakeUserPool,
    dynamodb_endpoint: str,
    api_table: str,
) -> None:
    environment = {
        "CHAT_TABLE_NAME": api_table,
        "AWS_REGION": REGION,
        "DYNAMODB_ENDPOINT_URL": dynamodb_endpoint,
        "COGNITO_USER_POOL_ID": user_pool.pool_id,
        "COGNITO_APP_CLIENT_IDS": user_pool.client_id,
        "COGNITO_JWKS_URL": user_pool.jwks_url,
        "GC_FREEZE_AFTER_STARTUP": "false",
        # Lambda gives the function its role's credentials this way.
        "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS[0],
        "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS[1],
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    # What Lambda's runtime does at init: getattr(module, "handler").
    built: LambdaHandler = runtime.run(getattr, aws_lambda, "handler")
    try:
        assert aws_lambda.handler is built  # built once, then an ordinary attribute
        response = runtime.invoke(built, _event(user_pool, f"user-{uuid.uuid4()}", CONVERSATIONS))
        assert response["statusCode"] == 200, response
    finally:
        runtime.run(built.close)
        # Not monkeypatch.delattr: its undo would put the closed handler back.
        vars(aws_lambda).pop("handler", None)


def test_a_bad_setting_fails_the_lookup_with_its_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CHAT_TABLE_NAME", raising=False)

    with pytest.raises(SettingsError, match="CHAT_TABLE_NAME: is required but not set"):
        aws_lambda.__getattr__("handler")

    assert "handler" not in vars(aws_lambda)


def test_a_share_link_is_read_without_a_token_and_limited_by_api_gateways_source_ip(
    runtime: LambdaRuntime, make_api: AppFactory
) -> None:
    """The HTTP API routes GET /shared/{id} past its authorizer: the service's per-address
    limit is all there is, so the address is the one API Gateway saw, whatever the client
    writes in X-Forwarded-For."""
    limits = dataclasses.replace(SUITE_RATE_LIMITS, share_reads_per_minute=2)
    handler: LambdaHandler = runtime.run(
        lambda: LambdaHandler(
            make_api.settings(rate_limits=limits), aws_credentials=make_api.credentials
        )
    )

    def read(source_ip: str, forwarded_for: str) -> dict[str, Any]:
        event = http_api_event(
            method="GET",
            path=f"/shared/{new_link_id()}",
            headers={"x-forwarded-for": forwarded_for},
        )
        event["requestContext"]["http"]["sourceIp"] = source_ip
        return runtime.invoke(handler, event)

    try:
        # A new X-Forwarded-For each time: it buys nothing.
        answers = [read("203.0.113.7", f"198.51.100.{n}") for n in range(3)]
        elsewhere = read("192.0.2.1", "198.51.100.1")
    finally:
        runtime.run(handler.close)

    assert [answer["statusCode"] for answer in answers] == [404, 404, 429]
    assert int(answers[2]["headers"]["retry-after"]) >= 1
    assert elsewhere["statusCode"] == 404
    assert answers[0]["headers"]["x-robots-tag"] == "noindex, nofollow"
    assert _body(answers[0]) == _body(elsewhere)
