"""The observability package's parts, each on its own: the record, the hooks, the labels, the
log formats, the settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import subprocess
import sys
import threading
from typing import Any

import botocore.session
import pytest

from graphql_api.errors import StorageRejectedError
from graphql_api.observability import capacity
from graphql_api.observability.logs import ConsoleFormatter, JsonFormatter, safe_traceback, scrub
from graphql_api.observability.metrics import (
    KNOWN_OPERATIONS,
    OTHER,
    OperationNames,
    outcome_of,
    route_label,
)
from graphql_api.observability.middleware import codes_of_status, request_id_from
from graphql_api.observability.record import RequestRecord
from graphql_api.observability.telemetry import Telemetry
from graphql_api.settings import ObservabilitySettings, Settings, SettingsError
from tests.observed import OPERATIONS_DIR

DYNAMODB = botocore.session.get_session().get_service_model("dynamodb")
BASE_ENV = {
    "CHAT_TABLE_NAME": "t",
    "AWS_REGION": "us-east-1",
    "COGNITO_USER_POOL_ID": "us-east-1_Pool",
    "COGNITO_APP_CLIENT_IDS": "client",
}


# --- the record --------------------------------------------------------------------------


def test_single_item_capacity_counts_as_its_operations_kind() -> None:
    record = RequestRecord(request_id="r")
    record.add_call("GetItem", {"TableName": "t", "CapacityUnits": 0.5})
    record.add_call("PutItem", {"TableName": "t", "CapacityUnits": 2.0})

    assert (record.dynamodb_requests, record.read_units, record.write_units) == (2, 0.5, 2.0)


def test_batch_and_transaction_capacity_lists_are_summed() -> None:
    record = RequestRecord(request_id="r")
    record.add_call("BatchGetItem", [{"CapacityUnits": 1.0}, {"CapacityUnits": 2.0}])
    record.add_call("TransactWriteItems", [{"CapacityUnits": 4.0, "WriteCapacityUnits": 4.0}])

    assert (record.read_units, record.write_units) == (3.0, 4.0)


def test_a_split_report_is_taken_as_reported() -> None:
    record = RequestRecord(request_id="r")
    record.add_call("TransactGetItems", [{"CapacityUnits": 2.0, "ReadCapacityUnits": 2.0}])

    assert (record.read_units, record.write_units) == (2.0, 0.0)


@pytest.mark.parametrize("consumed", [None, [], {}])
def test_a_call_without_capacity_is_counted_as_unreported(consumed: Any) -> None:
    record = RequestRecord(request_id="r")
    record.add_call("TransactWriteItems", consumed)

    assert (record.dynamodb_requests, record.unreported, record.write_units) == (1, 1, 0.0)


# --- the client hooks --------------------------------------------------------------------


def _params_after_hook(operation: str, **params: Any) -> dict[str, Any]:
    capacity._ask_for_capacity(params, DYNAMODB.operation_model(operation))
    return params


@pytest.mark.parametrize(
    "operation",
    ["GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
     "BatchWriteItem", "TransactGetItems", "TransactWriteItems"],
)  # fmt: skip
def test_every_operation_that_can_report_capacity_is_asked_to(operation: str) -> None:
    assert _params_after_hook(operation)["ReturnConsumedCapacity"] == "TOTAL"


@pytest.mark.parametrize("operation", ["DescribeTable", "CreateTable", "ListTables"])
def test_operations_without_the_parameter_are_left_alone(operation: str) -> None:
    assert "ReturnConsumedCapacity" not in _params_after_hook(operation)


def test_a_callers_own_capacity_request_stands() -> None:
    params = _params_after_hook("Query", ReturnConsumedCapacity="INDEXES")

    assert params["ReturnConsumedCapacity"] == "INDEXES"


def test_hooks_outside_a_request_count_nothing_and_do_not_fail() -> None:
    capacity._count_response({"ConsumedCapacity": {}}, DYNAMODB.operation_model("GetItem"))
    capacity._count_failure(event_name="after-call-error.dynamodb.GetItem")


# --- labels --------------------------------------------------------------------------------


def test_the_known_operations_are_the_documents_in_schema_operations() -> None:
    names = set()
    for path in OPERATIONS_DIR.glob("*.graphql"):
        names.update(
            re.findall(r"^(?:query|mutation|subscription)\s+(\w+)", path.read_text(), re.M)
        )

    assert names == KNOWN_OPERATIONS


def test_unknown_names_get_labels_up_to_the_cap_then_share_one() -> None:
    names = OperationNames(max_operations=2)

    labels = [names.label(name) for name in ["A", "B", "C", "A", "HomeConversations", None]]

    assert labels == ["A", "B", OTHER, "A", "HomeConversations", "anonymous"]


def test_the_cap_holds_under_threads() -> None:
    names = OperationNames(max_operations=5)
    seen: set[str] = set()

    def label_many(offset: int) -> None:
        for index in range(200):
            seen.add(names.label(f"n{offset}-{index}"))

    threads = [threading.Thread(target=label_many, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(seen - {OTHER}) == 5


def test_routes_are_labelled_by_template_and_odd_methods_fold() -> None:
    assert route_label("GET", "/healthz") == "GET /healthz"
    assert route_label("BREW", "/healthz") == "OTHER /healthz"
    assert route_label("GET", None) == "unmatched"


@pytest.mark.parametrize(
    ("status", "codes", "outcome"),
    [
        (200, [], "ok"),
        (200, ["NOT_FOUND"], "client_error"),
        (200, ["BAD_USER_INPUT", "SERVICE_UNAVAILABLE"], "server_error"),
        (401, [], "client_error"),
        (503, [], "server_error"),
    ],
)
def test_outcomes(status: int, codes: list[str], outcome: str) -> None:
    assert outcome_of(status, codes) == outcome


def test_a_refusal_without_a_body_code_gets_its_statuss_code() -> None:
    assert codes_of_status(401) == ["UNAUTHENTICATED"]
    assert codes_of_status(413) == ["BAD_REQUEST"]
    assert codes_of_status(502) == ["INTERNAL_SERVER_ERROR"]
    assert codes_of_status(204) == []


def test_request_ids() -> None:
    assert request_id_from([(b"X-Request-Id", b"abc-123")]) == "abc-123"
    assert request_id_from([(b"x-request-id", b"Root=1-5759e988-bd862e3fe1be46a994272793")])
    generated = request_id_from([(b"x-request-id", b"a b")])
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


# --- log lines -----------------------------------------------------------------------------


def test_scrub_removes_what_looks_like_a_credential() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = scrub(
        f"token {jwt}; Authorization: Bearer abc.def; "
        "Credential=AKIAEXAMPLE/20240101/us-east-1/dynamodb/aws4_request, "
        "Signature=0123456789abcdef X-Amz-Security-Token: FQoGZXIvYXdzE"
    )

    for secret in (jwt, "abc.def", "AKIAEXAMPLE", "0123456789abcdef", "FQoGZXIvYXdzE"):
        assert secret not in text


def _raise_chain(secret: str) -> BaseException:
    try:
        try:
            raise KeyError(secret)
        except KeyError as inner:
            raise ValueError(f"wrapped {secret}") from inner
    except ValueError as outer:
        return outer


def test_a_traceback_keeps_types_and_frames_and_drops_every_message() -> None:
    error = _raise_chain("MARKER")

    text = safe_traceback((type(error), error, error.__traceback__))

    assert text is not None
    assert "MARKER" not in text
    assert "builtins.KeyError" in text
    assert "builtins.ValueError" in text
    assert "_raise_chain" in text


def _entry(message: str, **extra: Any) -> logging.LogRecord:
    entry = logging.LogRecord("graphql_api.x", logging.ERROR, __file__, 1, message, (), None)
    for name, value in extra.items():
        setattr(entry, name, value)
    return entry


def test_a_json_line_has_its_fields_and_a_scrubbed_message() -> None:
    error = _raise_chain("MARKER")
    entry = _entry("failed with Bearer sekrit", request_id="r1")
    entry.exc_info = (type(error), error, error.__traceback__)

    line = json.loads(JsonFormatter().format(entry))

    assert line["level"] == "error"
    assert line["logger"] == "graphql_api.x"
    assert line["request_id"] == "r1"
    assert "sekrit" not in line["message"]
    assert "MARKER" not in line["exception"]


def _refused(secret: str) -> BaseException:
    """A storage refusal as storage raises it: from the engine's error, which quotes `secret`."""
    try:
        try:
            raise RuntimeError(f"engine said: {secret}")
        except RuntimeError as engine:
            raise StorageRejectedError(
                service="DynamoDB",
                code="ValidationException",
                operation="TransactWriteItems",
                resource="chat-history",
                request_id="REQ123",
                status=400,
                items=11,
            ) from engine
    except StorageRejectedError as refused:
        try:
            raise ValueError(f"while adding {secret}") from refused
        except ValueError as outer:
            return outer


