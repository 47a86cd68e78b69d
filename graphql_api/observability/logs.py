"""Log lines that never carry a secret or a user's words: JSON for machines, console for people.

What keeps tokens, message content and titles out, whatever a log call passes:
- Exceptions are written as their type and frames only, never their message: an exception's
  text is untrusted (botocore's ParamValidationError quotes the value it refused, a KeyError
  its key), and a traceback needs the frames, not the data. A request DynamoDB or S3 refused
  (StorageRejectedError) is the exception: its code, operation, table, request id and item
  count are written (as `storage_error` in JSON), and never the engine's message.
- Every message is scrubbed of what looks like a bearer token, a JWT, an Authorization header
  or an AWS signature before it is written.
- The AWS SDK and HTTP client loggers are held at WARNING whatever LOG_LEVEL says, and a
  handler filter drops anything below that from them even if someone lowers their level at
  run time: botocore's DEBUG lines hold whole request bodies and signed headers.
- uvicorn's access log is off (it writes query strings); the middleware's one line per request
  replaces it, and that line is built from an allow-list of fields.

`logging_config(settings)` is a dictConfig: `serve` and `dev` hand it to uvicorn (which applies
it in every worker process), the Lambda handler applies it at cold start.
"""

from __future__ import annotations

import json
import logging
import re
import time
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final, TextIO

from graphql_api.errors import StorageRejectedError
from graphql_api.settings import ObservabilitySettings

from . import record

ACCESS_LOGGER: Final = "graphql_api.access"

# Loggers that hold request bodies, signed headers or query strings below WARNING.
_NOISY: Final = (
    "botocore",
    "aiobotocore",
    "boto3",
    "urllib3",
    "s3transfer",
    "aiohttp",
    "hpack",
    "httpcore",
    "httpx",
)

_SCRUBBED: Final = "[scrubbed]"
_SECRETS: Final = (
    # A JWT (header.payload.signature, base64url, the header always starting eyJ).
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"),
    re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"),
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*)['\"]?[^'\"\r\n]+"),
    re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*)['\"]?[^\s'\",;]+"),
    re.compile(r"(?i)(credential=)[^\s,;\"']+"),
    re.compile(r"(?i)(signature=)[0-9a-f]+"),
)


def scrub(text: str) -> str:
    """`text` with anything shaped like a credential replaced."""
    if not text:
        return text
    for pattern in _SECRETS:
        if pattern.groups:
            text = pattern.sub(lambda match: match.group(1) + _SCRUBBED, text)
        else:
            text = pattern.sub(_SCRUBBED, text)
    return text


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and what led to it, as a traceback shows them, newest first."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        chain.append(current)
        seen.add(id(current))
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    return chain


def safe_traceback(exc_info: ExcInfo | tuple[None, None, None]) -> str | None:
    """The exception chain as types and frames; no exception's message is included, except
    a storage refusal's summary, which is built from fields that hold nothing of the request."""
    error = exc_info[1]
    if error is None:
        return None
    parts = []
    for position, exc in enumerate(reversed(_chain(error))):
        if position:
            parts.append("The above exception led to:")
        parts.append("Traceback (most recent call last):")
        for frame in traceback.extract_tb(exc.__traceback__):
            parts.append(f'  File "{frame.filename}", line {frame.lineno}, in {frame.name}')
        kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
        if isinstance(exc, StorageRejectedError):
            parts.append(f"{kind}: {exc.summary()}")
        else:
            parts.append(f"{kind} (message not logged)")
    return "\n".join(parts)


