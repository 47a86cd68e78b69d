"""The benchmark harness's pieces, fast: recording and replay, wave counting, the action plan,
the statistics and the report. The harness itself runs with `make bench`."""

from __future__ import annotations

import collections
import gc
import json
import os
import shlex
import shutil
import subprocess
import zlib
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from benchmarks import coldstart, streaming_cost
from benchmarks.canned_engine import Answer, Engine, Recording, WaveCounter, build_app
from benchmarks.children import loopback_listener
from benchmarks.config import PUBLISHED, REPO_ROOT, BenchConfig, QuickRunError
from benchmarks.driver import latency_summary, percentile
from benchmarks.floor import GRAPHQL_PATH, create_floor_app
from benchmarks.gcstats import GcWatch
from benchmarks.layers import stacks
from benchmarks.procstat import cpu_seconds
from benchmarks.report import write_report
from benchmarks.scenarios import MIX, Action, BenchFailure, FloorClient, plan
from benchmarks.seed import Dataset, DatasetSpec
from graphql_api.app import admission_of, middleware
from graphql_api.observability.telemetry import Telemetry
from graphql_api.settings import Settings
from graphql_api.storage.client import client_config, open_client

TARGET = "DynamoDB_20120810."


def _answer(body: dict[str, Any]) -> Answer:
    return Answer(200, json.dumps(body).encode(), (("Content-Type", "application/x-amz-json-1.0"),))


def _get_item_body(sk: str, consistent: bool = True) -> bytes:
    request = {
        "TableName": "t",
        "Key": {"PK": {"S": "p"}, "SK": {"S": sk}},
        "ConsistentRead": consistent,
    }
    return json.dumps(request).encode()


def test_a_recorded_request_is_answered_exactly() -> None:
    recording = Recording()
    answer = _answer({"Item": {"PK": {"S": "p"}}})
    recording.record(TARGET + "GetItem", _get_item_body("a"), answer)

    assert recording.answer(TARGET + "GetItem", _get_item_body("a")) == (answer, "exact")


def test_a_read_that_differs_only_by_the_clock_is_answered_exactly() -> None:
    def listing(now: int) -> bytes:
        request = {
            "TableName": "t",
            "IndexName": "GSI1",
            "ExpressionAttributeValues": {":pk": {"S": "USER#u"}, ":now": {"N": str(now)}},
        }
        return json.dumps(request).encode()

    recording = Recording()
    answer = _answer({"Items": [], "Count": 0})
    recording.record(TARGET + "Query", listing(1_700_000_000), answer)
    recording.record(TARGET + "Query", _get_item_body("other"), _answer({"Items": [{}]}))

    assert recording.answer(TARGET + "Query", listing(1_700_000_009)) == (answer, "exact")


