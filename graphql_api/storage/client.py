"""The table handle every storage function takes, the client it wraps, and error translation."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aioboto3  # type: ignore[import-untyped]
import aiohttp
from aiobotocore.config import AioConfig
from botocore.exceptions import BotoCoreError, ClientError

from graphql_api import deadline as request_deadline
from graphql_api.errors import ChatError, StorageRejectedError, UnavailableError, ValidationError
from graphql_api.observability.capacity import watch_capacity
from graphql_api.settings import DynamoDBSettings

from .fast_path import enable_fast_path, install_fast_path

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

    from .content import ContentStore
    from .records import ChangeRecord, StreamEvent
else:
    DynamoDBClient = Any

__all__ = ["ChatTable", "DynamoDBClient", "open_client", "open_table", "translate_errors"]

# Errors DynamoDB documents as transient: the request may succeed if sent again later.
_TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "LimitExceededException",
    }
)


ChangeListener = Callable[[str, "ChangeRecord"], Awaitable[None]]
# Told (user id, event) of every acknowledged append and every finish, after it is stored.
StreamListener = Callable[[str, "StreamEvent"], Awaitable[None]]


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it.

    A user's writes must commit one after another (each moves the user's change version), so
    concurrent ones in one process would only race and retry: queueing them here makes them
    take turns instead. Across processes, the version condition still decides.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, holders = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, holders + 1)
        try:
            started = time.monotonic()
            async with lock:
                if holders:
                    # Behind the user's earlier writes: their queue, not the process's load.
                    request_deadline.queued(time.monotonic() - started)
                yield
        finally:
            lock, holders = self._locks[key]
            if holders == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, holders - 1)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChatTable:
    """One DynamoDB table and the long-lived client that reaches it."""

    client: DynamoDBClient
    name: str
    # Bound on one storage call including every retry, so a caller always hears back.
    deadline: float = 10.0
    clock: Callable[[], datetime] = utc_now
    # Our own retry loops (UnprocessedKeys/Items, transaction conflicts): botocore's retries
    # do not cover a 200 response that only did part of the work.
    max_attempts: int = 8
    backoff_base: float = 0.025
    backoff_cap: float = 1.0
    # How long the change log keeps each change; older ones are gone for every reader, swept
    # or not.
    change_retention: timedelta = timedelta(days=30)
    # Told of every committed change (to reach live subscribers); best effort, the change log
    # is what readers rely on.
    listener: ChangeListener | None = None
    # Told of every stored delta and every finish (to reach messageStream readers); best
    # effort as `listener` is: the deltas in the table are what readers rely on.
    stream_listener: StreamListener | None = None
    # A streaming message with no append for this long reads as interrupted.
    stream_lease: timedelta = timedelta(seconds=30)
    # Where content too large for an item goes; None: content is never that large.
    content: ContentStore | None = None
    writers: KeyedLocks = dataclasses.field(default_factory=KeyedLocks, compare=False)

    async def backoff(self, attempt: int) -> None:
        """Full-jitter exponential backoff before retry number `attempt` (0-based)."""
        ceiling = min(self.backoff_cap, self.backoff_base * 2**attempt)
        await asyncio.sleep(random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto

    @contextlib.asynccontextmanager
    async def guard(self, *, deadline: float | None = None) -> AsyncIterator[None]:
        """Bound the enclosed calls in time and turn botocore failures into domain errors.

        The bound is `deadline` (the table's by default), or what is left of the current
        request's deadline if that is less (graphql_api.deadline)."""
        own = self.deadline if deadline is None else deadline
        try:
            async with asyncio.timeout(request_deadline.bounded(own)):
                with translate_errors(resource=self.name):
                    yield
        except TimeoutError as exc:
            raise UnavailableError("DynamoDB did not answer in time") from exc


@contextlib.contextmanager
def translate_errors(service: str = "DynamoDB", *, resource: str | None = None) -> Iterator[None]:
    """botocore's failures as domain errors; `resource` (the table or bucket) is named in the
    error an operator reads, since the engine's answer does not say which it was."""
    try:
        yield
    except ClientError as exc:
        raise error_from_client_error(exc, service=service, resource=resource) from exc
    except (BotoCoreError, aiohttp.ClientError, ConnectionError) as exc:
        raise UnavailableError(f"{service} is unreachable") from exc


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_from_client_error(
    exc: ClientError,
    *,
    service: str = "DynamoDB",
    resource: str | None = None,
    items: int | None = None,
    reasons: tuple[str, ...] = (),
) -> ChatError:
    code = error_code(exc)
    metadata = exc.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode", 0) or 0)
    if code in _TRANSIENT_CODES or code in ("SlowDown", "RequestTimeout") or status >= 500:
        return UnavailableError(f"{service} is unavailable ({code or status})")
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code == "ValidationException" and "size" in message.lower():
        return ValidationError("item", "exceeds DynamoDB's item size limit")
    return StorageRejectedError(
        service=service,
        code=code or "unknown",
        operation=exc.operation_name,
        resource=resource,
        request_id=str(metadata.get("RequestId") or "") or None,
        status=status,
        items=items,
        reasons=reasons,
    )


def client_config(
    *, max_pool_connections: int, connect_timeout: float, read_timeout: float, max_attempts: int
) -> AioConfig:
    # "standard" retries throttling, 5xx and connection errors with jittered exponential
    # backoff; our ChatTable.deadline bounds the total time those retries may take.
    return AioConfig(
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        tcp_keepalive=True,
    )


@contextlib.asynccontextmanager
async def open_table(
    settings: DynamoDBSettings,
    *,
    credentials: tuple[str, str] | None = None,
    max_pool_connections: int | None = None,
    deadline: float | None = None,
    change_retention: timedelta = timedelta(days=30),
    listener: ChangeListener | None = None,
    stream_listener: StreamListener | None = None,
    stream_lease: timedelta = timedelta(seconds=30),
    clock: Callable[[], datetime] = utc_now,
    content: ContentStore | None = None,
) -> AsyncIterator[ChatTable]:
    """The table of `settings`, on a client configured from them: the one place that does this.

    `max_pool_connections` and `deadline` override the settings for short-lived tools (the CLI,
    the dev stack's setup) that need fewer connections or more patience than a server.
    """
    config = client_config(
        max_pool_connections=max_pool_connections or settings.max_pool_connections,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        max_attempts=settings.max_attempts,
    )
    async with open_client(
        region=settings.region,
        endpoint_url=settings.endpoint_url,
        config=config,
        credentials=credentials,
        fast_path=settings.fast_path,
    ) as client:
        yield ChatTable(
            client=client,
            name=settings.table_name,
            deadline=settings.deadline if deadline is None else deadline,
            change_retention=change_retention,
            listener=listener,
            stream_listener=stream_listener,
            stream_lease=stream_lease,
            clock=clock,
            content=content,
        )


@contextlib.asynccontextmanager
async def open_client(
    *,
    region: str,
    endpoint_url: str | None,
    config: AioConfig,
    credentials: tuple[str, str] | None = None,
    fast_path: bool = True,
) -> AsyncIterator[DynamoDBClient]:
    """The app's one DynamoDB client: creating one costs ~200 ms, so open it once per process.

    `fast_path` (DYNAMODB_FAST_PATH): item operations skip botocore's generic serializing,
    signing and parsing (storage/fast_path.py); off, every call goes botocore's whole way.
    """
    session = aioboto3.Session(
        aws_access_key_id=credentials[0] if credentials else None,
        aws_secret_access_key=credentials[1] if credentials else None,
        region_name=region,
    )
    if fast_path:
        install_fast_path(session.events)
    async with session.client("dynamodb", endpoint_url=endpoint_url, config=config) as client:
        if fast_path:
            enable_fast_path(client)
        # Every call asks for its consumed capacity, counted into the current request's record.
        watch_capacity(client)
        yield client
