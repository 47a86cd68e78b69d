"""The streaming benchmark's verdict and report, on bills with hand-checked figures."""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmarks.billing import Bill
from benchmarks.cost import PRICES
from benchmarks.streaming_cost import Answer, AnswerBill, render, shortfalls


def bill(units: int, **requests: int) -> Bill:
    return Bill(requests=requests, table_units=units)


SMALL = AnswerBill(
    answer=Answer(appends=200, delta_bytes=20),
    start=bill(12, BatchGetItem=1, TransactWriteItems=1),
    appends=bill(200, PutItem=200),
    finish=bill(225, BatchGetItem=1, Query=1, TransactWriteItems=1, BatchWriteItem=8),
    add=bill(24, BatchGetItem=1, TransactWriteItems=1),
    chunks=bill(566, UpdateItem=200),
    append_units=(1,),
    append_item_bytes=(217, 219),
)
LARGE = AnswerBill(
    answer=Answer(appends=400, delta_bytes=100),
    start=bill(12, BatchGetItem=1, TransactWriteItems=1),
    appends=bill(400, PutItem=400),
    finish=bill(495, BatchGetItem=1, Query=1, TransactWriteItems=1, BatchWriteItem=16),
    add=bill(94, BatchGetItem=1, TransactWriteItems=1),
    chunks=bill(8181, UpdateItem=400),
    append_units=(1,),
    append_item_bytes=(297, 299),
)


def test_streaming_and_the_rewrite_add_up_from_their_parts() -> None:
    # 12 + 200 + 225 against 12 + 566; 12 + 400 + 495 against 12 + 8,181.
    assert (SMALL.streamed.units, SMALL.rewrite.units, SMALL.gap) == (437, 578, 141)
    assert (LARGE.streamed.units, LARGE.rewrite.units, LARGE.gap) == (907, 8193, 7286)
    assert SMALL.streamed.request_count == 213
    assert round(SMALL.ratio, 3) == 0.756


def test_bills_that_keep_the_promises_have_no_shortfall() -> None:
    assert shortfalls([LARGE, SMALL]) == []


def test_streaming_that_costs_the_rewrites_price_falls_short() -> None:
    dear = dataclasses.replace(SMALL, chunks=bill(425, UpdateItem=200))

    (found,) = [text for text in shortfalls([dear, LARGE]) if "must cost less" in text]

    assert "streaming costs 437 write units, the rewrite pattern 437" in found


def test_a_gap_that_does_not_grow_with_the_answer_falls_short() -> None:
    narrow = dataclasses.replace(LARGE, chunks=bill(900, UpdateItem=400))

    found = shortfalls([SMALL, narrow])

    assert len(found) == 1
    assert (
        "must grow with the answer: 141 units (0.76x) at 4000 B, 5 (0.99x) at 40000 B" in found[0]
    )


def test_an_append_of_more_than_one_put_or_of_growing_units_falls_short() -> None:
    read_first = dataclasses.replace(SMALL, appends=bill(200, PutItem=200, GetItem=1))
    growing = dataclasses.replace(LARGE, append_units=(1, 2))

    found = shortfalls([read_first, growing])

    assert any("not one PutItem each" in text for text in found)
    assert any("units vary with the text before it: (1, 2)" in text for text in found)


def test_the_report_shows_each_way_of_saving_an_answer_against_the_rewrite() -> None:
    load = {
        "operation": "appendMessage",
        "concurrency": 1,
        "ops": 600,
        "throughput": 150.0,
        "server_cpu_ms": 2.5,
        "latency_ms": {"p50": 6.0, "p99": 12.5},
        "dynamodb_requests_per_call": 1.0,
    }
    results: dict[str, Any] = {
        "machine": {"code": "abc1234", "cpu_model": "test cpu", "nproc": 2, "python": "3.11"},
        "config": {"quick": False},
        "engine": "moto (on loopback)",
        "answers": [SMALL.to_json(), LARGE.to_json()],
        "shortfalls": [],
        "loads": [load],
        "prices": dataclasses.asdict(PRICES),
    }

    text = render(results)

    # 437 units x $0.625 per million units: $273 per million answers.
    assert (
        "| 4 KB in 200 appends of 20 B | streamed: start, 200 appends, finish | 213 | 437 | "
        "0.76x | 273 |"
    ) in text
    assert (
        "|  | rewrite per chunk: the same start, 400 UpdateItems | 402 | 8193 | 1.00x | 5,121 |"
        in text
    )
    assert "|  | one addMessage of the whole text, at the end | 2 | 94 | 0.01x | 59 |" in text
    assert "**Met**" in text
    assert "it saves 141 at 4 KB and 7,286 at 40 KB" in text
    assert "| appendMessage | 1 | 600 | 2.50 | 6.0 | 12.5 | 150 | 1.00 |" in text