def test_an_unseen_batch_get_is_answered_item_by_item() -> None:
    def batch(*sort_keys: str) -> bytes:
        keys = [{"PK": {"S": "USER#u"}, "SK": {"S": sk}} for sk in sort_keys]
        return json.dumps({"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}}).encode()

    profile = {"PK": {"S": "USER#u"}, "SK": {"S": "PROFILE"}, "changeVersion": {"N": "4"}}
    conversation = {"PK": {"S": "USER#u"}, "SK": {"S": "CONV#c"}, "title": {"S": "T"}}
    recording = Recording()
    recording.record(
        TARGET + "BatchGetItem",
        batch("PROFILE", "CONV#c"),
        _answer({"Responses": {"t": [conversation, profile]}, "UnprocessedKeys": {}}),
    )

    # A write's first read: the same items, and the marker of a message id never seen.
    found, outcome = recording.answer(
        TARGET + "BatchGetItem", batch("PROFILE", "CONV#c", "MSGID#new")
    )

    assert outcome == "fallback"
    assert found is not None
    assert json.loads(found.body) == {
        "Responses": {"t": [profile, conversation]},
        "UnprocessedKeys": {},
    }
    assert dict(found.headers)["x-amz-crc32"] == str(zlib.crc32(found.body))


def test_an_unseen_item_request_falls_back_to_the_same_items_last_success() -> None:
    recording = Recording()
    answer = _answer({"Item": {"PK": {"S": "p"}}})
    recording.record(TARGET + "GetItem", _get_item_body("a"), answer)

    found, outcome = recording.answer(TARGET + "GetItem", _get_item_body("a", consistent=False))

    assert (found, outcome) == (answer, "fallback")


def test_an_unseen_write_falls_back_to_the_operations_last_success_and_errors_never_do() -> None:
    recording = Recording()
    success = _answer({})
    failure = Answer(400, b'{"__type": "TransactionCanceledException"}', ())
    recording.record(TARGET + "TransactWriteItems", b'{"a": 1}', success)
    recording.record(TARGET + "TransactWriteItems", b'{"a": 2}', failure)

    assert recording.answer(TARGET + "TransactWriteItems", b'{"a": 3}') == (success, "fallback")
    assert recording.answer(TARGET + "TransactWriteItems", b'{"a": 2}') == (failure, "exact")
    assert recording.answer(TARGET + "Query", b"{}") == (None, "miss")


def test_a_request_is_matched_on_its_meaning_not_its_bytes_nor_the_clock() -> None:
    recording = Recording()
    answer = _answer({"Items": []})
    sent = {
        "TableName": "t",
        "KeyConditionExpression": "GSI1PK = :pk",
        "FilterExpression": "#ttl > :now",
        "ExpressionAttributeValues": {":pk": {"S": "u"}, ":now": {"N": "1700000000"}},
    }
    recording.record(TARGET + "Query", json.dumps(sent).encode(), answer)
    # Another client's JSON (compact, keys reordered), a second later.
    later = {**sent, "ExpressionAttributeValues": {":now": {"N": "1700000001"}, ":pk": {"S": "u"}}}
    compact = json.dumps(dict(reversed(later.items())), separators=(",", ":")).encode()
    other_user = {**sent, "ExpressionAttributeValues": {":pk": {"S": "v"}, ":now": {"N": "1"}}}

    assert recording.answer(TARGET + "Query", compact) == (answer, "exact")
    assert recording.answer(TARGET + "Query", json.dumps(other_user).encode())[1] == "fallback"


def _batch_get_body(*sort_keys: str) -> bytes:
    keys = [{"PK": {"S": "p"}, "SK": {"S": sk}} for sk in sort_keys]
    return json.dumps({"RequestItems": {"t": {"Keys": keys, "ConsistentRead": True}}}).encode()


def test_an_unseen_batch_get_is_answered_item_by_item_from_what_was_seen() -> None:
    recording = Recording()
    profile = {"PK": {"S": "p"}, "SK": {"S": "PROFILE"}, "n": {"N": "1"}}
    conversation = {"PK": {"S": "p"}, "SK": {"S": "CONV"}}
    recording.record(
        TARGET + "BatchGetItem",
        _batch_get_body("PROFILE", "CONV", "GONE"),
        _answer({"Responses": {"t": [conversation, profile]}, "UnprocessedKeys": {}}),
    )

    # A write's snapshot read: known items plus a fresh message's marker, never seen.
    found, outcome = recording.answer(
        TARGET + "BatchGetItem", _batch_get_body("CONV", "MSGID#new", "PROFILE", "GONE")
    )

    assert outcome == "fallback"
    assert found is not None
    assert json.loads(found.body) == {
        "Responses": {"t": [conversation, profile]},
        "UnprocessedKeys": {},
    }


def test_a_recording_survives_a_round_trip_through_json() -> None:
    recording = Recording()
    recording.record(TARGET + "GetItem", _get_item_body("a"), _answer({"Item": {}}))

    restored = Recording.from_json(json.loads(json.dumps(recording.to_json())))

    assert restored == recording


def test_requests_in_flight_together_form_one_wave_and_sequential_ones_separate_waves() -> None:
    counter = WaveCounter()
    counter.started("Query")
    counter.started("BatchGetItem")
    counter.finished()
    counter.finished()
    counter.started("TransactWriteItems")
    counter.finished()

    assert counter.to_json()["waves"] == 2
    assert counter.to_json()["wave_detail"] == [["Query", "BatchGetItem"], ["TransactWriteItems"]]
    assert counter.to_json()["requests"] == 3


@pytest_asyncio.fixture
async def replaying_engine() -> AsyncIterator[tuple[str, Engine]]:
    engine = Engine(upstream=None, recording=Recording())
    runner = web.AppRunner(build_app(engine), access_log=None)
    await runner.setup()
    listener = loopback_listener()
    site = web.SockSite(runner, listener)
    await site.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", engine
    finally:
        await runner.cleanup()


async def test_the_canned_engine_answers_a_real_dynamodb_client_and_counts_it(
    replaying_engine: tuple[str, Engine],
) -> None:
    url, engine = replaying_engine
    item = {"PK": {"S": "USER#u"}, "SK": {"S": "PROFILE"}, "conversationCount": {"N": "3"}}
    engine.recording.by_operation[TARGET + "GetItem"] = _answer({"Item": item})
    config = client_config(
        max_pool_connections=2, connect_timeout=2.0, read_timeout=5.0, max_attempts=1
    )
    async with open_client(
        region="us-east-1", endpoint_url=url, config=config, credentials=("testing", "testing")
    ) as client:
        response = await client.get_item(
            TableName="t", Key={"PK": {"S": "USER#u"}, "SK": {"S": "PROFILE"}}
        )

    assert response["Item"] == item
    assert engine.counter.to_json()["operations"] == {"GetItem": 1}
    assert engine.counter.outcomes == collections.Counter({"fallback": 1})


def _dataset() -> Dataset:
    return Dataset(
        name="d",
        table="t",
        username="u",
        user_id="u",
        token="x.y.z",
        focus_id="11111111-1111-4111-8111-111111111111",
        focus_history=10,
        conversations=3,
        items=50,
        writable_ids=["22222222-2222-4222-8222-222222222222"],
        victim_ids=[],
    )


def test_the_mixed_scenario_is_eighty_percent_reads_and_the_same_for_every_variant() -> None:
    kinds = [plan("mixed", index, _dataset(), []).kind for index in range(2000)]

    reads = sum(kind in ("home", "open", "older") for kind in kinds) / len(kinds)

    assert 0.77 < reads < 0.83
    assert kinds == [plan("mixed", index, _dataset(), []).kind for index in range(2000)]
    assert abs(sum(weight for _, weight in MIX) - 1.0) < 1e-9


def test_writes_go_round_robin_to_the_writable_conversations() -> None:
    dataset = _dataset()

    targets = {plan("send", index, dataset, []).conversation_id for index in range(4)}

    assert targets == set(dataset.writable_ids)


def test_percentiles_use_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 0.5) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert latency_summary([3.0, 1.0, 2.0])["p50"] == 2.0


def test_a_dataset_counts_every_item_storage_would_hold() -> None:
    spec = DatasetSpec(
        name="s", focus_history=10, others=2, other_history=3, victims=1, victim_history=5
    )

    # Two items per message (message + MSGID marker), two per conversation, one profile.
    assert spec.item_count == 2 * (10 + 2 * 3 + 5) + 2 * 4 + 1


def test_full_collections_are_counted_and_timed() -> None:
    watch = GcWatch().install()
    try:
        gc.collect()
    finally:
        gc.callbacks.remove(watch._callback)

    snapshot = watch.snapshot()
    assert snapshot["collections"][2] == 1
    assert snapshot["seconds"][2] > 0


def test_cpu_time_is_read_from_proc() -> None:
    sum(range(200_000))

    assert cpu_seconds(os.getpid()) > 0


def _load(scenario: str, variant: str, engine: str, concurrency: int) -> dict[str, Any]:
    return {
        "dataset": "main",
        "scenario": scenario,
        "variant": variant,
        "engine": engine,
        "concurrency": concurrency,
        "headline": True,
        "sweep": [],
        "ops": 100,
        "failures": 0,
        "first_failure": "",
        "seconds": 1.0,
        "throughput": 100.0,
        "latency_ms": {"n": 100, "p50": 5.0, "p90": 7.0, "p99": 9.0, "mean": 5.5, "max": 10.0},
        "server_cpu_s": 0.4,
        "engine_cpu_s": 0.05,
        "driver_cpu_s": 0.1,
        "engine_counts": {"requests": 200, "waves": 100, "replay": {"exact": 200}},
        "gc": {"full_collections": 1, "full_seconds": 0.05, "longest_full": 0.05},
        "items": [20],
        "loadavg": 0.5,
    }


def test_the_report_is_written_with_its_tables_and_plots(tmp_path: Path) -> None:
    results: dict[str, Any] = {
        "machine": {
            "nproc": 2,
            "cpu_model": "test cpu",
            "python": "3.11",
            "platform": "linux",
            "loadavg_start": [0.1, 0.1, 0.1],
            "loadavg_end": [0.2, 0.2, 0.2],
            "versions": {},
            "uvicorn": "H11Protocol asyncio",
        },
        "config": {"quick": True},
        "seconds": 1.0,
        "datasets": [{"name": "main", "conversations": 30, "focus_history": 200, "items": 10}],
        "counts": [
            {
                "dataset": "main",
                "scenario": "home",
                "variant": variant,
                "sweep": [],
                "requests": 2,
                "waves": 1,
                "operations": {"Query": 1, "GetItem": 1},
                "wave_detail": [["Query", "GetItem"]],
                "steady": True,
                "items": [20],
                "latency_ms": [5.0],
            }
            for variant in ("direct", "rest", "graphql")
        ],
        "loads": [
            _load("home", variant, engine, concurrency)
            for variant in ("direct", "rest", "graphql")
            for engine in ("moto", "canned")
            for concurrency in (1, 16)
        ]
        + [_load("home", "graphql_before", "canned", concurrency) for concurrency in (1, 16)],
        "notes": [],
        "timestamp_parse_us": {"strptime": 9.0, "fromisoformat": 0.25},
    }

    write_report(results, tmp_path)

    text = (tmp_path / "RESULTS.md").read_text()
    assert "| home screen: conversations(first: 20) with lastMessage | 2 / 1 |" in text
    assert "1.00x" in text
    assert "| home | GraphQL | 10.0 | 0.50 | 50 |" in text
    assert "| home | GraphQL (before) | 10.0 | 0.50 | 50 |" in text
    assert "| home | ops/s c16 | 100 | 100 | 100 | 100 | 1.00x | 1.00x → 1.00x |" in text
    assert (
        "- **Target: server CPU per request, GraphQL / REST, at most 1.0x.** Met on 1 of 4 "
        "(trusted documents: 0 of 4): home 1.00x (met), trusted documents - (not measured); "
        "open - (not measured), trusted documents - (not measured);"
    ) in text
    assert (
        "**Target: throughput at concurrency 16, GraphQL / REST, at least 1.0x.** Met on 1" in text
    )
    assert "**Target: p50 at concurrency 1, GraphQL / REST, at most 1.1x.** Met on 1 of 4" in text
    assert (tmp_path / "latency_p50_c1.png").stat().st_size > 0


def test_the_storage_section_compares_direct_before_and_after(tmp_path: Path) -> None:
    loads = [
        _load("home", variant, "canned", concurrency)
        for variant in ("direct", "rest", "graphql")
        for concurrency in (1, 16)
    ]
    before = {**_load("home", "direct_before", "canned", 16), "server_cpu_s": 1.2}
    results: dict[str, Any] = {
        "machine": {
            "nproc": 2,
            "cpu_model": "test cpu",
            "python": "3.11",
            "platform": "linux",
            "loadavg_start": [0.1, 0.1, 0.1],
            "loadavg_end": [0.2, 0.2, 0.2],
            "versions": {},
        },
        "config": {"quick": True},
        "seconds": 1.0,
        "datasets": [{"name": "main", "conversations": 30, "focus_history": 200, "items": 10}],
        "counts": [],
        "loads": [*loads, before],
        "notes": [],
        "profile_storage": ["### a profile of the storage calls"],
    }

    write_report(results, tmp_path)

    text = (tmp_path / "RESULTS.md").read_text()
    assert "home 0.33x (12.00 → 4.00 ms): **met**; open - (- → - ms): **not measured**" in text
    assert "| home | server CPU ms/op (c16) | 12.00 | 4.00 | 0.33x |" in text
    assert "### a profile of the storage calls" in text


def _results(loads: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "machine": {
            "nproc": 2,
            "cpu_model": "test cpu",
            "python": "3.11",
            "platform": "linux",
            "loadavg_start": [0.1, 0.1, 0.1],
            "loadavg_end": [0.2, 0.2, 0.2],
            "versions": {},
        },
        "config": {"quick": True},
        "seconds": 1.0,
        "datasets": [{"name": "main", "conversations": 30, "focus_history": 200, "items": 10}],
        "counts": [],
        "loads": loads,
        "notes": [],
        **extra,
    }


def test_every_scenario_is_reported_as_a_multiple_of_the_floor(tmp_path: Path) -> None:
    loads = [
        _load(scenario, variant, "canned", concurrency)
        for scenario in ("home", "open")
        for variant in ("rest", "graphql")
        for concurrency in (1, 16)
    ]
    # 0.4 s of server CPU per 100 operations: 4 ms per request; the floor 0.1 ms and 1 ms p50.
    floor = [
        {
            **_load("home", "floor", "canned", concurrency),
            "server_cpu_s": 0.01,
            "latency_ms": {"n": 100, "p50": 1.0, "p90": 1, "p99": 1, "mean": 1, "max": 1},
        }
        for concurrency in (1, 16)
    ]
    open_graphql = {**_load("open", "graphql", "canned", 16), "server_cpu_s": 0.5}
    layers = [
        {"layer": "floor: bare endpoint", "us_per_request": 20.0},
        {"layer": "+ RequestTelemetry", "us_per_request": 30.0},
    ]
    results = _results([*loads[:-2], open_graphql, *floor], layers=layers, floor_body_bytes=5_432)

    write_report(results, tmp_path)

    text = (tmp_path / "RESULTS.md").read_text()
    assert (
        "- **Target: server CPU per request at most 40x the floor's** (a bare Starlette "
        "endpoint answering the same home JSON; canned engine, concurrency 16): home 40.0x "
        "(4.00 ms against 0.100 ms): **met**."
    ) in text
    assert "GraphQL home 40.0x, open 50.0x; REST home 40.0x, open 40.0x" in text
    assert "| home | 0.100 | 4.00 | 4.00 | - | 40.00x | 40.00x | - | 1.00 | 5.00x | 5.00x |" in text
    assert "| open | 0.100 | 4.00 | 5.00 | - | 40.00x | 50.00x | - |" in text
    assert "captured in this run (5,432 bytes)" in text
    assert "| + RequestTelemetry | 30.0 | +10.0 | 1.5x |" in text
    assert "| home | floor | 1.0 | 1.0 |" in text


def test_without_a_floor_the_report_says_nothing_of_it(tmp_path: Path) -> None:
    loads = [
        _load("home", variant, "canned", concurrency)
        for variant in ("rest", "graphql")
        for concurrency in (1, 16)
    ]

    write_report(_results(loads), tmp_path)

    text = (tmp_path / "RESULTS.md").read_text()
    assert "## Against the floor" not in text
    assert "x the floor's" not in text


async def test_the_floor_answers_the_captured_body_whatever_it_is_asked() -> None:
    body = b'{"data":{"conversations":{"edges":[]}}}'
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"query":"{ x }"}', "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(dict(message))

    scope = {
        "type": "http",
        "method": "POST",
        "path": GRAPHQL_PATH,
        "headers": [(b"content-type", b"application/json")],
        "query_string": b"",
    }
    await create_floor_app(body)(scope, receive, send)

    assert sent[0]["status"] == 200
    assert sent[1]["body"] == body


