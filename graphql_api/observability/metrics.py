"""Request metrics: Prometheus on a server, CloudWatch embedded-metric-format lines on Lambda.

Every label is bounded. GraphQL operation names are client text, so only the operations in
schema/operations/ and the first `max_operations` other names get a label of their own;
every later name shares "other". Routes come from the app's route table, methods and error
codes from closed sets.

Each app builds its own (a Prometheus CollectorRegistry per app, never the global one), so
two apps in one process, as in the tests, keep separate counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Final, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from graphql_api.errors import Code

from .record import RequestRecord

# The operations a client app is given (schema/operations/*.graphql); a test keeps this in
# step with the files, which the wheel does not ship.
KNOWN_OPERATIONS: Final = frozenset(
    {
        "AppendMessage",
        "BranchMessage",
        "BrowseConversations",
        "CreateConversation",
        "DeleteAllMyData",
        "DeleteConversation",
        "FinishMessage",
        "HomeConversations",
        "ImportConversations",
        "LiveChanges",
        "MessageStream",
        "OlderMessages",
        "OpenConversation",
        "OrganiseConversation",
        "RateMessage",
        "RenameConversation",
        "SaveExchange",
        "SendMessage",
        "StartMessage",
        "SwitchBranch",
        "SyncChanges",
        # Issue 22: projects and refetching by id.
        "CreateProject",
        "DeleteProject",
        "MoveConversation",
        "ProjectConversations",
        "Projects",
        "RefetchNode",
        "UpdateProject",
        # Issue 23: share links.
        "ConversationShareLinks",
        "CreateShareLink",
        "ForkSharedConversation",
        "RevokeShareLink",
        "ShareLinks",
        "UpdateShareLink",
    }
)
OTHER: Final = "other"
ANONYMOUS: Final = "anonymous"
UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_CODES: Final = frozenset(code.value for code in Code)
_KINDS: Final = frozenset({"read", "write", "append", "share"})
_TRANSPORTS: Final = frozenset({"graphql", "rest", "websocket", "shared"})
_SERVER_CODES: Final = frozenset({Code.INTERNAL_SERVER_ERROR.value, Code.SERVICE_UNAVAILABLE.value})
# Request durations from a cached read (~2 ms) to a deadline-bound write (10 s).
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EMF_NAMESPACE: Final = "ChatHistoryApi"


class FetchCounter(Protocol):
    """The JWKS cache, as far as metrics are concerned."""

    @property
    def fetch_count(self) -> int: ...


class OperationNames:
    """Folds operation names into a bounded set of label values."""

    def __init__(self, *, max_operations: int) -> None:
        self._max = max_operations
        self._admitted: set[str] = set()
        # Requests finish on the event loop, but a Lambda adapter or a threaded test may not.
        self._lock = threading.Lock()

    def label(self, name: str | None) -> str:
        if name is None:
            return ANONYMOUS
        if name in KNOWN_OPERATIONS or name in self._admitted:
            return name
        with self._lock:
            if len(self._admitted) < self._max:
                self._admitted.add(name)
                return name
        return OTHER


def route_label(method: str, route: str | None) -> str:
    """`GET /healthz`: the route's template (never the raw path, which holds ids)."""
    verb = method if method in _METHODS else "OTHER"
    return f"{verb} {route}" if route is not None else UNMATCHED


def code_label(code: str) -> str:
    return code if code in _CODES else "OTHER"


def _bounded(value: str, values: frozenset[str]) -> str:
    return value if value in values else OTHER


def outcome_of(status: int | None, codes: Sequence[str]) -> str:
    """ok, client_error (the caller's fault: retrying the same request will not help) or
    server_error (ours, or DynamoDB's). `status` is None for an operation with no HTTP
    response of its own (one over a WebSocket): its codes decide alone."""
    status = status or 0
    if status >= 500 or any(code in _SERVER_CODES for code in codes):
        return "server_error"
    if status >= 400 or codes:
        return "client_error"
    return "ok"