def test_a_storage_refusal_anywhere_in_the_chain_is_a_json_field_of_its_own() -> None:
    error = _refused("MARKER")
    entry = _entry("unexpected error at ['addMessages']")
    entry.exc_info = (type(error), error, error.__traceback__)

    line = json.loads(JsonFormatter().format(entry))

    assert line["storage_error"] == {
        "service": "DynamoDB",
        "code": "ValidationException",
        "operation": "TransactWriteItems",
        "table": "chat-history",
        "request_id": "REQ123",
        "http_status": 400,
        "items": 11,
    }
    assert "MARKER" not in json.dumps(line)


def test_a_console_line_shows_a_storage_refusal_in_its_traceback() -> None:
    error = _refused("MARKER")
    entry = _entry("unexpected error")
    entry.exc_info = (type(error), error, error.__traceback__)

    text = ConsoleFormatter().format(entry)

    assert (
        "graphql_api.errors.StorageRejectedError: DynamoDB rejected TransactWriteItems on "
        "chat-history: ValidationException (HTTP 400, 11 items, request id REQ123)"
    ) in text
    assert "builtins.RuntimeError (message not logged)" in text
    assert "MARKER" not in text


def test_a_line_without_a_storage_refusal_has_no_such_field() -> None:
    error = _raise_chain("MARKER")
    entry = _entry("unexpected error")
    entry.exc_info = (type(error), error, error.__traceback__)

    assert "storage_error" not in json.loads(JsonFormatter().format(entry))


