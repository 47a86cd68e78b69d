"""What streaming an answer costs: DynamoDB requests and write units, and an append's CPU.

    python -m benchmarks.streaming_cost     # `make bench` runs it

It writes streaming_cost.json and STREAMING_COST.md where the other benchmarks write
(benchmarks.config: docs/benchmarks/, or BENCH_OUTPUT_DIR; with BENCH_QUICK=1 never
docs/benchmarks/, and shorter load runs). Everything is on loopback: moto for DynamoDB (or the
engine DYNAMODB_ENDPOINT_URL names) and for the Cognito tokens every request carries.

The bill (issue 21). A 4 KB answer in 200 appends and a 40 KB answer in 400 go through the
service in this process (startMessage, one appendMessage per delta, finishMessage), and every
DynamoDB call it makes is recorded with its items. Their write units are computed from the
items' sizes by DynamoDB's billing rules (benchmarks.billing), since moto reports placeholders;
against AWS, what the engine reported is kept beside them. The same answer is billed by the
same rules as the rewrite-per-chunk pattern (the same start, then an UpdateItem of the whole
growing message per chunk) and as one addMessage of the whole text. The run fails unless
streaming costs less than the rewrite for both answers with a gap that grows with the answer,
and unless each append is one PutItem whose units do not grow with the text before it.

The server's cost. appendMessage beside addMessage at concurrency 1 and 16, on one uvicorn
server (benchmarks.serve) whose DynamoDB is the counting engine replaying moto's answers
(benchmarks.canned_engine), as the main run measures its operations: server CPU per request
(from /proc), latency p50 and p99 at the client, and DynamoDB requests per call.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, cast

import aiohttp
import httpx

from benchmarks import billing
from benchmarks.billing import Bill, Recorder
from benchmarks.children import Child, running, start_child
from benchmarks.config import UNLIMITED_RATES, BenchConfig, Budget, config_from_environment
from benchmarks.cost import PRICES
from benchmarks.driver import Outcome, latency_summary
from benchmarks.procstat import cpu_seconds
from benchmarks.run import machine
from graphql_api.app import create_app
from graphql_api.local.cognito import DevCognito
from graphql_api.services import Services
from graphql_api.settings import Settings
from graphql_api.storage import items
from graphql_api.storage.client import DynamoDBClient, client_config, open_client
from graphql_api.storage.table import create_table, delete_table

OPERATIONS: Final = Path(__file__).resolve().parents[1] / "schema" / "operations"
JSON_NAME: Final = "streaming_cost.json"
REPORT_NAME: Final = "STREAMING_COST.md"
LOCAL_CREDENTIALS: Final = ("testing", "testing")
QUESTION: Final = "Why is the sky blue? Explain it as you would to a curious ten-year-old."
MODEL: Final = "bench-model"
# One delta of the load runs: 200-250 ms of tokens at a typical model's pace.
LOAD_DELTA_BYTES: Final = 100
# The addMessage beside it saves a whole answer, as an app that does not stream would.
ADD_CHARACTERS: Final = 1500
# appendMessage's concurrency 16 needs one stream per client: MAX_STREAMING_MESSAGES' default.
LOAD_STREAMS: Final = 16
# Four load runs only, so each may run longer than the main run's (benchmarks.config) and give
# p99 a few hundred samples even on a busy machine; a quick run takes the config's.
FULL_LOAD_BUDGETS: Final = (
    (1, Budget(max_requests=1000, max_seconds=10.0, warmup=20)),
    (16, Budget(max_requests=4000, max_seconds=10.0, warmup=64)),
)


def log(message: str) -> None:
    print(f"[streaming-cost {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class StreamingCostError(RuntimeError):
    """The bill or the service broke a promise of issue 21; the message says which."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """An answer streamed in `appends` deltas of `delta_bytes` bytes (ASCII) each."""

    appends: int
    delta_bytes: int

    @property
    def size(self) -> int:
        return self.appends * self.delta_bytes

    @property
    def name(self) -> str:
        return f"{self.size // 1000} KB in {self.appends} appends of {self.delta_bytes} B"

    def deltas(self) -> list[str]:
        """Distinct deltas (each names its seq), so text out of order would not add up."""
        filler = "the sky scatters blue light more than red, "
        return [
            (f"[{seq}] " + filler * (self.delta_bytes // len(filler) + 1))[: self.delta_bytes]
            for seq in range(1, self.appends + 1)
        ]


ANSWERS: Final = (Answer(appends=200, delta_bytes=20), Answer(appends=400, delta_bytes=100))


@dataclasses.dataclass(frozen=True, kw_only=True)
class AnswerBill:
    answer: Answer
    start: Bill
    appends: Bill
    finish: Bill
    # One addMessage of the whole answer, instead of streaming it.
    add: Bill
    # The rewrite-per-chunk pattern's UpdateItems (its start is `start`).
    chunks: Bill
    # The distinct units one append cost, and its item's sizes in bytes.
    append_units: tuple[int, ...]
    append_item_bytes: tuple[int, ...]

    @property
    def streamed(self) -> Bill:
        return self.start + self.appends + self.finish

    @property
    def rewrite(self) -> Bill:
        return self.start + self.chunks

    @property
    def gap(self) -> int:
        """The write units streaming saves against the rewrite pattern."""
        return self.rewrite.units - self.streamed.units

    @property
    def ratio(self) -> float:
        return self.streamed.units / self.rewrite.units

    def to_json(self) -> dict[str, Any]:
        return {
            "answer": {
                "name": self.answer.name,
                "bytes": self.answer.size,
                "appends": self.answer.appends,
                "delta_bytes": self.answer.delta_bytes,
            },
            "streamed": {
                "start": self.start.to_json(),
                "appends": self.appends.to_json(),
                "finish": self.finish.to_json(),
                "total": self.streamed.to_json(),
            },
            "rewrite": {
                "start": self.start.to_json(),
                "chunks": self.chunks.to_json(),
                "total": self.rewrite.to_json(),
            },
            "add": self.add.to_json(),
            "append_units": list(self.append_units),
            "append_item_bytes": list(self.append_item_bytes),
            "gap_units": self.gap,
            "ratio_to_rewrite": self.ratio,
        }


def shortfalls(bills: Sequence[AnswerBill]) -> list[str]:
    """What the bills break of issue 21's promises; empty when they keep them all."""
    found = []
    for bill in bills:
        name = bill.answer.name
        if bill.streamed.units >= bill.rewrite.units:
            found.append(
                f"{name}: streaming costs {bill.streamed.units} write units, the rewrite "
                f"pattern {bill.rewrite.units}: it must cost less"
            )
        if dict(bill.appends.requests) != {"PutItem": bill.answer.appends}:
            found.append(
                f"{name}: the appends made {dict(bill.appends.requests)}, not one PutItem each"
            )
        if len(bill.append_units) != 1:
            found.append(
                f"{name}: an append's units vary with the text before it: {bill.append_units}"
            )
    by_size = sorted(bills, key=lambda bill: bill.answer.size)
    for smaller, larger in itertools.pairwise(by_size):
        if larger.gap <= smaller.gap or larger.ratio >= smaller.ratio:
            found.append(
                f"the gap to the rewrite pattern must grow with the answer: {smaller.gap} units "
                f"({smaller.ratio:.2f}x) at {smaller.answer.size} B, {larger.gap} "
                f"({larger.ratio:.2f}x) at {larger.answer.size} B"
            )
    return found


