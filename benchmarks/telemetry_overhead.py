"""CPU the telemetry adds to a request: `python -m benchmarks.telemetry_overhead`.

A trivial ASGI app (200, a short body) is called directly, N times, bare and behind
RequestTelemetry with each setting; the difference in process CPU per request is what the
middleware, the record, the metrics, the log line and the span cost. The DynamoDB hooks are
timed per call on a real botocore operation model.
"""

from __future__ import annotations

import asyncio
import io
import logging
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import botocore.session
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from graphql_api.observability import capacity, logs, record
from graphql_api.observability.middleware import RequestTelemetry
from graphql_api.observability.telemetry import Telemetry
from graphql_api.settings import Settings

REQUESTS = 20_000
ROUNDS = 5
BASE_ENV = {
    "CHAT_TABLE_NAME": "t",
    "AWS_REGION": "us-east-1",
    "COGNITO_USER_POOL_ID": "us-east-1_Pool",
    "COGNITO_APP_CLIENT_IDS": "client",
    "CURSOR_SECRET": "overhead",
}


class _User:
    is_authenticated = True
    identity = "2f1e6c1c-6b37-4a9c-9d2e-3f8a9d1c0b7e"


async def _trivial(scope: Any, receive: Any, send: Any) -> None:
    scope["user"] = _User()
    record.note_operation("HomeConversations", "query")
    current = record.current()
    if current is not None:
        current.add_call("Query", {"TableName": "t", "CapacityUnits": 1.0})
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b'{"data":{}}'})


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/graphql",
        "headers": [(b"content-type", b"application/json"), (b"authorization", b"Bearer x")],
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    return None


def _cpu_per_request(app: Callable[..., Any]) -> float:
    async def loop() -> float:
        started = time.process_time()
        for _ in range(REQUESTS):
            await app(_scope(), _receive, _send)
        return (time.process_time() - started) / REQUESTS

    return min(asyncio.run(loop()) for _ in range(ROUNDS))


class _Dropped(SpanExporter):
    """Spans built and handed over, then dropped: the export's network cost is not ours."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _telemetry(**env: str) -> Telemetry:
    settings = Settings.from_env({**BASE_ENV, **env})
    telemetry = Telemetry.from_settings(settings, span_exporter=_Dropped())
    if telemetry.tracing is not None:
        telemetry.tracing.start()
    return telemetry


def _with_logging(format_name: str) -> logging.Handler:
    settings = Settings.from_env({**BASE_ENV, "LOG_FORMAT": format_name}).observability
    handler = logs.build_handler(settings, io.StringIO())
    access = logging.getLogger(logs.ACCESS_LOGGER)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    return handler


def _without_logging(handler: logging.Handler) -> None:
    access = logging.getLogger(logs.ACCESS_LOGGER)
    access.removeHandler(handler)
    access.setLevel(logging.NOTSET)
    access.propagate = True


def _hook_cost() -> float:
    model = botocore.session.get_session().get_service_model("dynamodb").operation_model("Query")
    parsed = {"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0}}
    token = record.begin(record.RequestRecord(request_id="r"))
    try:
        started = time.process_time()
        for _ in range(REQUESTS):
            capacity._ask_for_capacity({}, model)
            capacity._count_response(parsed, model)
        return (time.process_time() - started) / REQUESTS
    finally:
        record.end(token)


def main() -> int:
    logging.getLogger(logs.ACCESS_LOGGER).setLevel(logging.WARNING)
    bare = _cpu_per_request(_trivial)
    rows = [("bare app", bare)]
    quiet = _telemetry()
    rows.append(("telemetry, log line below level, metrics off", _cpu_per(quiet)))
    rows.append(("+ Prometheus metrics", _cpu_per(_telemetry(METRICS_ENABLED="true"))))
    for format_name in ("json", "console"):
        handler = _with_logging(format_name)
        try:
            metrics = _telemetry(METRICS_ENABLED="true")
            rows.append((f"+ metrics + {format_name} log line", _cpu_per(metrics)))
        finally:
            _without_logging(handler)
    traced = _telemetry(METRICS_ENABLED="true", OTEL_ENABLED="true")
    handler = _with_logging("json")
    try:
        rows.append(("+ metrics + json line + OpenTelemetry span", _cpu_per(traced)))
    finally:
        _without_logging(handler)
        assert traced.tracing is not None
        traced.tracing.stop()
    print(f"CPU per request, best of {ROUNDS} rounds of {REQUESTS:,} ({sys.platform}):")
    for name, seconds in rows:
        added = "" if name == "bare app" else f"  (+{(seconds - bare) * 1e6:.1f} µs)"
        print(f"  {name:<48} {seconds * 1e6:7.1f} µs{added}")
    hooks = statistics.median(_hook_cost() for _ in range(ROUNDS))
    print(f"  DynamoDB hooks per call (ask + count)             {hooks * 1e6:7.1f} µs")
    return 0


def _cpu_per(telemetry: Telemetry) -> float:
    return _cpu_per_request(RequestTelemetry(_trivial, telemetry=telemetry))


if __name__ == "__main__":
    sys.exit(main())
