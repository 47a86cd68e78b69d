"""A fault-injecting HTTP proxy to put between a DynamoDB client and a real endpoint.

Real engines do not throttle, fail, stall, drop connections or leave batch work unprocessed on
demand; this proxy does, scripted per DynamoDB operation (named by the X-Amz-Target header),
and forwards everything else unchanged. Request bodies are not re-signed: that is fine for
local engines, which do not verify signatures.

    async with FaultProxy(upstream_url) as proxy:
        proxy.fail("TransactWriteItems", status=500, times=None)   # until cleared
        ...                                                         # client endpoint: proxy.url
        held = proxy.hold("Query")                                  # until released
        await held.arrived.wait(); ...; held.release()
        proxy.clear()
        await proxy.settled()   # every request answered, or dropped by a client that gave up

A test that must act at an exact point of a request's life holds it and waits for that:

        proxy.delay("PutItem", seconds=600, forward_first=True)  # stored, not yet answered
        await proxy.until(lambda: proxy.holding > 0)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import socket
import struct
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Final, TypeAlias

import aiohttp
from aiohttp import web

_ERROR_PREFIX: Final = "com.amazonaws.dynamodb.v20120810#"
_JSON: Final = "application/x-amz-json-1.0"
# Hop-by-hop and framing headers: the proxy frames its own requests and responses.
_NOT_FORWARDED: Final = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "keep-alive", "accept-encoding"}
)
ANY: Final = "*"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Fail:
    """Answer with an error instead of forwarding (or after forwarding, if `forward_first`);
    `fields` are more members of the error's body (a cancellation's CancellationReasons)."""

    status: int
    error_type: str
    message: str
    forward_first: bool = False
    fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Delay:
    """Hold the response for `seconds`; with `forward_first` the engine applies the request."""

    seconds: float
    forward_first: bool = False


class Held:
    """What a `hold` rule holds: `arrived` is set once it holds a request, and `release()`
    lets every request it holds (and will hold) go on to the engine."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()


@dataclasses.dataclass(frozen=True, kw_only=True)
class Hold:
    """Hold the request, unforwarded, until the test releases it; then forward it."""

    held: Held


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reset:
    """Drop the connection with a TCP reset instead of answering."""

    forward_first: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class LeaveUnprocessed:
    """Forward only the first `keep` keys/items of a batch; report the rest as unprocessed."""

    keep: int


Fault: TypeAlias = Fail | Delay | Hold | Reset | LeaveUnprocessed


@dataclasses.dataclass(kw_only=True)
class _Rule:
    operation: str
    fault: Fault
    remaining: int | None  # None: until cleared
    skip: int  # matching requests to let through before the fault starts

    def matches(self, operation: str) -> bool:
        return self.operation in (operation, ANY) and self.remaining != 0

    def take(self) -> Fault | None:
        if self.skip:
            self.skip -= 1
            return None
        if self.remaining is not None:
            self.remaining -= 1
        return self.fault