# --- GraphQL clients ---------------------------------------------------------------------------


def document(name: str) -> str:
    return (OPERATIONS / f"{name}.graphql").read_text(encoding="utf-8")


def _problem(name: str, status: int, body: Any) -> str | None:
    if status == 200 and isinstance(body, dict) and not body.get("errors"):
        return None
    return f"{name}: {status} {json.dumps(body)[:500]}"


class InProcess:
    """schema/operations documents sent as one user to an app in this process."""

    def __init__(self, http: httpx.AsyncClient, token: str) -> None:
        self._http = http
        self._headers = {"Authorization": f"Bearer {token}"}

    async def run(self, name: str, variables: Mapping[str, Any]) -> dict[str, Any]:
        response = await self._http.post(
            "/graphql",
            json={"query": document(name), "variables": dict(variables)},
            headers=self._headers,
        )
        body = response.json()
        problem = _problem(name, response.status_code, body)
        if problem is not None:
            raise StreamingCostError(problem)
        data: dict[str, Any] = body["data"]
        return data


class OverHttp:
    """The same, to a server, over keep-alive connections (as benchmarks.driver sends them)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self._session = session
        self._url = f"{url}/graphql"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._documents: dict[str, str] = {}

    async def attempt(self, name: str, variables: Mapping[str, Any]) -> str | None:
        """Send it; the problem, or None when it succeeded."""
        query = self._documents.setdefault(name, document(name))
        payload = {"query": query, "variables": dict(variables)}
        async with self._session.post(self._url, json=payload, headers=self._headers) as response:
            body = await response.json()
            return _problem(name, response.status, body)

    async def run(self, name: str, variables: Mapping[str, Any]) -> None:
        problem = await self.attempt(name, variables)
        if problem is not None:
            raise StreamingCostError(problem)


# --- the bill ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def in_process(
    settings: Settings, credentials: tuple[str, str] | None
) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The app with its lifespan running, and its services (whose DynamoDB client is watched)."""
    app = create_app(settings, aws_credentials=credentials)
    async with app.router.lifespan_context(app) as state:
        if state is None:
            raise StreamingCostError("the app's lifespan gave no state")

        async def with_state(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as http:
            yield http, cast(Services, state["services"])


class BilledClient:
    """Sends each operation and bills the DynamoDB calls it made."""

    def __init__(
        self,
        client: InProcess,
        recorder: Recorder,
        ledger: billing.Ledger,
        engine: DynamoDBClient,
        table: str,
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._ledger = ledger
        self._engine = engine
        self._table = table

    async def run(
        self, name: str, variables: Mapping[str, Any]
    ) -> tuple[dict[str, Any], Bill, list[billing.Call]]:
        self._recorder.take()
        data = await self._client.run(name, variables)
        calls = self._recorder.take()
        # What an update wrote is not in its call: it is read back, as this bill's input.
        updated = {
            key: await _get(self._engine, self._table, key) for key in billing.updated_keys(calls)
        }
        return data, self._ledger.bill(calls, updated), calls


async def bill_answers(
    settings: Settings,
    credentials: tuple[str, str] | None,
    engine: DynamoDBClient,
    token: str,
) -> list[AnswerBill]:
    table = settings.dynamodb.table_name
    async with in_process(settings, credentials) as (http, services):
        client = InProcess(http, token)
        with Recorder.attached(services.table.client) as recorder:
            bills = []
            for answer in ANSWERS:
                conversation_id = await _asked(client)
                ledger = billing.Ledger(await _scan(engine, table), billing.table_indexes())
                billed = BilledClient(client, recorder, ledger, engine, table)
                bills.append(await _bill(billed, conversation_id, answer))
                log(f"billed {answer.name}")
            return bills


async def _asked(client: InProcess) -> str:
    """A conversation holding the question the answer follows."""
    conversation_id = str(uuid.uuid4())
    await client.run("CreateConversation", {"id": conversation_id, "title": "Blue sky"})
    message = {"conversationId": conversation_id, "role": "USER", "content": QUESTION}
    await client.run("SendMessage", message)
    return conversation_id


async def _bill(client: BilledClient, conversation_id: str, answer: Answer) -> AnswerBill:
    started, start, start_calls = await client.run(
        "StartMessage", {"conversationId": conversation_id, "modelId": MODEL}
    )
    message_id = started["startMessage"]["message"]["id"]
    deltas = answer.deltas()
    appends, units, sizes = Bill(), set[int](), set[int]()
    for seq, delta in enumerate(deltas, start=1):
        variables = {
            "conversationId": conversation_id,
            "messageId": message_id,
            "seq": seq,
            "delta": delta,
        }
        _, bill, calls = await client.run("AppendMessage", variables)
        appends += bill
        units.add(bill.units)
        sizes.update(
            items.item_size(call.params["Item"]) for call in calls if call.operation == "PutItem"
        )
    ending = {
        "conversationId": conversation_id,
        "messageId": message_id,
        "status": "COMPLETE",
        "lastSeq": answer.appends,
    }
    finished, finish, _ = await client.run("FinishMessage", ending)
    text = "".join(deltas)
    if finished["finishMessage"]["message"]["content"] != text:
        raise StreamingCostError(f"{answer.name}: the finished message is not the deltas' text")
    whole = {
        "conversationId": conversation_id,
        "role": "ASSISTANT",
        "content": text,
        "modelId": MODEL,
    }
    _, add, _ = await client.run("SendMessage", whole)
    started_item = _started_item(start_calls, message_id)
    return AnswerBill(
        answer=answer,
        start=start,
        appends=appends,
        finish=finish,
        add=add,
        chunks=billing.rewrite_per_chunk(started_item, deltas, billing.table_indexes()),
        append_units=tuple(sorted(units)),
        append_item_bytes=tuple(sorted(sizes)),
    )


def _started_item(calls: Sequence[billing.Call], message_id: str) -> billing.Item:
    """The message item the start wrote: what the rewrite pattern grows."""
    for call in calls:
        for write in billing.writes_of(call):
            item = write.item or {}
            if item.get("type") == {"S": items.MESSAGE} and item["messageId"]["S"] == message_id:
                return item
    raise StreamingCostError("the start wrote no message item")


async def _scan(engine: DynamoDBClient, table: str) -> dict[billing.ItemKey, billing.Item]:
    """Every item of the table: what the ledger starts from."""
    found: dict[billing.ItemKey, billing.Item] = {}
    request: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        response = await engine.scan(**request)
        for item in response.get("Items", []):
            found[billing.key_of(item)] = item
        if "LastEvaluatedKey" not in response:
            return found
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


async def _get(engine: DynamoDBClient, table: str, key: billing.ItemKey) -> billing.Item | None:
    response = await engine.get_item(
        TableName=table, Key={"PK": {"S": key[0]}, "SK": {"S": key[1]}}, ConsistentRead=True
    )
    return response.get("Item")


# --- the server's cost -------------------------------------------------------------------------


class Worker(Protocol):
    """One client of a load run: the next call it sends."""

    operation: str

    def variables(self) -> dict[str, Any]: ...


@dataclasses.dataclass
class Appender:
    conversation_id: str
    message_id: str
    seq: int = 0
    operation: str = "AppendMessage"

    def variables(self) -> dict[str, Any]:
        # Sequential per stream, as clients send them: a worker sends N + 1 once N is answered.
        self.seq += 1
        return {
            "conversationId": self.conversation_id,
            "messageId": self.message_id,
            "seq": self.seq,
            "delta": (f"[{self.seq}] " + "x" * LOAD_DELTA_BYTES)[:LOAD_DELTA_BYTES],
        }


@dataclasses.dataclass
class Adder:
    conversation_id: str
    operation: str = "SendMessage"

    def variables(self) -> dict[str, Any]:
        return {
            "conversationId": self.conversation_id,
            "id": str(uuid.uuid4()),
            "role": "ASSISTANT",
            "content": ("The sky is blue because " + "y" * ADD_CHARACTERS)[:ADD_CHARACTERS],
            "modelId": MODEL,
        }


async def measure_loads(
    config: BenchConfig, front: Child, server: Child, client: OverHttp
) -> list[dict[str, Any]]:
    """appendMessage and addMessage at each concurrency, one right after the other."""
    appenders: list[Worker] = []
    adders: list[Worker] = []
    for index in range(LOAD_STREAMS):
        conversation_id = str(uuid.uuid4())
        await client.run("CreateConversation", {"id": conversation_id, "title": f"load {index}"})
        message_id = str(uuid.uuid4())
        await client.run("StartMessage", {"conversationId": conversation_id, "id": message_id})
        appenders.append(Appender(conversation_id, message_id))
        adders.append(Adder(conversation_id))
    # One of each call per client through to moto, so the engine holds answers to replay.
    for worker in (*appenders, *adders):
        await client.run(worker.operation, worker.variables())
    await _control(front, "POST", "/__bench__/mode?mode=replay")
    budgets = (
        ((1, config.budget_canned_c1), (16, config.budget_canned_c16))
        if config.quick
        else FULL_LOAD_BUDGETS
    )
    results = []
    for (concurrency, budget), workers in itertools.product(budgets, (appenders, adders)):
        result = await _load(front, server, client, workers[:concurrency], budget)
        results.append(result)
        latency = result["latency_ms"]
        log(
            f"{result['operation']} c{concurrency}: {result['ops']} ops, "
            f"{result['server_cpu_ms']:.2f} ms CPU, p50 {latency['p50']:.1f} ms, "
            f"p99 {latency['p99']:.1f} ms"
        )
    return results


async def _load(
    front: Child, server: Child, client: OverHttp, workers: Sequence[Worker], budget: Budget
) -> dict[str, Any]:
    await _drive(client, workers, budget.warmup, budget.max_seconds)
    await _control(front, "POST", "/__bench__/reset")
    cpu_before, started = cpu_seconds(server.pid), time.perf_counter()
    outcome = await _drive(client, workers, budget.max_requests, budget.max_seconds)
    wall = time.perf_counter() - started
    cpu = cpu_seconds(server.pid) - cpu_before
    counts = await _control(front, "GET", "/__bench__/counts")
    operation = {"AppendMessage": "appendMessage", "SendMessage": "addMessage"}[
        workers[0].operation
    ]
    if outcome.failures:
        raise StreamingCostError(f"{operation}: {outcome.failures} failed: {outcome.first_failure}")
    done = len(outcome.latencies_ms)
    return {
        "operation": operation,
        "concurrency": len(workers),
        "ops": done,
        "seconds": wall,
        "throughput": done / wall if wall > 0 else 0.0,
        "server_cpu_s": cpu,
        "server_cpu_ms": cpu * 1000 / done if done else 0.0,
        "latency_ms": latency_summary(outcome.latencies_ms),
        "dynamodb_requests_per_call": counts["requests"] / done if done else 0.0,
        "dynamodb_operations": counts["operations"],
        "replay": counts["replay"],
    }


async def _drive(
    client: OverHttp, workers: Sequence[Worker], count: int, seconds: float
) -> Outcome:
    """Each worker sends its calls one after another until `count` in all or `seconds`."""
    outcome = Outcome()
    deadline = time.perf_counter() + seconds
    remaining = count

    async def work(worker: Worker) -> None:
        nonlocal remaining
        while remaining > 0 and time.perf_counter() < deadline:
            remaining -= 1
            variables = worker.variables()
            started = time.perf_counter()
            problem = await client.attempt(worker.operation, variables)
            if problem is not None:
                outcome.failures += 1
                outcome.first_failure = outcome.first_failure or problem
                continue
            outcome.latencies_ms.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(work(worker) for worker in workers))
    return outcome


async def _control(front: Child, method: str, path: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, front.detail + path) as response,
    ):
        response.raise_for_status()
        answer: dict[str, Any] = await response.json()
        return answer


