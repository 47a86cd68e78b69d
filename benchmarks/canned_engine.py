"""A DynamoDB endpoint in its own process that counts every request, and can answer from memory.

`python -m benchmarks.canned_engine [--upstream URL] [--load FILE]` prints `READY <url>`.

- forward mode (needs --upstream): each request goes to the real engine (moto), and its answer
  is recorded, keyed by X-Amz-Target plus a hash of the request body.
- replay mode: each request is answered from that recording, so the engine costs next to
  nothing and the service's own cost is what a load run measures. A request never seen (a write
  carries fresh ids and timestamps) gets the last successful answer recorded for the same item
  key (UpdateItem's ALL_NEW attributes), or else for the same operation (TransactWriteItems
  `{}`, BatchWriteItem with nothing unprocessed). A BatchGetItem never seen (a write's first
  read names the new message's idempotency marker) is answered item by item: every item any
  BatchGetItem returned, and no item for a key never seen (a fresh id's marker does not exist).
  `replay` in the counts says how many answers were exact, fallbacks or misses (a miss is a 400
  error, so it cannot go unnoticed).

In both modes requests are counted, and grouped into waves: a request that arrives while
another is in flight joins its wave, so sequential round trips show as separate waves.
Control endpoints live under /__bench__/ (mode, reset, counts, save).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import dataclasses
import hashlib
import json
import signal
import zlib
from pathlib import Path
from typing import Any, Literal

import aiohttp
from aiohttp import web

from benchmarks.children import loopback_listener

Mode = Literal["forward", "replay"]

# Operations addressing one item by its key: a miss falls back to the same item's last answer.
_ITEM_OPERATIONS = frozenset({"GetItem", "UpdateItem", "DeleteItem", "PutItem"})
# Headers of a DynamoDB answer that botocore reads (x-amz-crc32 is checked against the body).
_ANSWER_HEADERS = ("Content-Type", "x-amz-crc32", "x-amzn-RequestId")
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_MISS_BODY = json.dumps(
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException",
        "message": "canned engine: no recorded answer for this request",
    }
).encode()
WAVE_DETAIL_LIMIT = 2000


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "body": base64.b64encode(self.body).decode(),
            "headers": [list(pair) for pair in self.headers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Answer:
        return cls(
            status=int(data["status"]),
            body=base64.b64decode(data["body"]),
            headers=tuple((str(k), str(v)) for k, v in data["headers"]),
        )


def operation_of(target: str) -> str:
    return target.rpartition(".")[2] or "?"


# Values storage fills in from the clock: a read that carries one (the conversation list's
# `:now`, which hides expired temporary conversations) is still the same read a second later.
_CLOCK_VALUES = frozenset({":now"})


def exact_key(target: str, body: bytes) -> str:
    return f"{target}|{hashlib.sha256(_without_clock(body)).hexdigest()}"


def _without_clock(body: bytes) -> bytes:
    if b'":now"' not in body:
        return body
    try:
        request = json.loads(body)
        values = request["ExpressionAttributeValues"]
        for name in _CLOCK_VALUES & values.keys():
            values[name] = "clock"
    except (ValueError, KeyError, TypeError, AttributeError):
        return body
    return json.dumps(request, sort_keys=True).encode()


def item_key(target: str, body: bytes) -> str | None:
    if operation_of(target) not in _ITEM_OPERATIONS:
        return None
    try:
        request = json.loads(body)
        return f"{target}|{request['TableName']}|{json.dumps(request['Key'], sort_keys=True)}"
    except (ValueError, KeyError, TypeError):
        return None


def _batch_keys(body: bytes) -> dict[str, list[dict[str, Any]]] | None:
    """BatchGetItem's keys by table; None if the body is not a BatchGetItem request."""
    try:
        request = json.loads(body)
        return {table: list(wanted["Keys"]) for table, wanted in request["RequestItems"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _stored_key(table: str, key: dict[str, Any]) -> str:
    return f"{table}|{json.dumps(key, sort_keys=True)}"


@dataclasses.dataclass
class Recording:
    exact: dict[str, Answer] = dataclasses.field(default_factory=dict)
    by_item: dict[str, Answer] = dataclasses.field(default_factory=dict)
    by_operation: dict[str, Answer] = dataclasses.field(default_factory=dict)
    # Every item a BatchGetItem returned, by table and key.
    batch_items: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def record(self, target: str, body: bytes, answer: Answer) -> None:
        self.exact[exact_key(target, body)] = answer
        if answer.status != 200:
            return
        key = item_key(target, body)
        if key is not None:
            self.by_item[key] = answer
        self.by_operation[target] = answer
        if operation_of(target) == "BatchGetItem":
            self._record_batch(body, answer)

    def _record_batch(self, body: bytes, answer: Answer) -> None:
        keys = _batch_keys(body)
        try:
            responses = json.loads(answer.body)["Responses"]
        except (ValueError, KeyError, TypeError):
            return
        for table, wanted in (keys or {}).items():
            names = set(wanted[0]) if wanted else set()
            for item in responses.get(table, []):
                if names <= item.keys():
                    self.batch_items[_stored_key(table, {n: item[n] for n in names})] = item

    def answer(self, target: str, body: bytes) -> tuple[Answer | None, str]:
        found = self.exact.get(exact_key(target, body))
        if found is not None:
            return found, "exact"
        if operation_of(target) == "BatchGetItem":
            composed = self._compose_batch(body)
            if composed is not None:
                return composed, "fallback"
        key = item_key(target, body)
        found = None if key is None else self.by_item.get(key)
        if found is None:
            found = self.by_operation.get(target)
        return found, "fallback" if found is not None else "miss"

    def _compose_batch(self, body: bytes) -> Answer | None:
        keys = _batch_keys(body)
        if keys is None:
            return None
        responses = {
            table: [
                self.batch_items[stored]
                for key in wanted
                if (stored := _stored_key(table, key)) in self.batch_items
            ]
            for table, wanted in keys.items()
        }
        payload = json.dumps({"Responses": responses, "UnprocessedKeys": {}}).encode()
        headers = (
            ("Content-Type", "application/x-amz-json-1.0"),
            # botocore checks the body against it.
            ("x-amz-crc32", str(zlib.crc32(payload))),
        )
        return Answer(200, payload, headers)

    def to_json(self) -> dict[str, Any]:
        return {
            name: {key: answer.to_json() for key, answer in table.items()}
            for name, table in (
                ("exact", self.exact),
                ("by_item", self.by_item),
                ("by_operation", self.by_operation),
            )
        } | {"batch_items": self.batch_items}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Recording:
        def load(name: str) -> dict[str, Answer]:
            return {key: Answer.from_json(value) for key, value in data.get(name, {}).items()}

        return cls(
            exact=load("exact"),
            by_item=load("by_item"),
            by_operation=load("by_operation"),
            batch_items=dict(data.get("batch_items", {})),
        )


@dataclasses.dataclass
class WaveCounter:
    operations: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    wave_count: int = 0
    waves: list[list[str]] = dataclasses.field(default_factory=list)
    in_flight: int = 0
    outcomes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def started(self, operation: str) -> None:
        self.operations[operation] += 1
        if self.in_flight == 0:
            self.wave_count += 1
            if len(self.waves) < WAVE_DETAIL_LIMIT:
                self.waves.append([])
        if self.wave_count <= WAVE_DETAIL_LIMIT:
            self.waves[-1].append(operation)
        self.in_flight += 1

    def finished(self) -> None:
        self.in_flight = max(0, self.in_flight - 1)

    def reset(self) -> None:
        self.operations.clear()
        self.outcomes.clear()
        self.wave_count = 0
        self.waves = []

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": sum(self.operations.values()),
            "waves": self.wave_count,
            "operations": dict(self.operations),
            "wave_detail": self.waves,
            "replay": dict(self.outcomes),
        }


class Engine:
    def __init__(self, *, upstream: str | None, recording: Recording) -> None:
        self.upstream = upstream
        self.mode: Mode = "forward" if upstream else "replay"
        self.recording = recording
        self.counter = WaveCounter()
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self.upstream:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256),
                timeout=aiohttp.ClientTimeout(total=600),
                auto_decompress=False,
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def dynamodb(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        body = await request.read()
        self.counter.started(operation_of(target))
        try:
            if self.mode == "forward":
                answer = await self._forward(request, body)
                self.recording.record(target, body, answer)
            else:
                found, outcome = self.recording.answer(target, body)
                self.counter.outcomes[outcome] += 1
                answer = found or Answer(
                    400, _MISS_BODY, (("Content-Type", "application/x-amz-json-1.0"),)
                )
        finally:
            self.counter.finished()
        return web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))

    async def _forward(self, request: web.Request, body: bytes) -> Answer:
        if self._session is None or self.upstream is None:
            raise web.HTTPServiceUnavailable(text="no upstream engine to forward to")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        async with self._session.post(self.upstream + "/", data=body, headers=headers) as answer:
            payload = await answer.read()
            kept = tuple(
                (name, answer.headers[name]) for name in _ANSWER_HEADERS if name in answer.headers
            )
            return Answer(answer.status, payload, kept)

    # --- control ---------------------------------------------------------------------------

    async def set_mode(self, request: web.Request) -> web.Response:
        mode = request.query.get("mode", "")
        if mode not in ("forward", "replay") or (mode == "forward" and not self.upstream):
            raise web.HTTPBadRequest(text=f"cannot switch to mode {mode!r}")
        self.mode = "forward" if mode == "forward" else "replay"
        return web.json_response({"mode": self.mode})

    async def reset(self, request: web.Request) -> web.Response:
        self.counter.reset()
        return web.json_response({"reset": True})

    async def counts(self, request: web.Request) -> web.Response:
        return web.json_response(
            {**self.counter.to_json(), "mode": self.mode, "recorded": len(self.recording.exact)}
        )

    async def save(self, request: web.Request) -> web.Response:
        path = Path((await request.json())["path"])
        await asyncio.to_thread(path.write_text, json.dumps(self.recording.to_json()))
        return web.json_response({"saved": str(path), "answers": len(self.recording.exact)})


def build_app(engine: Engine) -> web.Application:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_post("/__bench__/mode", engine.set_mode)
    app.router.add_post("/__bench__/reset", engine.reset)
    app.router.add_get("/__bench__/counts", engine.counts)
    app.router.add_post("/__bench__/save", engine.save)
    app.router.add_post("/", engine.dynamodb)
    return app


async def serve(upstream: str | None, recording: Recording) -> None:
    engine = Engine(upstream=upstream, recording=recording)
    await engine.start()
    runner = web.AppRunner(build_app(engine), access_log=None, handle_signals=False)
    await runner.setup()
    listener = loopback_listener()
    site = web.SockSite(runner, listener)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print(f"READY http://127.0.0.1:{listener.getsockname()[1]}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", help="the engine to forward to and record from")
    parser.add_argument("--load", type=Path, help="a recording saved by /__bench__/save")
    args = parser.parse_args()
    recording = Recording.from_json(json.loads(args.load.read_text())) if args.load else Recording()
    asyncio.run(serve(args.upstream.rstrip("/") if args.upstream else None, recording))


if __name__ == "__main__":
    main()
