"""What an operator sees of each request: its log line, its id, its cost, its metrics."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.observability.metrics import KNOWN_OPERATIONS, OTHER, PrometheusMetrics
from graphql_api.settings import ObservabilitySettings
from graphql_api.storage.client import DynamoDBClient
from tests.api.harness import Api, add_messages, create_conversation, new_user
from tests.api.rest_harness import Rest
from tests.apps import AppFactory
from tests.factories import misdefined_table
from tests.faults import FaultProxy
from tests.observed import CapturedLogs, captured_logs, operation_document

HOME = operation_document("HomeConversations")
OPEN = operation_document("OpenConversation")
RENAME = operation_document("RenameConversation")
CREATE = operation_document("CreateConversation")
DELETE = operation_document("DeleteConversation")
SEND = operation_document("SendMessage")
ADD_FOUR = """
mutation AddFour($id: ID!, $content: String!) {
  addMessages(input: {conversationId: $id, messages: [
    {role: USER, content: $content}, {role: ASSISTANT, content: $content},
    {role: USER, content: $content}, {role: ASSISTANT, content: $content}
  ]}) { messages { id } }
}
"""
TRAFFIC = ObservabilitySettings(metrics_enabled=True, cost_extension_enabled=True)


@pytest_asyncio.fixture(scope="module")
async def api(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(observability=TRAFFIC) as running:
        yield running


async def post(
    api: Api,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    response = await api.http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    return response.status_code, response.json(), dict(response.headers)


# --- the request line --------------------------------------------------------------------


async def test_each_request_writes_one_json_line_with_its_fields(api: Api) -> None:
    user = new_user()
    await create_conversation(api, user, "first")
    with captured_logs(ObservabilitySettings()) as logs:
        status, body, headers = await post(
            api, HOME, headers={**api.headers(user), "X-Request-Id": "req-1234"}
        )

    assert status == 200
    assert "errors" not in body
    assert headers["x-request-id"] == "req-1234"
    [line] = logs.access_lines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])
    assert line["request_id"] == "req-1234"
    assert line["user_hash"] == api.telemetry.user_hash(user)
    assert user not in logs.text
    assert (line["method"], line["path"], line["route"]) == ("POST", "/graphql", "/graphql")
    assert (line["operation_name"], line["operation_type"]) == ("HomeConversations", "query")
    assert (line["status"], line["outcome"], line["error_codes"]) == (200, "ok", [])
    assert line["duration_ms"] > 0
    assert line["dynamodb_requests"] == 1
    assert line["dynamodb_calls"] == {"Query": 1}
    assert line["read_capacity_units"] > 0
    assert line["write_capacity_units"] == 0


async def test_a_request_refused_before_graphql_is_logged_with_its_code(api: Api) -> None:
    with captured_logs(ObservabilitySettings()) as logs:
        status, _, headers = await post(api, HOME)

    assert status == 401
    [line] = logs.access_lines()
    assert line["error_codes"] == ["UNAUTHENTICATED"]
    assert line["outcome"] == "client_error"
    assert line["operation"] == "POST /graphql"
    assert line["user_hash"] is None
    assert headers["x-request-id"] == line["request_id"]


@pytest.mark.parametrize("sent", ["two words", "x" * 129, "line\\nbreak", "<script>"])
async def test_a_request_id_that_is_not_an_id_is_replaced(api: Api, sent: str) -> None:
    response = await api.http.get("/healthz", headers={"X-Request-Id": sent})

    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


async def test_every_request_gets_its_own_id(api: Api) -> None:
    ids = {(await api.http.get("/healthz")).headers["x-request-id"] for _ in range(5)}

    assert len(ids) == 5


async def test_graphql_errors_are_logged_by_code(api: Api) -> None:
    user = new_user()
    with captured_logs(ObservabilitySettings()) as logs:
        await post(api, RENAME, {"id": str(uuid.uuid4()), "title": "x"}, headers=api.headers(user))
        await post(api, "query { nope }", headers=api.headers(user))

    renamed, invalid = logs.access_lines()
    assert (renamed["error_codes"], renamed["outcome"]) == (["NOT_FOUND"], "client_error")
    assert invalid["error_codes"] == ["BAD_USER_INPUT"]
    # Refused before an operation was chosen: named by its route.
    assert invalid["operation_type"] is None
    assert invalid["operation"] == "POST /graphql"


# --- nothing a user wrote, and no credential, in any line ------------------------------------


@pytest_asyncio.fixture(scope="module")
async def proxy(dynamodb_endpoint: str) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(dynamodb_endpoint) as running:
        yield running


async def test_no_line_holds_content_titles_or_tokens_even_at_debug(
    make_api: AppFactory, proxy: FaultProxy
) -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    user = new_user()
    debug = ObservabilitySettings(log_level="DEBUG", cost_extension_enabled=True)
    with captured_logs(debug) as logs:
        # Someone turned the AWS SDK's loggers up: their request bodies must still not appear.
        for name in ("botocore", "aiobotocore"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        async with make_api(dynamodb={"endpoint_url": proxy.url}, observability=debug) as api:
            token = api.token(user)
            conversation = await create_conversation(api, user, f"title {marker}")
            await add_messages(api, user, conversation["id"], [f"content {marker}"] * 3)
            await post(
                api,
                RENAME,
                {"id": conversation["id"], "title": f"renamed {marker}"},
                headers=api.headers(user),
            )
            await post(api, OPEN, {"id": conversation["id"]}, headers=api.headers(user))
            # Input echoed in a public error, and a token that is not one.
            _, refused, _ = await post(
                api,
                SEND,
                {"conversationId": conversation["id"], "role": marker, "content": marker},
                headers=api.headers(user),
            )
            assert marker in str(refused)
            status, _, _ = await post(
                api, HOME, headers={"Authorization": f"Bearer {marker}.{marker}.x"}
            )
            assert status == 401
            # A fault of ours whose exception text quotes the user's words.
            proxy.fail("Query", error_type="ValidationException", message=f"bad {marker}")
            _, failed, _ = await post(
                api, OPEN, {"id": conversation["id"]}, headers=api.headers(user)
            )
            assert failed["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"

    lines = logs.json_lines()
    assert any(line["level"] == "debug" for line in lines) or len(lines) > 8
    error_lines = [line for line in lines if line["level"] == "error"]
    assert error_lines, "the internal error was logged"
    assert "botocore.exceptions.ClientError" in error_lines[0]["exception"]
    assert not [line for line in lines if line["logger"].startswith(("botocore", "aiobotocore"))]
    for forbidden in (marker, token, token.rsplit(".", 1)[-1], "Bearer"):
        assert forbidden not in logs.text


# --- a request the engine refuses: a findable internal error ---------------------------------


def _refusal_lines(logs: CapturedLogs) -> list[dict[str, Any]]:
    return [line for line in logs.json_lines() if "storage_error" in line]


async def test_a_write_the_engine_refuses_is_logged_with_code_operation_table_and_request_id(
    make_api: AppFactory, dynamodb_client: DynamoDBClient
) -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    user = new_user()
    settings = ObservabilitySettings()
    async with (
        misdefined_table(dynamodb_client) as table,
        make_api(dynamodb={"table_name": table}, observability=settings) as api,
    ):
        rest = await Rest.on(api)
        with captured_logs(settings) as logs:
            status, body, headers = await post(
                api, CREATE, {"title": f"title {marker}"}, headers=api.headers(user)
            )
            refused = await rest.request(
                "POST", "/conversations", user=user, json={"title": f"title {marker}"}
            )

    # To the client, still an internal error that says nothing of itself.
    assert status == 200
    assert [error["extensions"]["code"] for error in body["errors"]] == ["INTERNAL_SERVER_ERROR"]
    assert (refused.status_code, refused.json()["error"]["code"]) == (500, "INTERNAL_SERVER_ERROR")
    graphql_line, rest_line = _refusal_lines(logs)
    for line in (graphql_line, rest_line):
        assert line["level"] == "error"
        assert line["storage_error"] == {
            "service": "DynamoDB",
            "code": "ValidationException",
            "operation": "TransactWriteItems",
            "table": table,
            "request_id": line["storage_error"]["request_id"],
            "http_status": 400,
            "items": 4,
        }
        assert re.fullmatch(r"[A-Za-z0-9]{20,}", line["storage_error"]["request_id"])
        assert "ValidationException" in line["exception"]
    # Each line belongs to its request.
    assert graphql_line["request_id"] == headers["x-request-id"]
    assert rest_line["request_id"] == refused.headers["x-request-id"]
    assert graphql_line["storage_error"]["request_id"] != rest_line["storage_error"]["request_id"]
    assert marker not in logs.text


async def test_an_engine_with_a_smaller_transaction_limit_shows_as_such_in_the_log(
    make_api: AppFactory, api_table: str, proxy: FaultProxy
) -> None:
    # The engine of issue 20: it takes 10 items in a transaction, and quotes what it refused.
    marker = f"MARKER{uuid.uuid4().hex}"
    user = new_user()
    settings = ObservabilitySettings()
    async with make_api(dynamodb={"endpoint_url": proxy.url}, observability=settings) as api:
        conversation = await create_conversation(api, user, "four messages")
        proxy.fail(
            "TransactWriteItems",
            error_type="ValidationException",
            message=f"Value '[{marker}]' at 'transactItems' failed to satisfy constraint: "
            "Member must have length less than or equal to 10",
        )
        with captured_logs(settings) as logs:
            _, body, _ = await post(
                api,
                ADD_FOUR,
                {"id": conversation["id"], "content": f"content {marker}"},
                headers=api.headers(user),
            )

    assert [error["extensions"]["code"] for error in body["errors"]] == ["INTERNAL_SERVER_ERROR"]
    [line] = _refusal_lines(logs)
    assert line["storage_error"] == {
        "service": "DynamoDB",
        "code": "ValidationException",
        "operation": "TransactWriteItems",
        "table": api_table,
        "request_id": proxy.error_ids[-1],
        "http_status": 400,
        # Four messages and their id markers, the conversation, PROFILE and CHG#: over 10.
        "items": 11,
    }
    [access] = logs.access_lines()
    assert access["error_codes"] == ["INTERNAL_SERVER_ERROR"]
    assert marker not in logs.text


# --- extensions.cost ---------------------------------------------------------------------


async def test_a_read_reports_its_cost(api: Api) -> None:
    user = new_user()
    await create_conversation(api, user)

    _, body, _ = await post(api, HOME, headers=api.headers(user))

    cost = body["extensions"]["cost"]
    assert cost["dynamodbRequests"] == 1
    assert cost["readCapacityUnits"] > 0
    assert cost["writeCapacityUnits"] == 0


async def test_a_write_reports_its_cost(api: Api) -> None:
    # A delete: its purge's BatchWriteItem and DeleteItem report write units on moto, which
    # reports none for TransactWriteItems (every other write).
    user = new_user()
    conversation = await create_conversation(api, user)
    await add_messages(api, user, conversation["id"], ["a", "b"])

    _, body, _ = await post(api, DELETE, {"id": conversation["id"]}, headers=api.headers(user))

    cost = body["extensions"]["cost"]
    assert cost["dynamodbRequests"] >= 4
    assert cost["writeCapacityUnits"] > 0


async def test_a_call_the_engine_reports_no_capacity_for_is_counted_not_estimated(
    api: Api,
) -> None:
    _, body, _ = await post(api, CREATE, {"title": "t"}, headers=api.headers(new_user()))

    cost = body["extensions"]["cost"]
    # The read of what it changes, then its transaction.
    assert cost["dynamodbRequests"] == 2
    # moto answers TransactWriteItems with an empty ConsumedCapacity; DynamoDB reports it.
    reported = cost["writeCapacityUnits"] > 0
    assert reported != ("unreportedRequests" in cost)


async def test_without_the_setting_responses_carry_no_cost(make_api: AppFactory) -> None:
    async with make_api() as api:
        _, body, _ = await post(api, HOME, headers=api.headers(new_user()))

    assert "extensions" not in body


# --- /metrics ------------------------------------------------------------------------------


async def test_metrics_expose_durations_dynamodb_use_errors_and_jwks_fetches(api: Api) -> None:
    user = new_user()
    conversation = await create_conversation(api, user)
    await post(api, OPEN, {"id": conversation["id"]}, headers=api.headers(user))
    await post(api, HOME)  # no token

    response = await api.http.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert "# TYPE chat_api_request_duration_seconds histogram" in text
    assert _value(text, "chat_api_request_duration_seconds_count", operation="OpenConversation")
    assert _value(
        text, "chat_api_dynamodb_requests_total", operation="OpenConversation", call="Query"
    )
    assert _value(
        text,
        "chat_api_dynamodb_read_capacity_units_total",
        operation="OpenConversation",
        call="BatchGetItem",
    )
    assert _value(text, "chat_api_errors_total", code="UNAUTHENTICATED")
    assert _value(text, "chat_api_jwks_fetches_total") >= 1
    assert _value(text, "chat_api_subscriptions_open") == 0


async def test_the_subscription_gauge_follows_its_api(api: Api) -> None:
    metrics = api.telemetry.metrics
    metrics.subscription_opened()
    metrics.subscription_opened()
    metrics.subscription_closed()
    opened = _value((await api.http.get("/metrics")).text, "chat_api_subscriptions_open")
    metrics.subscription_closed()

    assert opened == 1


async def test_a_thousand_made_up_operation_names_share_one_label(api: Api) -> None:
    metrics = api.telemetry.metrics
    assert isinstance(metrics, PrometheusMetrics)
    headers = api.headers(new_user())
    for index in range(1000):
        name = f"MadeUp{uuid.uuid4().hex[:8]}{index}"
        response = await api.http.post(
            "/graphql", json={"query": f"query {name} {{ __typename }}"}, headers=headers
        )
        assert response.status_code == 200

    labels = metrics.label_values("chat_api_request_duration_seconds", "operation")
    made_up = {label for label in labels if label.startswith("MadeUp")}
    cap = TRAFFIC.metrics_max_operations
    assert len(made_up) <= cap
    assert OTHER in labels
    # The known operations, the admitted names, "other", and a few routes at most.
    assert len(labels) <= len(KNOWN_OPERATIONS) + cap + 10


async def test_without_the_setting_there_is_no_metrics_route(make_api: AppFactory) -> None:
    async with make_api() as api:
        assert (await api.http.get("/metrics")).status_code == 404


async def test_on_lambda_the_metrics_ride_in_the_request_line(make_api: AppFactory) -> None:
    on_lambda = ObservabilitySettings(metrics_enabled=True, lambda_function_name="chat-history-api")
    user = new_user()
    with captured_logs(on_lambda) as logs:
        async with make_api(observability=on_lambda) as api:
            assert (await api.http.get("/metrics")).status_code == 404
            await post(api, HOME, headers=api.headers(user))

    line = logs.access_lines()[-1]
    [directive] = line["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "ChatHistoryApi"
    for dimensions in directive["Dimensions"]:
        assert all(isinstance(line[name], str) for name in dimensions)
    for metric in directive["Metrics"]:
        assert isinstance(line[metric["Name"]], int | float), metric
    assert line["operation"] == "HomeConversations"
    assert line["dynamodb_requests"] == 1
    assert isinstance(line["_aws"]["Timestamp"], int)


def _value(exposition: str, metric: str, **labels: str) -> float:
    """The sum of `metric`'s samples whose labels include `labels`."""
    total = 0.0
    for line in exposition.splitlines():
        if not line.startswith(metric):
            continue
        name, _, rest = line.partition("{")
        if name.split(" ")[0] != metric:
            continue
        label_text, _, value = rest.rpartition("} ") if rest else ("", "", line.split(" ")[-1])
        found = dict(re.findall(r'(\w+)="([^"]*)"', label_text))
        if all(found.get(key) == wanted for key, wanted in labels.items()):
            total += float(value)
    return total
