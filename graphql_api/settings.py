"""The typed settings. Every environment read in the service goes through here.

Settings come in sections, so that a command reads only what it needs: `create-table` reads
`DynamoDBSettings` and never asks for a user pool, while `serve` reads the whole `Settings`.
Each field names its environment variable once; a missing required variable or a value that
does not parse stops the command with one line naming the variable.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, Literal, Self, TypeVar, cast
from urllib.parse import urlsplit

TokenUse = Literal["id", "access", "any"]
LogFormat = Literal["json", "console"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_T = TypeVar("_T")

# Message content up to this many bytes is kept in its DynamoDB item (400 KB at most, with room
# for the rest of the item); larger content goes to the content bucket.
INLINE_CONTENT_BYTES = 300 * 1024
MAX_CONTENT_CEILING = 16 * 1024 * 1024


class SettingsError(Exception):
    """A missing or invalid setting; `str()` is one line naming the variable."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


def _optional_url(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not re.match(r"^https?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def _optional_text(value: str) -> str | None:
    return value.strip() or None


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{value!r} is not a boolean (use true or false)")


def _positive(parse: Callable[[str], _T]) -> Callable[[str], _T]:
    def parse_positive(value: str) -> _T:
        try:
            number = parse(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if cast(float, number) <= 0:
            raise ValueError(f"{value!r} must be greater than zero")
        return number

    return parse_positive


def _non_negative_float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number") from None
    if not number >= 0:  # NaN too
        raise ValueError(f"{value!r} must not be negative")
    return number


def _non_negative_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a whole number") from None
    if number < 0:
        raise ValueError(f"{value!r} must not be negative")
    return number


def _token_use(value: str) -> TokenUse:
    if value not in ("id", "access", "any"):
        raise ValueError(f"{value!r} must be one of id, access, any")
    return cast(TokenUse, value)


def _log_format(value: str) -> LogFormat:
    lowered = value.strip().lower()
    if lowered not in ("json", "console"):
        raise ValueError(f"{value!r} must be json or console")
    return cast(LogFormat, lowered)


def _log_level(value: str) -> LogLevel:
    upper = value.strip().upper()
    if upper not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ValueError(f"{value!r} must be one of DEBUG, INFO, WARNING, ERROR")
    return cast(LogLevel, upper)


def _env(
    name: str,
    parse: Callable[[str], Any],
    default: Any = dataclasses.MISSING,
    *,
    fallback: str | None = None,
    secret: bool = False,
) -> Any:
    """A field read from the environment variable `name` (else `fallback`); no default: required.

    A `secret` field stays out of the settings' repr, so no log line or traceback shows it.
    """
    return dataclasses.field(
        default=default,
        repr=not secret,
        metadata={
            "env": name,
            "parse": parse,
            "fallback": fallback,
            "required": default is dataclasses.MISSING,
        },
    )


def _section(kind: type[_Section], *, defaults: bool = False) -> Any:
    """A field holding a whole section, read from the same environment. With `defaults`, a
    Settings built by hand may leave it out (every field of it has a default)."""
    if defaults:
        return dataclasses.field(default_factory=kind, metadata={"section": kind})
    return dataclasses.field(metadata={"section": kind})


class _Section:
    """Reads a dataclass's fields from the environment, sections included."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> Self:
        """Every field from `environ`; `overrides` (by field name) win over the environment."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            if field.name in overrides:
                continue
            section = field.metadata.get("section")
            if section is not None:
                values[field.name] = section.from_env(environ)
                continue
            name, raw = _lookup(environ, field.metadata["env"], field.metadata["fallback"])
            if raw is None or (raw.strip() == "" and field.metadata["required"]):
                if field.metadata["required"]:
                    raise SettingsError(name, "is required but not set")
                continue
            try:
                values[field.name] = field.metadata["parse"](raw)
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None
        return cls(**values, **overrides)

    @classmethod
    def variables(cls) -> Iterator[str]:
        """The environment variables this section reads, sections included."""
        for field in dataclasses.fields(cls):  # type: ignore[arg-type]
            section = field.metadata.get("section")
            if section is not None:
                yield from section.variables()
            else:
                yield field.metadata["env"]


def _lookup(environ: Mapping[str, str], name: str, fallback: str | None) -> tuple[str, str | None]:
    raw = environ.get(name)
    if (raw is None or not raw.strip()) and fallback is not None and environ.get(fallback):
        return fallback, environ[fallback]
    return name, raw


@dataclasses.dataclass(frozen=True, kw_only=True)
class DynamoDBSettings(_Section):
    table_name: str = _env("CHAT_TABLE_NAME", _text)
    region: str = _env("AWS_REGION", _text)
    endpoint_url: str | None = _env("DYNAMODB_ENDPOINT_URL", _optional_url, None)
    max_pool_connections: int = _env("DYNAMODB_MAX_POOL_CONNECTIONS", _positive(int), 64)
    connect_timeout: float = _env("DYNAMODB_CONNECT_TIMEOUT", _positive(float), 2.0)
    read_timeout: float = _env("DYNAMODB_READ_TIMEOUT", _positive(float), 5.0)
    max_attempts: int = _env("DYNAMODB_MAX_ATTEMPTS", _positive(int), 4)
    # Upper bound on one storage operation including every retry, so a client always gets an
    # answer (SERVICE_UNAVAILABLE at worst) in bounded time.
    deadline: float = _env("DYNAMODB_DEADLINE_SECONDS", _positive(float), 10.0)
    # Item operations skip botocore's generic serializing, signing and parsing (storage/
    # fast_path.py); false sends every call botocore's whole way, for comparison.
    fast_path: bool = _env("DYNAMODB_FAST_PATH", _bool, True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CognitoSettings(_Section):
    user_pool_id: str = _env("COGNITO_USER_POOL_ID", _text)
    # The pool's region; the table's (AWS_REGION) unless the pool lives elsewhere.
    region: str = _env("COGNITO_REGION", _text, fallback="AWS_REGION")
    app_client_ids: tuple[str, ...] = _env("COGNITO_APP_CLIENT_IDS", _csv)
    token_use: TokenUse = _env("COGNITO_TOKEN_USE", _token_use, "access")
    jwks_url_override: str | None = _env("COGNITO_JWKS_URL", _optional_url, None)
    leeway_seconds: float = _env("JWT_LEEWAY_SECONDS", float, 30.0)
    jwks_penalty_seconds: float = _env("JWKS_PENALTY_SECONDS", float, 10.0)
    jwks_connect_timeout: float = _env("JWKS_CONNECT_TIMEOUT", _positive(float), 2.0)
    jwks_total_timeout: float = _env("JWKS_TOTAL_TIMEOUT", _positive(float), 5.0)
    jwks_warm_at_startup: bool = _env("JWKS_WARM_AT_STARTUP", _bool, True)

    def __post_init__(self) -> None:
        pool_region, _, pool_suffix = self.user_pool_id.partition("_")
        if not pool_suffix:
            raise SettingsError(
                "COGNITO_USER_POOL_ID", f"{self.user_pool_id!r} is not <region>_<id>"
            )
        if pool_region != self.region:
            raise SettingsError(
                "COGNITO_REGION",
                f"{self.region!r} does not match the user pool's region {pool_region!r}",
            )
        if not self.app_client_ids:
            raise SettingsError("COGNITO_APP_CLIENT_IDS", "must name at least one app client id")

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}"

    @property
    def jwks_url(self) -> str:
        return self.jwks_url_override or f"{self.issuer}/.well-known/jwks.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class InputLimits(_Section):
    """The bounds the rules below every transport hold input to."""

    default_page_size: int = _env("DEFAULT_PAGE_SIZE", _positive(int), 20)
    max_page_size: int = _env("MAX_PAGE_SIZE", _positive(int), 100)
    # Content over INLINE_CONTENT_BYTES lives in the content bucket; without one, this limit
    # stops at INLINE_CONTENT_BYTES whatever it says (see Settings.content_limit).
    max_content_bytes: int = _env("MAX_CONTENT_BYTES", _positive(int), 4 * 1024 * 1024)
    max_batch_messages: int = _env("MAX_BATCH_MESSAGES", _positive(int), 25)
    # A user's projects; each is one item, and the projects list pages through them.
    max_projects_per_user: int = _env("MAX_PROJECTS_PER_USER", _positive(int), 1000)

    def __post_init__(self) -> None:
        if self.default_page_size > self.max_page_size:
            raise SettingsError("DEFAULT_PAGE_SIZE", "must not exceed MAX_PAGE_SIZE")
        if self.max_content_bytes > MAX_CONTENT_CEILING:
            raise SettingsError(
                "MAX_CONTENT_BYTES", f"must be at most {MAX_CONTENT_CEILING} bytes (16 MiB)"
            )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ContentSettings(_Section):
    """Where message content too large for a DynamoDB item is kept."""

    bucket: str | None = _env("CONTENT_BUCKET", _optional_text, None)
    # An S3-compatible endpoint (moto in the dev stack and tests) instead of AWS.
    endpoint_url: str | None = _env("S3_ENDPOINT_URL", _optional_url, None)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ObservabilitySettings(_Section):
    """Logs, metrics, traces and the cost extension; every field has a production default."""

    log_level: LogLevel = _env("LOG_LEVEL", _log_level, "INFO")
    log_format: LogFormat = _env("LOG_FORMAT", _log_format, "json")
    # Keys the one-way hash of a user's `sub` in logs and traces. Unset, a key is derived from
    # CURSOR_SECRET (itself derived from non-secret ids when unset): set one of the two.
    user_hash_key: str = _env("LOG_USER_HASH_KEY", str, "")
    metrics_enabled: bool = _env("METRICS_ENABLED", _bool, False)
    # GraphQL operation names beyond schema/operations/ that get their own metric label (first
    # come); the rest share "other", so made-up names cannot grow the series without bound.
    metrics_max_operations: int = _env("METRICS_MAX_OPERATIONS", _non_negative_int, 20)
    # Set by the Lambda runtime: there is no scrape endpoint, so metrics go out as CloudWatch
    # embedded-metric-format log lines instead of /metrics.
    lambda_function_name: str | None = _env("AWS_LAMBDA_FUNCTION_NAME", str, None)
    otel_enabled: bool = _env("OTEL_ENABLED", _bool, False)
    # The exporter itself reads the standard OTEL_EXPORTER_OTLP_* and OTEL_TRACES_SAMPLER.
    otel_service_name: str = _env("OTEL_SERVICE_NAME", _text, "chat-history-api")
    cost_extension_enabled: bool = _env("COST_EXTENSION_ENABLED", _bool, False)

    def __post_init__(self) -> None:
        if self.metrics_enabled and self.on_lambda and self.log_format != "json":
            raise SettingsError(
                "LOG_FORMAT", "must be json on Lambda: the metrics ride in the JSON request lines"
            )

    @property
    def on_lambda(self) -> bool:
        return bool(self.lambda_function_name)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RetentionSettings(_Section):
    """How long what the service keeps for a while is kept, in days (fractions allowed, so
    tests can shorten them)."""

    change_retention_days: float = _env("CHANGE_RETENTION_DAYS", _positive(float), 30.0)
    temporary_retention_days: float = _env("TEMPORARY_RETENTION_DAYS", _positive(float), 30.0)

    @property
    def change_retention(self) -> timedelta:
        return timedelta(days=self.change_retention_days)

    @property
    def temporary_retention(self) -> timedelta:
        return timedelta(days=self.temporary_retention_days)


# A delta is one item (DynamoDB's limit is 400 KB with its keys and attributes).
MAX_DELTA_CEILING = 256 * 1024


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamingSettings(_Section):
    """Answers saved as they stream: startMessage, appendMessage, finishMessage."""

    # A streaming message with no append for this long reads as INTERRUPTED (its text kept;
    # a late append or finish goes on). Longer than a model's longest pause between tokens.
    lease_seconds: float = _env("STREAM_LEASE_SECONDS", _positive(float), 30.0)
    max_delta_bytes: int = _env("MAX_DELTA_BYTES", _positive(int), 64 * 1024)
    # Per user, counting only messages still streaming (not those past the lease).
    max_streaming_messages: int = _env("MAX_STREAMING_MESSAGES", _positive(int), 16)

    def __post_init__(self) -> None:
        if self.max_delta_bytes > MAX_DELTA_CEILING:
            raise SettingsError(
                "MAX_DELTA_BYTES", f"must be at most {MAX_DELTA_CEILING} bytes (256 KiB)"
            )

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.lease_seconds)


def _redis_url(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if not re.match(r"^rediss?://[^\s/]+", value):
        raise ValueError(f"{value!r} is not a redis:// or rediss:// URL")
    return value


def _redis_password(value: str) -> str | None:
    # The messages never show the value: it is a secret.
    value = value.strip()
    if not value:
        return None
    if not value.isprintable() or any(character.isspace() for character in value):
        raise ValueError("must be printable characters without spaces")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubscriptionSettings(_Section):
    """Live changes over WebSocket, and how they reach every instance."""

    # Unset: one instance, changes fan out in-process. redis://...: through Redis pub/sub.
    broadcast_url: str | None = _env("BROADCAST_URL", _redis_url, None)
    per_connection: int = _env("SUBSCRIPTIONS_PER_CONNECTION", _positive(int), 10)
    connections_per_user: int = _env("SUBSCRIPTION_CONNECTIONS_PER_USER", _positive(int), 10)
    init_timeout_seconds: float = _env("SUBSCRIPTION_INIT_TIMEOUT_SECONDS", _positive(float), 10.0)
    max_message_bytes: int = _env("SUBSCRIPTION_MAX_MESSAGE_BYTES", _positive(int), 64 * 1024)
    # A publish lost between commit and fan-out still reaches subscribers within this bound:
    # each subscription also reads the log this often.
    poll_seconds: float = _env("SUBSCRIPTION_POLL_SECONDS", _positive(float), 15.0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RateLimitSettings(_Section):
    """Per-user budgets (token buckets: a rate per minute, and a burst spent at once), and where
    they are kept (domain/ratelimit.py)."""

    # Unset: each process keeps its own buckets (the dev stack). redis://...: one budget per
    # user across every instance sharing that Redis (or Valkey).
    url: str | None = _env("RATE_LIMIT_URL", _redis_url, None)
    # A query, or a subscription's start.
    reads_per_minute: int = _env("RATE_LIMIT_READS_PER_MINUTE", _positive(int), 600)
    reads_burst: int = _env("RATE_LIMIT_READS_BURST", _positive(int), 100)
    # Each root field of a mutation; each REST write.
    writes_per_minute: int = _env("RATE_LIMIT_WRITES_PER_MINUTE", _positive(int), 120)
    writes_burst: int = _env("RATE_LIMIT_WRITES_BURST", _positive(int), 30)
    # Each delta of an answer being streamed: several a second while it is generated.
    appends_per_minute: int = _env("RATE_LIMIT_APPENDS_PER_MINUTE", _positive(int), 1200)
    appends_burst: int = _env("RATE_LIMIT_APPENDS_BURST", _positive(int), 200)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Settings(_Section):
    dynamodb: DynamoDBSettings = _section(DynamoDBSettings)
    cognito: CognitoSettings = _section(CognitoSettings)
    limits: InputLimits = _section(InputLimits, defaults=True)
    retention: RetentionSettings = _section(RetentionSettings, defaults=True)
    subscriptions: SubscriptionSettings = _section(SubscriptionSettings, defaults=True)
    streaming: StreamingSettings = _section(StreamingSettings, defaults=True)
    observability: ObservabilitySettings = _section(ObservabilitySettings, defaults=True)
    content: ContentSettings = _section(ContentSettings, defaults=True)
    rate_limits: RateLimitSettings = _section(RateLimitSettings, defaults=True)

    # Shedding: requests served at once by one process; past them a request waits this long
    # for a place, then is answered 503 before its body is read. Unset: the DynamoDB pool's
    # size (see concurrency_limit).
    max_concurrent_requests: int | None = _env("MAX_CONCURRENT_REQUESTS", _positive(int), None)
    admission_wait_seconds: float = _env("ADMISSION_WAIT_SECONDS", _non_negative_float, 0.5)

    # GraphQL
    graphiql_enabled: bool = _env("GRAPHIQL_ENABLED", _bool, False)
    introspection_enabled: bool = _env("INTROSPECTION_ENABLED", _bool, False)
    max_query_depth: int = _env("MAX_QUERY_DEPTH", _positive(int), 8)
    max_aliases: int = _env("MAX_ALIASES", _positive(int), 15)
    max_tokens: int = _env("MAX_QUERY_TOKENS", _positive(int), 2000)
    max_query_bytes: int = _env("MAX_QUERY_BYTES", _positive(int), 16 * 1024)
    # Unset: room for the largest content a message may have, JSON-escaped (see max_body_bytes).
    body_limit: int | None = _env("MAX_BODY_BYTES", _positive(int), None)
    cors_allow_origins: tuple[str, ...] = _env("CORS_ALLOW_ORIGINS", _csv, ())
    graphql_document_cache_size: int = _env("GRAPHQL_DOCUMENT_CACHE_SIZE", _non_negative_int, 512)
    # Trusted documents: the service's own manifest (schema/operations/) is always loaded;
    # these manifests too (a client build's, an older app release's still in use), by path.
    trusted_documents_manifests: tuple[str, ...] = _env("TRUSTED_DOCUMENTS_MANIFESTS", _csv, ())
    # Recommended in production when the only clients are your own apps: any other document,
    # introspection included, is refused before it is parsed.
    trusted_documents_only: bool = _env("TRUSTED_DOCUMENTS_ONLY", _bool, False)
    # Cursors carry an HMAC so a tampered one is refused; isolation never rests on it, because
    # every query is scoped to the caller whatever the cursor says.
    cursor_secret: str = _env("CURSOR_SECRET", _text, "")
    # The password of each Redis URL below that carries none (an ElastiCache AUTH token, or an
    # RBAC user's password with the user named in the URL): a secret store can then hand it
    # over on its own (ECS injects it from Secrets Manager) while the URL stays plain config.
    redis_auth_token: str | None = _env("REDIS_AUTH_TOKEN", _redis_password, None, secret=True)

    # Full garbage collections walk every live object; freezing the startup objects (modules,
    # the schema) keeps those pauses short under load.
    gc_freeze_after_startup: bool = _env("GC_FREEZE_AFTER_STARTUP", _bool, True)

    def __post_init__(self) -> None:
        if self.redis_auth_token is None:
            return
        urls = {variable: url for variable, url in self.redis_urls.items() if url is not None}
        if not urls:
            raise SettingsError(
                "REDIS_AUTH_TOKEN", f"is set, but no Redis URL is ({', '.join(self.redis_urls)})"
            )
        for variable, url in urls.items():
            if urlsplit(url).password is not None:
                raise SettingsError(
                    variable, "carries a password and REDIS_AUTH_TOKEN is set: give one of the two"
                )

    @property
    def redis_urls(self) -> dict[str, str | None]:
        """Every setting that names a Redis (or Valkey), by variable; REDIS_AUTH_TOKEN is the
        password of each."""
        return {
            "BROADCAST_URL": self.subscriptions.broadcast_url,
            "RATE_LIMIT_URL": self.rate_limits.url,
        }

    @property
    def concurrency_limit(self) -> int:
        """MAX_CONCURRENT_REQUESTS, or as many as the DynamoDB pool has connections: each
        admitted request then finds one for its first call instead of queueing inside the HTTP
        client's pool, where no one sees the queue and nothing bounds it; and a 2-core process
        is busy on its CPU (2 to 9 ms a request) well before that many are in flight, so more
        would only make each one wait longer."""
        if self.max_concurrent_requests is not None:
            return self.max_concurrent_requests
        return self.dynamodb.max_pool_connections

    @property
    def content_limit(self) -> int:
        """The largest message content accepted: MAX_CONTENT_BYTES, up to what fits in an item
        when there is no content bucket."""
        if self.content.bucket is None:
            return min(self.limits.max_content_bytes, INLINE_CONTENT_BYTES)
        return self.limits.max_content_bytes

    @property
    def max_body_bytes(self) -> int:
        """The largest request body: MAX_BODY_BYTES, or room for the largest content escaped
        (JSON can double it) and the rest of a request."""
        if self.body_limit is not None:
            return self.body_limit
        return max(1024 * 1024, 2 * self.content_limit + 64 * 1024)

    @property
    def effective_cursor_secret(self) -> bytes:
        secret = self.cursor_secret or f"{self.cognito.user_pool_id}/{self.dynamodb.table_name}"
        return secret.encode()