class FaultProxy:
    """An aiohttp server on 127.0.0.1 (a free port) forwarding to `upstream` with scripted faults.

    `requests` counts every request received per operation; `forwarded` counts those the
    engine saw. Each rule hits `times` matching requests (None: until `clear()`), after
    letting `after` of them through; rules apply in the order they were added, and the first
    one not used up decides, so `fail(...); delay(...)` fails once and then delays.
    """

    def __init__(self, upstream: str) -> None:
        self._upstream = upstream.rstrip("/")
        self._rules: list[_Rule] = []
        self.requests: Counter[str] = Counter()
        self.forwarded: Counter[str] = Counter()
        # Responses a Delay holds right now (after forwarding, with `forward_first`).
        self.holding = 0
        # Set, and replaced, whenever a count above moves: what `until` waits on.
        self._moved = asyncio.Event()
        # The request ids of the errors it answered with, oldest first.
        self.error_ids: list[str] = []
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None
        # Held responses end early on close, so shutting down never waits for a Delay.
        self._closing = asyncio.Event()
        self._handling = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the proxy is not running")
        return self._url

    # --- scripting

    def fail(
        self,
        operation: str,
        *,
        status: int = 400,
        error_type: str = "ProvisionedThroughputExceededException",
        message: str = "injected fault",
        times: int | None = 1,
        after: int = 0,
        forward_first: bool = False,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        fault = Fail(
            status=status,
            error_type=error_type,
            message=message,
            forward_first=forward_first,
            fields=dict(fields or {}),
        )
        self._add(operation, fault, times, after)

    def throttle(self, operation: str, *, times: int | None = 1, after: int = 0) -> None:
        self.fail(
            operation,
            error_type="ThrottlingException",
            message="Rate of requests exceeds the allowed throughput.",
            times=times,
            after=after,
        )

    def server_error(
        self, operation: str, *, status: int = 500, times: int | None = 1, after: int = 0
    ) -> None:
        error_type = "ServiceUnavailable" if status == 503 else "InternalServerError"
        self.fail(
            operation,
            status=status,
            error_type=error_type,
            message="injected server error",
            times=times,
            after=after,
        )

    def delay(
        self,
        operation: str,
        *,
        seconds: float,
        times: int | None = 1,
        after: int = 0,
        forward_first: bool = False,
    ) -> None:
        self._add(operation, Delay(seconds=seconds, forward_first=forward_first), times, after)

    def hold(self, operation: str, *, times: int | None = 1, after: int = 0) -> Held:
        """Hold matching requests until `release()` on what this returns: a request in
        flight for as long as the test wants, decided by events rather than a duration."""
        held = Held()
        self._add(operation, Hold(held=held), times, after)
        return held

    def reset_connection(
        self, operation: str, *, times: int | None = 1, after: int = 0, forward_first: bool = False
    ) -> None:
        self._add(operation, Reset(forward_first=forward_first), times, after)

    def leave_unprocessed(
        self, operation: str, *, keep: int, times: int | None = 1, after: int = 0
    ) -> None:
        if operation not in ("BatchGetItem", "BatchWriteItem"):
            raise ValueError("only BatchGetItem and BatchWriteItem leave work unprocessed")
        self._add(operation, LeaveUnprocessed(keep=keep), times, after)

    def clear(self) -> None:
        """Stop injecting: the fault has cleared. Counts are kept."""
        self._rules.clear()

    def reset(self) -> None:
        """No rules and zero counts, as freshly started."""
        self._rules.clear()
        self.requests.clear()
        self.forwarded.clear()
        self.error_ids.clear()

    def _add(self, operation: str, fault: Fault, times: int | None, after: int) -> None:
        self._rules.append(_Rule(operation=operation, fault=fault, remaining=times, skip=after))

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait until `condition` (of the counts) holds; it is checked again each time one moves."""
        while not condition():
            await self._moved.wait()

    def _move(self) -> None:
        self._moved.set()
        self._moved = asyncio.Event()

    async def settled(self) -> None:
        """Wait until no request is in the proxy's hands: each one was answered, or abandoned
        because its client gave up (aiohttp cancels the handler then, a held one unforwarded)."""
        await self._idle.wait()

    def _take(self, operation: str) -> Fault | None:
        for rule in self._rules:
            if rule.matches(operation):
                return rule.take()
        return None

    # --- lifecycle

    async def __aenter__(self) -> FaultProxy:
        self._session = aiohttp.ClientSession(auto_decompress=False)
        # handler_cancellation: a client that gave up (read timeout) cancels the held handler.
        server = web.Server(self._handle, handler_cancellation=True)
        self._runner = web.ServerRunner(server, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        self._url = None

    # --- request handling

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self._handling += 1
        self._idle.clear()
        try:
            return await self._answer(request)
        finally:
            self._handling -= 1
            if not self._handling:
                self._idle.set()

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        operation = request.headers.get("X-Amz-Target", "").rpartition(".")[2] or request.path
        self.requests[operation] += 1
        self._move()
        body = await request.read()
        match self._take(operation):
            case None:
                return await self._forward(request, operation, body)
            case Fail() as fail:
                if fail.forward_first:
                    await self._forward(request, operation, body)
                return self._error(fail.status, fail.error_type, fail.message, fail.fields)
            case Delay() as delay:
                response = (
                    await self._forward(request, operation, body) if delay.forward_first else None
                )
                self.holding += 1
                self._move()
                try:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), delay.seconds)
                finally:
                    self.holding -= 1
                    self._move()
                if response is None and self._closing.is_set():
                    return self._error(503, "ServiceUnavailable", "the fault proxy is closing")
                return response or await self._forward(request, operation, body)
            case Hold(held=held):
                held.arrived.set()
                released = asyncio.ensure_future(held.released.wait())
                closing = asyncio.ensure_future(self._closing.wait())
                try:
                    await asyncio.wait({released, closing}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    released.cancel()
                    closing.cancel()
                if not held.released.is_set():
                    return self._error(503, "ServiceUnavailable", "the fault proxy is closing")
                return await self._forward(request, operation, body)
            case Reset() as reset:
                if reset.forward_first:
                    await self._forward(request, operation, body)
                _reset_connection(request)
                # The connection is gone; aiohttp discards whatever is returned here.
                return web.Response(status=500)
            case LeaveUnprocessed(keep=keep):
                return await self._partial(request, operation, body, keep)

    def _error(
        self, status: int, error_type: str, message: str, fields: Mapping[str, Any] | None = None
    ) -> web.Response:
        """An error as DynamoDB sends one, with a request id of its own (kept in `error_ids`)."""
        document = {"__type": f"{_ERROR_PREFIX}{error_type}", "message": message, **(fields or {})}
        request_id = f"fault-{uuid.uuid4().hex}"
        self.error_ids.append(request_id)
        response = _json_response(status, document)
        response.headers["x-amzn-RequestId"] = request_id
        return response

    async def _forward(self, request: web.BaseRequest, operation: str, body: bytes) -> web.Response:
        status, headers, payload = await self._send(request, operation, body)
        return web.Response(status=status, headers=headers, body=payload)

    async def _send(
        self, request: web.BaseRequest, operation: str, body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED}
        headers["Accept-Encoding"] = "identity"  # the batch rewrite needs plain JSON
        self.forwarded[operation] += 1
        self._move()
        async with self._session.request(
            request.method, self._upstream + request.path_qs, headers=headers, data=body
        ) as upstream:
            payload = await upstream.read()
            kept = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in _NOT_FORWARDED | {"date", "server"}
            }
            return upstream.status, kept, payload

    async def _partial(
        self, request: web.BaseRequest, operation: str, body: bytes, keep: int
    ) -> web.Response:
        document = json.loads(body)
        sent, held = _split_batch(operation, document["RequestItems"], keep)
        if not sent:
            # DynamoDB rejects an empty batch, so answer for the engine: nothing processed.
            answer: dict[str, Any] = {"Responses": {name: [] for name in held}}
        else:
            status, _, payload = await self._send(
                request, operation, json.dumps({**document, "RequestItems": sent}).encode()
            )
            if status != 200:
                return web.Response(status=status, body=payload, content_type=_JSON)
            answer = json.loads(payload)
        unprocessed = "UnprocessedKeys" if operation == "BatchGetItem" else "UnprocessedItems"
        answer[unprocessed] = _merge(operation, answer.get(unprocessed) or {}, held)
        if operation == "BatchWriteItem":
            answer.pop("Responses", None)
        return _json_response(200, answer)


def _split_batch(
    operation: str, request_items: Mapping[str, Any], keep: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what to forward, what to report unprocessed), keeping `keep` entries in total."""
    sent: dict[str, Any] = {}
    held: dict[str, Any] = {}
    budget = keep
    for table, spec in request_items.items():
        entries = spec["Keys"] if operation == "BatchGetItem" else spec
        first, rest = entries[:budget], entries[budget:]
        budget -= len(first)
        for target, part in ((sent, first), (held, rest)):
            if part:
                target[table] = {**spec, "Keys": part} if operation == "BatchGetItem" else part
    return sent, held


def _merge(operation: str, left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    merged = dict(left)
    for table, spec in right.items():
        if table not in merged:
            merged[table] = spec
        elif operation == "BatchGetItem":
            merged[table] = {**spec, "Keys": merged[table]["Keys"] + spec["Keys"]}
        else:
            merged[table] = merged[table] + spec
    return merged


def _json_response(status: int, document: Any) -> web.Response:
    payload = json.dumps(document).encode()
    # botocore checks DynamoDB's CRC32 header; a rewritten body needs its own.
    headers = {"x-amz-crc32": str(zlib.crc32(payload) & 0xFFFFFFFF), "Content-Type": _JSON}
    return web.Response(status=status, body=payload, headers=headers)


def _reset_connection(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        # SO_LINGER with a zero timeout turns close() into a TCP RST.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