def test_a_console_access_line_reads_as_a_sentence() -> None:
    entry = _entry(
        "request",
        fields={
            "method": "POST",
            "path": "/graphql",
            "operation_name": "HomeConversations",
            "operation_type": "query",
            "status": 200,
            "duration_ms": 3.2,
            "error_codes": [],
            "dynamodb_requests": 1,
            "read_capacity_units": 0.5,
            "write_capacity_units": 0,
            "request_id": "r1",
        },
    )
    entry.name = "graphql_api.access"

    text = ConsoleFormatter().format(entry)

    assert "POST /graphql query HomeConversations -> 200 in 3.2 ms" in text
    assert "dynamodb 1 req, 0.5 RCU, 0 WCU" in text


# --- settings and the user hash ------------------------------------------------------------


def test_observability_defaults_suit_production() -> None:
    settings = Settings.from_env(BASE_ENV).observability

    assert settings.log_format == "json"
    assert settings.log_level == "INFO"
    assert not settings.metrics_enabled
    assert not settings.otel_enabled
    assert not settings.cost_extension_enabled
    assert not settings.on_lambda


@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOG_FORMAT", "xml"), ("LOG_LEVEL", "loud"), ("METRICS_ENABLED", "maybe")],
)
def test_bad_values_name_their_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE_ENV, variable: value})

    assert raised.value.variable == variable


def test_on_lambda_metrics_need_json_lines() -> None:
    with pytest.raises(SettingsError) as raised:
        ObservabilitySettings.from_env(
            {"AWS_LAMBDA_FUNCTION_NAME": "fn", "METRICS_ENABLED": "true", "LOG_FORMAT": "console"}
        )

    assert raised.value.variable == "LOG_FORMAT"


def test_the_user_hash_is_an_hmac_under_the_configured_key() -> None:
    settings = Settings.from_env({**BASE_ENV, "LOG_USER_HASH_KEY": "k1"})
    telemetry = Telemetry.from_settings(settings)

    expected = hmac.new(b"k1", b"alice", hashlib.sha256).hexdigest()[:16]
    assert telemetry.user_hash("alice") == expected
    assert not telemetry.weak_user_hash_key
    other = Telemetry.from_settings(Settings.from_env({**BASE_ENV, "LOG_USER_HASH_KEY": "k2"}))
    assert other.user_hash("alice") != expected


def test_without_a_secret_the_hash_key_is_flagged_weak() -> None:
    assert Telemetry.from_settings(Settings.from_env(BASE_ENV)).weak_user_hash_key
    with_cursor_secret = Settings.from_env({**BASE_ENV, "CURSOR_SECRET": "s"})
    assert not Telemetry.from_settings(with_cursor_secret).weak_user_hash_key


def test_an_app_with_tracing_off_loads_no_opentelemetry() -> None:
    # A fresh interpreter: this one has loaded OpenTelemetry for other tests.
    program = (
        "import sys, json\n"
        "from graphql_api.app import create_app\n"
        "from graphql_api.settings import Settings\n"
        f"create_app(Settings.from_env({BASE_ENV!r}))\n"
        "print(json.dumps([m for m in sys.modules if m.startswith('opentelemetry')]))\n"
    )
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed program
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(result.stdout) == []


def test_tracing_on_builds_an_otlp_exporter_without_connecting() -> None:
    settings = Settings.from_env({**BASE_ENV, "OTEL_ENABLED": "true"})
    telemetry = Telemetry.from_settings(settings)

    assert telemetry.tracing is not None
    telemetry.tracing.start()
    telemetry.tracing.stop()