# --- the run -----------------------------------------------------------------------------------


def json_path(config: BenchConfig) -> Path:
    """Where the figures go (the report beside them): the benchmarks' output directory."""
    return config.output_dir / JSON_NAME


def _service_env(engine_url: str, table: str, cognito: DevCognito, region: str) -> dict[str, str]:
    return {
        "CHAT_TABLE_NAME": table,
        "AWS_REGION": region,
        "DYNAMODB_ENDPOINT_URL": engine_url,
        "COGNITO_USER_POOL_ID": cognito.pool_id,
        "COGNITO_APP_CLIENT_IDS": cognito.client_id,
        "COGNITO_JWKS_URL": cognito.jwks_url,
        **UNLIMITED_RATES,
    }


def _token(cognito: DevCognito, username: str) -> str:
    cognito.ensure_user(username)
    return cognito.token_for(username)


async def run(config: BenchConfig, log_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        moto = await start_child("moto", "benchmarks.moto_engine", [], log_dir=log_dir)
        await stack.enter_async_context(running(moto))
        engine_url = config.dynamodb_endpoint_url or moto.detail
        local = engine_url.startswith(("http://127.", "http://localhost"))
        credentials = LOCAL_CREDENTIALS if local else None
        cognito = await asyncio.to_thread(
            DevCognito.create, endpoint_url=moto.detail, region=config.region
        )
        stack.callback(cognito.close)
        engine_config = client_config(
            max_pool_connections=4, connect_timeout=2.0, read_timeout=60.0, max_attempts=4
        )
        engine = await stack.enter_async_context(
            open_client(
                region=config.region,
                endpoint_url=engine_url,
                config=engine_config,
                credentials=credentials,
            )
        )
        table = f"streaming-cost-{uuid.uuid4().hex[:8]}"
        await create_table(engine, table_name=table)
        try:
            environ = _service_env(engine_url, table, cognito, config.region)
            token = await asyncio.to_thread(_token, cognito, "streaming-cost")
            bills = await bill_answers(Settings.from_env(environ), credentials, engine, token)
            front = await start_child(
                "counting-engine",
                "benchmarks.canned_engine",
                ["--upstream", engine_url],
                log_dir=log_dir,
            )
            await stack.enter_async_context(running(front))
            server_env = {
                **environ,
                "DYNAMODB_ENDPOINT_URL": front.detail,
                "BENCH_LOCAL_CREDENTIALS": "1" if local else "0",
            }
            server = await start_child(
                "server-graphql", "benchmarks.serve", ["graphql"], log_dir=log_dir, env=server_env
            )
            await stack.enter_async_context(running(server))
            server.detail = server.detail.partition(" ")[0]
            load_token = await asyncio.to_thread(_token, cognito, "streaming-load")
            session = await stack.enter_async_context(
                aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=2.0),
                    timeout=aiohttp.ClientTimeout(total=120),
                )
            )
            loads = await measure_loads(
                config, front, server, OverHttp(session, server.detail, load_token)
            )
        finally:
            await delete_table(engine, table_name=table)
    return {
        "machine": machine(),
        "config": {"quick": config.quick},
        "engine": "moto (on loopback)" if config.dynamodb_endpoint_url is None else engine_url,
        "answers": [bill.to_json() for bill in bills],
        "shortfalls": shortfalls(bills),
        "loads": loads,
        "prices": dataclasses.asdict(PRICES),
        "seconds": time.perf_counter() - started,
    }


