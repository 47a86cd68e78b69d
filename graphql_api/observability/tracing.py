"""OpenTelemetry traces, when OTEL_ENABLED: a span per request, a child span per DynamoDB call.

This module imports OpenTelemetry; only `telemetry.py` imports it, and only when tracing is
on, so an app with tracing off loads none of it and pays nothing per request.

The request span is ours (the middleware's); the DynamoDB spans come from
opentelemetry-instrumentation-botocore's AiobotocoreInstrumentor, which wraps aiobotocore's
client class. That patch is process-wide, so it is applied when the app's lifespan starts and
removed when it ends: one traced app per process (the server's case). There are no resolver
spans: Strawberry's tracing extension multiplies a request's CPU, and the DynamoDB calls are
where the time goes.

The tracer provider is the app's own, never the global one. The exporter is OTLP over
HTTP/protobuf, configured by the standard OTEL_EXPORTER_OTLP_* variables (an ADOT collector
or the Lambda layer forwards to X-Ray); OTEL_TRACES_SAMPLER and OTEL_PROPAGATORS apply too.

Spans are scrubbed on the way out: an exception's text is untrusted (botocore's
ParamValidationError quotes the value it refused), so status descriptions are cut to their
first clause and exception events keep only the exception's type.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.botocore import AiobotocoreInstrumentor
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Span, SpanKind, StatusCode
from opentelemetry.trace.status import Status

from .logs import scrub


class Tracing:
    def __init__(self, *, service_name: str, exporter: SpanExporter | None = None) -> None:
        """`exporter`: tests pass an in-memory one (exported as each span ends); None is OTLP,
        batched in the background."""
        processor: SpanProcessor
        if exporter is None:
            processor = BatchSpanProcessor(ScrubbingExporter(OTLPSpanExporter()))
        else:
            processor = SimpleSpanProcessor(ScrubbingExporter(exporter))
        # shutdown_on_exit would register an atexit hook holding the provider for the life of
        # the process; the lifespan shuts it down instead.
        self.provider = TracerProvider(
            resource=Resource.create({"service.name": service_name}), shutdown_on_exit=False
        )
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer("graphql_api")
        self._instrumentor = AiobotocoreInstrumentor()  # type: ignore[no-untyped-call]

    def start(self) -> None:
        self._instrumentor.instrument(tracer_provider=self.provider)

    def stop(self) -> None:
        self._instrumentor.uninstrument()
        self.provider.shutdown()

    @contextlib.contextmanager
    def request_span(
        self, method: str, path: str, headers: Sequence[tuple[bytes, bytes]]
    ) -> Iterator[Span]:
        """The request's span, current while the app serves it (DynamoDB spans nest in it)."""
        # A caller's traceparent (or X-Ray header, per OTEL_PROPAGATORS) continues its trace.
        carrier = {name.decode("latin-1"): value.decode("latin-1") for name, value in headers}
        # No exception recording: an exception's message may quote what a user wrote.
        with self.tracer.start_as_current_span(
            f"{method} {path}",
            context=extract(carrier),
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.path": path},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            yield span

    @staticmethod
    def finish(span: Span, *, name: str, attributes: Mapping[str, Any], failed: bool) -> None:
        span.update_name(name)
        span.set_attributes({key: value for key, value in attributes.items() if value is not None})
        if failed:
            span.set_status(StatusCode.ERROR)


def _description(text: str | None) -> str | None:
    """The first clause: "An error occurred (X) when calling the Y operation"."""
    if not text:
        return text
    return scrub(text.split(":", 1)[0])[:200]


class ScrubbingExporter(SpanExporter):
    """Passes each span on without exception text (see the module doc)."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self._inner.export([_scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


def _scrubbed(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    events = span.events
    if not status.description and not any(event.name == "exception" for event in events):
        return span
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=span.attributes,
        events=[_scrubbed_event(event) for event in events],
        links=span.links,
        kind=span.kind,
        status=Status(status.status_code, _description(status.description)),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _scrubbed_event(event: Event) -> Event:
    if event.name != "exception":
        return event
    kind = (event.attributes or {}).get("exception.type", "")
    return Event("exception", {"exception.type": str(kind)}, event.timestamp)