def storage_rejection(exc_info: ExcInfo | tuple[None, None, None]) -> dict[str, str | int] | None:
    """What an operator needs of a request DynamoDB or S3 refused, wherever in the chain."""
    error = exc_info[1]
    if error is None:
        return None
    for exc in _chain(error):
        if isinstance(exc, StorageRejectedError):
            return exc.details()
    return None


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then the fields an
    access line carries (`extra={"fields": {...}}`), then `exception` (types and frames) and,
    for a request the storage refused, `storage_error` (StorageRejectedError.details)."""

    def format(self, entry: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(entry.created),
            "level": entry.levelname.lower(),
            "logger": entry.name,
            "message": scrub(entry.getMessage()),
        }
        request_id = getattr(entry, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        fields = getattr(entry, "fields", None)
        if isinstance(fields, Mapping):
            line.update(fields)
        if entry.exc_info:
            line["exception"] = safe_traceback(entry.exc_info)
            rejection = storage_rejection(entry.exc_info)
            if rejection is not None:
                line["storage_error"] = rejection
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"), default=str)


class ConsoleFormatter(logging.Formatter):
    """A line a person reads in a terminal; the same guarantees as JsonFormatter."""

    def format(self, entry: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(entry.created))
        text = f"{clock}.{int(entry.created % 1 * 1000):03d} {entry.levelname:<7} "
        fields = getattr(entry, "fields", None)
        if isinstance(fields, Mapping) and entry.name == ACCESS_LOGGER:
            text += _access_summary(fields)
        else:
            text += f"{entry.name}: {scrub(entry.getMessage())}"
            request_id = getattr(entry, "request_id", None)
            if request_id:
                text += f" [{request_id}]"
        if entry.exc_info:
            text += "\n" + (safe_traceback(entry.exc_info) or "")
        return text


def _access_summary(fields: Mapping[str, Any]) -> str:
    what = fields.get("operation_name") or fields.get("route") or fields.get("path")
    kind = fields.get("operation_type")
    # An operation over a WebSocket has a protocol and an outcome, no method or status.
    protocol = fields.get("protocol")
    text = f"WS {protocol} " if protocol else f"{fields.get('method')} "
    text += f"{fields.get('path')} "
    text += f"{kind} {what} " if kind else ""
    answer = fields.get("outcome") if protocol else fields.get("status")
    text += f"-> {answer} in {fields.get('duration_ms')} ms"
    if fields.get("error_codes"):
        text += f" errors={','.join(fields['error_codes'])}"
    if fields.get("dynamodb_requests"):
        text += (
            f" | dynamodb {fields['dynamodb_requests']} req,"
            f" {fields.get('read_capacity_units')} RCU, {fields.get('write_capacity_units')} WCU"
        )
    if fields.get("user_hash"):
        text += f" | user {fields['user_hash']}"
    return text + f" [{fields.get('request_id')}]"


class RequestContext(logging.Filter):
    """Stamps each line with the id of the request it was written during."""

    def filter(self, entry: logging.LogRecord) -> bool:
        current = record.current()
        if current is not None and not hasattr(entry, "request_id"):
            entry.request_id = current.request_id
        return True


class QuietLibraries(logging.Filter):
    """Drops the AWS SDK's and HTTP clients' lines below WARNING, however their level is set."""

    def filter(self, entry: logging.LogRecord) -> bool:
        if entry.levelno >= logging.WARNING:
            return True
        name = entry.name
        return not any(name == noisy or name.startswith(noisy + ".") for noisy in _NOISY)


def formatter(format_name: str) -> logging.Formatter:
    return ConsoleFormatter() if format_name == "console" else JsonFormatter()


def build_handler(settings: ObservabilitySettings, stream: TextIO) -> logging.Handler:
    """The one handler every log line goes through (tests attach it to capture lines)."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(settings.log_format))
    handler.addFilter(RequestContext())
    handler.addFilter(QuietLibraries())
    return handler


def logging_config(
    settings: ObservabilitySettings, *, stream: str | TextIO = "ext://sys.stderr"
) -> dict[str, Any]:
    """The process's logging, as a dictConfig for uvicorn's `log_config` or dictConfig()."""
    levels: dict[str, dict[str, Any]] = {name: {"level": "WARNING"} for name in _NOISY}
    if settings.metrics_enabled and settings.on_lambda:
        # The request lines carry the metrics there: written whatever LOG_LEVEL is.
        levels[ACCESS_LOGGER] = {"level": "INFO"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "app": {"()": f"{__name__}.formatter", "format_name": settings.log_format},
        },
        "filters": {
            "request_context": {"()": f"{__name__}.RequestContext"},
            "quiet_libraries": {"()": f"{__name__}.QuietLibraries"},
        },
        "handlers": {
            "app": {
                "class": "logging.StreamHandler",
                "stream": stream,
                "formatter": "app",
                "filters": ["request_context", "quiet_libraries"],
            },
        },
        "root": {"level": settings.log_level, "handlers": ["app"]},
        "loggers": {
            **levels,
            "uvicorn": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": settings.log_level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        },
    }