# --- the report --------------------------------------------------------------------------------


def render(results: Mapping[str, Any]) -> str:
    lines = [
        "# Streaming an answer: what it costs",
        "",
        "Measured by `python -m benchmarks.streaming_cost` (`make bench`); code "
        f"{results['machine']['code']}, {results['machine']['cpu_model']}, "
        f"{results['machine']['nproc']} CPUs, Python {results['machine']['python']}, "
        f"DynamoDB: {results['engine']}."
        + (" **Quick run: not results.**" if results["config"]["quick"] else ""),
        "",
        "## DynamoDB requests and write units for a whole answer",
        "",
        "| Answer | Saved as | Requests | Write units | vs the rewrite | $ per million answers |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for answer in results["answers"]:
        lines += _bill_rows(answer, results["prices"]["write"])
    lines += ["", *_bill_notes(results), "", *_load_section(results["loads"])]
    return "\n".join(lines) + "\n"


def _bill_rows(answer: Mapping[str, Any], price: float) -> list[str]:
    streamed, rewrite = answer["streamed"], answer["rewrite"]
    appends = answer["answer"]["appends"]
    rewrite_units = rewrite["total"]["units"]

    def row(label: str, how: str, bill: Mapping[str, Any]) -> str:
        ratio = bill["units"] / rewrite_units
        dollars = bill["units"] * price
        return (
            f"| {label} | {how} | {bill['request_count']} | {bill['units']} | "
            f"{ratio:.2f}x | {dollars:,.0f} |"
        )

    return [
        row(
            answer["answer"]["name"],
            f"streamed: start, {appends} appends, finish",
            streamed["total"],
        ),
        row("", f"rewrite per chunk: the same start, {appends} UpdateItems", rewrite["total"]),
        row("", "one addMessage of the whole text, at the end", answer["add"]),
    ]


def _calls(bill: Mapping[str, Any]) -> str:
    return ", ".join(f"{count}x {name}" for name, count in bill["requests"].items())


def _bill_notes(results: Mapping[str, Any]) -> list[str]:
    notes = []
    for answer in results["answers"]:
        streamed = answer["streamed"]
        start, finish = streamed["start"], streamed["finish"]
        units = " or ".join(str(unit) for unit in answer["append_units"])
        smallest, largest = answer["append_item_bytes"][0], answer["append_item_bytes"][-1]
        overhead = largest - answer["answer"]["delta_bytes"]
        notes.append(
            f"- **{answer['answer']['name']}.** Start: {_calls(start)}, {start['units']} units. "
            f"Each append: one PutItem of a {smallest}-{largest}-byte item (the delta and up to "
            f"{overhead} bytes of key and bookkeeping), {units} unit, the last as the first. "
            f"Finish: {_calls(finish)}, {finish['units']} units, the tombstones overwriting the "
            f"deltas included. Streaming saves {answer['gap_units']:,} units against the "
            f"rewrite ({answer['ratio_to_rewrite']:.2f}x)."
        )
    gaps = " and ".join(
        f"{answer['gap_units']:,} at {answer['answer']['bytes'] // 1000} KB"
        for answer in results["answers"]
    )
    verdict = (
        "**Met**: streaming costs less than the rewrite pattern for both answers, and the gap "
        f"grows with the answer: it saves {gaps} (write units)."
        if not results["shortfalls"]
        else "**Not met**: " + "; ".join(results["shortfalls"])
    )
    totals = [answer["streamed"]["total"]["reported_units"] for answer in results["answers"]]
    reported = (
        "The engine's own figures (ConsumedCapacity) for the streamed answers: "
        + ", ".join(f"{units:g}" for units in totals)
        + "."
        if all(units is not None for units in totals)
        else "The engine reported no usable capacity (moto reports placeholders, and none for "
        "TransactWriteItems: docs/cost.md); against AWS, its figures are in the JSON beside ours."
    )
    return [
        verdict,
        "",
        *notes,
        "",
        "Requests are what the service sent, counted from botocore's events. Write units are "
        "computed from the items each request wrote (benchmarks/billing.py) by DynamoDB's "
        "rules: 1 unit per KB of the larger of the item's size before and after, rounded up, "
        "at least 1; twice that per item of a TransactWriteItems; and the index's writes (only "
        "the conversation item is in GSI1: one write of the entry's size, two when its key "
        f"moves). {reported} The rewrite pattern (an UpdateItem of the whole growing message "
        "per chunk, as Amplify's AI kit saves a streaming answer) is given the same start and "
        "no finish, so its figure is a floor. $ per million answers = write units x "
        f"${results['prices']['write']} per million write request units "
        f"({results['prices']['region']}, on demand).",
    ]


def _load_section(loads: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "## The append's cost to the server, beside addMessage",
        "",
        f"appendMessage of a {LOAD_DELTA_BYTES}-byte delta (each client its own stream, seq "
        f"after seq) and addMessage of a {ADD_CHARACTERS}-character answer, on one uvicorn "
        "worker whose DynamoDB is the counting engine replaying moto's answers (so the engine "
        "costs next to nothing); server CPU from /proc, latency at the client.",
        "",
        "| Operation | Concurrency | Calls | Server CPU ms per call | p50 ms | p99 ms | "
        "Calls/s | DynamoDB requests per call |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for load in loads:
        latency = load["latency_ms"]
        lines.append(
            f"| {load['operation']} | {load['concurrency']} | {load['ops']} | "
            f"{load['server_cpu_ms']:.2f} | {latency['p50']:.1f} | {latency['p99']:.1f} | "
            f"{load['throughput']:.0f} | {load['dynamodb_requests_per_call']:.2f} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.streaming_cost", description=__doc__.splitlines()[0]
    )
    parser.parse_args(argv)
    config = config_from_environment()
    config.output_dir.mkdir(parents=True, exist_ok=True)

    async def bounded() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="streaming-cost-") as log_dir:
            async with asyncio.timeout(config.deadline_seconds):
                return await run(config, Path(log_dir))

    results = asyncio.run(bounded())
    json_path(config).write_text(json.dumps(results, indent=1) + "\n")
    report = config.output_dir / REPORT_NAME
    report.write_text(render(results))
    log(f"wrote {report}")
    for shortfall in results["shortfalls"]:
        log(f"NOT MET: {shortfall}")
    return 1 if results["shortfalls"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
