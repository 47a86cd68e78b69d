"""Traces with OTEL_ENABLED: a span per request, DynamoDB calls as its children, nothing else."""

from __future__ import annotations

import uuid

from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from graphql_api.observability.tracing import ScrubbingExporter
from tests.api.harness import create_conversation, new_user
from tests.apps import AppFactory
from tests.observed import operation_document

OPEN = operation_document("OpenConversation")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _instrumented() -> bool:
    instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]
    return bool(instrumentor.is_instrumented_by_opentelemetry)


async def test_a_request_is_one_span_with_its_dynamodb_calls_as_children(
    make_api: AppFactory,
) -> None:
    exporter = InMemorySpanExporter()
    user = new_user()
    async with make_api(observability={"otel_enabled": True}, span_exporter=exporter) as api:
        conversation = await create_conversation(api, user)
        exporter.clear()
        response = await api.http.post(
            "/graphql",
            json={"query": OPEN, "variables": {"id": conversation["id"]}},
            headers={**api.headers(user), "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
        )
        assert response.status_code == 200
    assert not _instrumented(), "the patch ends with the app"

    spans = exporter.get_finished_spans()
    [request] = [span for span in spans if span.kind is SpanKind.SERVER]
    assert request.name == "query OpenConversation"
    attributes = request.attributes or {}
    assert attributes["graphql.operation.name"] == "OpenConversation"
    assert attributes["graphql.operation.type"] == "query"
    assert attributes["http.response.status_code"] == 200
    assert attributes["chat.request_id"] == response.headers["x-request-id"]
    assert attributes["chat.dynamodb.requests"] == 2
    # The caller's trace goes on.
    assert format(request.context.trace_id, "032x") == TRACE_ID
    children = [span for span in spans if span is not request]
    assert sorted(span.name for span in children) == ["DynamoDB.BatchGetItem", "DynamoDB.Query"]
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == request.context.span_id
        assert child.kind is SpanKind.CLIENT


async def test_with_tracing_off_nothing_is_patched_and_requests_work(
    make_api: AppFactory,
) -> None:
    async with make_api() as api:
        assert api.telemetry.tracing is None
        assert not _instrumented()
        conversation = await create_conversation(api, new_user())

    assert conversation["id"]


def test_exported_spans_carry_no_exception_text() -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(ScrubbingExporter(exporter)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("DynamoDB.PutItem") as span:
        error = ValueError(f"Invalid type for parameter Item.content, value: {marker}")
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, f"Parameter validation failed: {marker}")
    provider.shutdown()

    [exported] = exporter.get_finished_spans()
    assert exported.status.status_code is StatusCode.ERROR
    assert exported.status.description == "Parameter validation failed"
    [event] = exported.events
    assert dict(event.attributes or {}) == {"exception.type": "ValueError"}
    assert marker not in repr(exported.to_json())