class Metrics:
    """What the middleware and the transports report; this base records nothing."""

    enabled = False

    def __init__(self, *, max_operations: int = 0) -> None:
        self.operations = OperationNames(max_operations=max_operations)
        self._jwks: FetchCounter | None = None
        self._jwks_seen = 0

    def watch_jwks(self, source: FetchCounter | None) -> None:
        """Report `source.fetch_count` (the lifespan's JWKS cache); None stops."""
        self._jwks = source
        self._jwks_seen = source.fetch_count if source is not None else 0

    def jwks_fetches_since_last(self) -> int:
        if self._jwks is None:
            return 0
        count = self._jwks.fetch_count
        delta, self._jwks_seen = count - self._jwks_seen, count
        return delta

    def request_finished(
        self,
        *,
        operation: str,
        outcome: str,
        seconds: float,
        record: RequestRecord,
        codes: Sequence[str],
    ) -> dict[str, Any] | None:
        """Record one request; may return fields for its log line (the EMF sink does)."""
        return None

    def request_started(self) -> None:
        pass

    def subscription_opened(self) -> None:
        """For the subscription transport: a subscription started streaming."""

    def subscription_closed(self) -> None:
        """For the subscription transport: it ended (completed, errored or disconnected)."""

    def rate_limited(self, kind: str, transport: str) -> None:
        """A request refused for its user's `kind` of budget (read, write, append)."""

    def rate_limits_shared(self, shared: bool) -> None:
        """Whether rate-limit checks are going through Redis (True) or stay in the process."""

    def rate_limit_checked_locally(self) -> None:
        """A rate-limit check decided in the process although RATE_LIMIT_URL is set."""

    def shed(self, transport: str) -> None:
        """A request refused at admission: the process was serving as many as it takes."""

    def admission_places(self, places: int) -> None:
        """How many requests the process now admits at once (admission.py)."""


class _JwksCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterable[Metric]:
        source = self._metrics._jwks
        family = CounterMetricFamily(
            "chat_api_jwks_fetches", "HTTP fetches of the user pool's signing keys (JWKS)."
        )
        family.add_metric([], float(source.fetch_count if source is not None else 0))
        yield family