async def test_the_floor_client_performs_the_home_screen_only() -> None:
    client = FloorClient(None, "http://127.0.0.1:1", "x.y.z")  # type: ignore[arg-type]

    with pytest.raises(BenchFailure, match="home screen only"):
        await client.perform(Action(kind="open", conversation_id="c"))


def test_the_layers_are_the_apps_own_stacked_one_at_a_time() -> None:
    settings = Settings.from_env(
        {
            "CHAT_TABLE_NAME": "t",
            "AWS_REGION": "us-east-1",
            "COGNITO_USER_POOL_ID": "us-east-1_Pool",
            "COGNITO_APP_CLIENT_IDS": "client",
        }
    )
    telemetry = Telemetry.from_settings(settings)

    measured = stacks(settings, telemetry, b"{}")

    layers = middleware(settings, telemetry, admission=admission_of(settings, telemetry))
    expected = [getattr(layer.cls, "__name__", "") for layer in layers]
    assert [name for name, _ in measured] == [
        "floor: bare endpoint",
        *(f"+ {name}" for name in expected),
        "+ Context and dataloaders",
    ]
    assert [len(app.user_middleware) for _, app in measured] == [
        *range(len(expected) + 1),
        len(expected),
    ]


# --- where a run writes ----------------------------------------------------------------------


