"""The app's telemetry, built once in create_app: metrics, tracing, the access log, the user hash.

    telemetry = Telemetry.from_settings(settings)
    Middleware(RequestTelemetry, telemetry=telemetry)     # outermost, sees every request
    async with telemetry.running(jwks=services.jwks): ... # in the lifespan
    telemetry.metrics_endpoint                            # /metrics, or None

The WebSocket transport reports open subscriptions with
`telemetry.metrics.subscription_opened()` / `subscription_closed()`, and each other operation
as a request (sockets.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from graphql_api.settings import Settings

from .logs import ACCESS_LOGGER
from .metrics import FetchCounter, Metrics, PrometheusMetrics, build_metrics
from .record import RequestRecord

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from .tracing import Tracing

logger = logging.getLogger(__name__)

# Enough to tell users apart in a day's logs (a collision needs ~4 billion users), short
# enough to read.
_USER_HASH_HEX = 16


@dataclasses.dataclass(frozen=True, kw_only=True)
class Telemetry:
    metrics: Metrics
    tracing: Tracing | None
    cost_extension: bool
    access_log: logging.Logger
    # Keys the user hash: HMAC, not a bare sha256 of the sub. A sub is a UUID, but a person
    # who knows one (their own, a colleague's, one from a support ticket) could otherwise
    # find every line of that user in any log; with a per-deployment key only the operators
    # can, and hashes from two deployments cannot be joined.
    user_hash_key: bytes
    weak_user_hash_key: bool = False

    @classmethod
    def from_settings(
        cls, settings: Settings, *, span_exporter: SpanExporter | None = None
    ) -> Telemetry:
        """`span_exporter` replaces the OTLP exporter (tests pass an in-memory one)."""
        observability = settings.observability
        tracing = None
        if observability.otel_enabled:
            # Imported only when on: an app with tracing off loads no OpenTelemetry.
            from .tracing import Tracing

            tracing = Tracing(service_name=observability.otel_service_name, exporter=span_exporter)
        key, weak = _user_hash_key(settings)
        return cls(
            metrics=build_metrics(
                enabled=observability.metrics_enabled,
                on_lambda=observability.on_lambda,
                max_operations=observability.metrics_max_operations,
            ),
            tracing=tracing,
            cost_extension=observability.cost_extension_enabled,
            access_log=logging.getLogger(ACCESS_LOGGER),
            user_hash_key=key,
            weak_user_hash_key=weak,
        )

    @property
    def reporting(self) -> bool:
        """Whether anyone reads a request's summary (metrics, or a log level that shows it)."""
        return self.metrics.enabled or self.access_log.isEnabledFor(logging.INFO)

    def report(self, fields: dict[str, Any], current: RequestRecord) -> None:
        """One request done: its metrics, then its access line (`fields`, an allow-list)."""
        extra = self.metrics.request_finished(
            operation=fields["operation"],
            outcome=fields["outcome"],
            seconds=fields["duration_ms"] / 1000,
            record=current,
            codes=fields["error_codes"],
        )
        if extra:
            fields.update(extra)
        if self.access_log.isEnabledFor(logging.INFO):
            self.access_log.info("request", extra={"fields": fields})

    def user_hash(self, sub: str) -> str:
        digest = hmac.new(self.user_hash_key, sub.encode(), hashlib.sha256).hexdigest()
        return digest[:_USER_HASH_HEX]

    @contextlib.asynccontextmanager
    async def running(self, *, jwks: FetchCounter | None) -> AsyncIterator[None]:
        """For the lifespan: patches the DynamoDB client class for tracing while the app runs."""
        if self.weak_user_hash_key:
            logger.warning(
                "LOG_USER_HASH_KEY and CURSOR_SECRET are unset: user hashes in logs are keyed "
                "by ids that are not secret; set LOG_USER_HASH_KEY"
            )
        self.metrics.watch_jwks(jwks)
        if self.tracing is not None:
            self.tracing.start()
        try:
            yield
        finally:
            if self.tracing is not None:
                self.tracing.stop()
            self.metrics.watch_jwks(None)

    @property
    def metrics_endpoint(self) -> Any | None:
        """The ASGI app serving /metrics, when metrics are on and scraped (not on Lambda)."""
        if isinstance(self.metrics, PrometheusMetrics):
            return _MetricsEndpoint(self.metrics)
        return None


def _user_hash_key(settings: Settings) -> tuple[bytes, bool]:
    """The key, and whether it rests on non-secret ids only."""
    configured = settings.observability.user_hash_key
    if configured:
        return configured.encode(), False
    # Derived, so the cursor key itself never keys anything else.
    derived = hmac.new(settings.effective_cursor_secret, b"log-user-hash", hashlib.sha256)
    return derived.digest(), not settings.cursor_secret


class _MetricsEndpoint:
    def __init__(self, metrics: PrometheusMetrics) -> None:
        self._metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("method") not in ("GET", "HEAD"):
            await _respond(send, 405, b"method not allowed\n", "text/plain", allow=b"GET")
            return
        body, content_type = self._metrics.exposition()
        await _respond(send, 200, body if scope["method"] == "GET" else b"", content_type)


async def _respond(
    send: Any, status: int, body: bytes, content_type: str, *, allow: bytes | None = None
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
    if allow is not None:
        headers.append((b"allow", allow))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