class PrometheusMetrics(Metrics):
    enabled = True

    def __init__(self, *, max_operations: int) -> None:
        super().__init__(max_operations=max_operations)
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self._duration = Histogram(
            "chat_api_request_duration_seconds",
            "Time from the request's arrival to the end of its response.",
            ["operation", "outcome"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "chat_api_requests_in_flight", "Requests being served.", registry=registry
        )
        self._dynamodb_requests = Counter(
            "chat_api_dynamodb_requests",
            "DynamoDB API calls, by the request's operation and the DynamoDB operation.",
            ["operation", "call"],
            registry=registry,
        )
        self._read_units = Counter(
            "chat_api_dynamodb_read_capacity_units",
            "Read capacity units DynamoDB reported as consumed.",
            ["operation", "call"],
            registry=registry,
        )
        self._write_units = Counter(
            "chat_api_dynamodb_write_capacity_units",
            "Write capacity units DynamoDB reported as consumed.",
            ["operation", "call"],
            registry=registry,
        )
        self._unreported = Counter(
            "chat_api_dynamodb_unreported_capacity_calls",
            "DynamoDB calls whose response reported no consumed capacity (errors, or an "
            "engine that does not report it).",
            ["operation", "call"],
            registry=registry,
        )
        self._errors = Counter(
            "chat_api_errors",
            "Errors returned to clients, by extensions.code.",
            ["operation", "code"],
            registry=registry,
        )
        self._subscriptions = Gauge(
            "chat_api_subscriptions_open", "GraphQL subscriptions streaming now.", registry=registry
        )
        self._rate_limited = Counter(
            "chat_api_rate_limited",
            "Requests refused with RATE_LIMITED (429): the user's budget of that kind was spent.",
            ["kind", "transport"],
            registry=registry,
        )
        self._shared_limits = Gauge(
            "chat_api_rate_limit_shared",
            "1 while rate limits are checked in the shared Redis, 0 while in this process "
            "(RATE_LIMIT_URL unset, or its Redis not answering).",
            registry=registry,
        )
        self._local_checks = Counter(
            "chat_api_rate_limit_local_checks",
            "Rate-limit checks decided in this process because the limiter's Redis did not answer.",
            registry=registry,
        )
        self._shed = Counter(
            "chat_api_shed",
            "Requests answered 503 at admission, unread: the places in use (at most "
            "MAX_CONCURRENT_REQUESTS, fewer while requests run late) stayed taken for "
            "ADMISSION_WAIT_SECONDS.",
            ["transport"],
            registry=registry,
        )
        self._places = Gauge(
            "chat_api_admission_places",
            "Requests the process admits at once now: MAX_CONCURRENT_REQUESTS, or fewer while "
            "requests hold their places longer than half of DYNAMODB_DEADLINE_SECONDS.",
            registry=registry,
        )
        registry.register(_JwksCollector(self))

    def request_started(self) -> None:
        self._in_flight.inc()

    def request_finished(
        self,
        *,
        operation: str,
        outcome: str,
        seconds: float,
        record: RequestRecord,
        codes: Sequence[str],
    ) -> dict[str, Any] | None:
        self._in_flight.dec()
        self._duration.labels(operation, outcome).observe(seconds)
        for call, usage in record.calls.items():
            self._dynamodb_requests.labels(operation, call).inc(usage.requests)
            if usage.read_units:
                self._read_units.labels(operation, call).inc(usage.read_units)
            if usage.write_units:
                self._write_units.labels(operation, call).inc(usage.write_units)
            if usage.unreported:
                self._unreported.labels(operation, call).inc(usage.unreported)
        for code in codes:
            self._errors.labels(operation, code_label(code)).inc()
        return None

    def subscription_opened(self) -> None:
        self._subscriptions.inc()

    def subscription_closed(self) -> None:
        self._subscriptions.dec()

    def rate_limited(self, kind: str, transport: str) -> None:
        self._rate_limited.labels(_bounded(kind, _KINDS), _bounded(transport, _TRANSPORTS)).inc()

    def rate_limits_shared(self, shared: bool) -> None:
        self._shared_limits.set(1 if shared else 0)

    def rate_limit_checked_locally(self) -> None:
        self._local_checks.inc()

    def shed(self, transport: str) -> None:
        self._shed.labels(_bounded(transport, _TRANSPORTS)).inc()

    def admission_places(self, places: int) -> None:
        self._places.set(places)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def label_values(self, metric: str, label: str) -> set[str]:
        """Every value `label` has taken on `metric` (for tests and the cardinality check)."""
        return {
            sample.labels[label]
            for family in self.registry.collect()
            for sample in family.samples
            if family.name == metric and label in sample.labels
        }


class EmbeddedMetrics(Metrics):
    """CloudWatch embedded metric format: the metrics ride in the request's JSON log line.

    Dimensions: per operation, and none (the whole service), so alarms can watch both. The
    first error's code gets a metric of its own. Each distinct dimension value is a custom
    metric CloudWatch bills for, which is why labels are bounded here too.
    """

    enabled = True
    _METRICS: Final = (
        ("duration_ms", "Milliseconds"),
        ("dynamodb_requests", "Count"),
        ("read_capacity_units", "Count"),
        ("write_capacity_units", "Count"),
        ("client_errors", "Count"),
        ("server_errors", "Count"),
        ("jwks_fetches", "Count"),
    )

    def request_finished(
        self,
        *,
        operation: str,
        outcome: str,
        seconds: float,
        record: RequestRecord,
        codes: Sequence[str],
    ) -> dict[str, Any] | None:
        directives: list[dict[str, Any]] = [
            {
                "Namespace": EMF_NAMESPACE,
                "Dimensions": [["operation"], []],
                "Metrics": [{"Name": name, "Unit": unit} for name, unit in self._METRICS],
            }
        ]
        fields: dict[str, Any] = {
            "operation": operation,
            "client_errors": int(outcome == "client_error"),
            "server_errors": int(outcome == "server_error"),
            "jwks_fetches": self.jwks_fetches_since_last(),
        }
        if codes:
            fields["error_code"] = code_label(codes[0])
            fields["errors"] = len(codes)
            directives.append(
                {
                    "Namespace": EMF_NAMESPACE,
                    "Dimensions": [["error_code"]],
                    "Metrics": [{"Name": "errors", "Unit": "Count"}],
                }
            )
        fields["_aws"] = {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": directives}
        return fields


def build_metrics(*, enabled: bool, on_lambda: bool, max_operations: int) -> Metrics:
    if not enabled:
        return Metrics(max_operations=max_operations)
    if on_lambda:
        return EmbeddedMetrics(max_operations=max_operations)
    return PrometheusMetrics(max_operations=max_operations)