def make_bench_commands() -> list[list[str]]:
    """The benchmark commands `make bench` runs, as make itself expands them (not run)."""
    make = shutil.which("make")
    assert make is not None, "make is needed (the README's setup)"
    dry = subprocess.run(  # noqa: S603 - a fixed command
        [make, "--no-print-directory", "-n", "bench"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    commands = [shlex.split(line) for line in dry.stdout.splitlines()]
    # Only the benchmarks' own: a dry run also lists the install steps when the virtualenv is
    # older than what it installs from, and those write into the virtualenv alone.
    return [
        command
        for command in commands
        if "-m" in command and command[command.index("-m") + 1].split(".")[0] == "benchmarks"
    ]


def written_by(command: list[str], config: BenchConfig) -> Path | None:
    """Where one `python -m benchmarks...` command of the Makefile writes under `config`."""
    module, arguments = command[command.index("-m") + 1], command[command.index("-m") + 2 :]
    if module in ("benchmarks", "benchmarks.streaming_live"):
        return config.output_dir
    if module == "benchmarks.coldstart":
        return coldstart.json_path(coldstart.parser().parse_args(arguments).json, config)
    if module == "benchmarks.streaming_cost":
        return streaming_cost.json_path(config)
    raise AssertionError(f"`make bench` runs {module}: say here where it writes")


def test_a_quick_make_bench_writes_only_where_bench_output_dir_says(tmp_path: Path) -> None:
    config = BenchConfig.from_env({"BENCH_QUICK": "1", "BENCH_OUTPUT_DIR": str(tmp_path)})

    written = [written_by(command, config) for command in make_bench_commands()]

    assert len(written) == len(make_bench_commands()) == 4
    for path in written:
        assert path is not None
        assert path.is_relative_to(tmp_path), path


def test_a_quick_make_bench_writes_no_tracked_file_by_default() -> None:
    config = BenchConfig.from_env({"BENCH_QUICK": "1"})

    written = [written_by(command, config) for command in make_bench_commands()]

    for path in written:
        assert path is not None
        assert not path.resolve().is_relative_to(REPO_ROOT), path


def test_a_full_make_bench_publishes_its_results(tmp_path: Path) -> None:
    config = BenchConfig.from_env({})

    written = [written_by(command, config) for command in make_bench_commands()]

    assert written == [
        PUBLISHED,
        PUBLISHED / "coldstart.json",
        PUBLISHED / streaming_cost.JSON_NAME,
        PUBLISHED,
    ]


def test_a_quick_run_refuses_to_write_the_published_results() -> None:
    with pytest.raises(QuickRunError):
        BenchConfig.from_env({"BENCH_QUICK": "1", "BENCH_OUTPUT_DIR": str(PUBLISHED)})
    quick = BenchConfig.from_env({"BENCH_QUICK": "1"})
    with pytest.raises(QuickRunError):
        coldstart.json_path(PUBLISHED / "coldstart.json", quick)
