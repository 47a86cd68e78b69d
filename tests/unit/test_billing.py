"""DynamoDB's write billing as benchmarks/billing.py computes it, on items of known sizes."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks.billing import (
    Bill,
    Call,
    Index,
    Ledger,
    index_units,
    key_of,
    rewrite_per_chunk,
    table_indexes,
    write_units,
)
from graphql_api.storage.items import item_size

GSI1 = Index("GSI1", "GSI1PK", "GSI1SK")
GSI2 = Index("GSI2", "GSI2PK", "GSI2SK")


def sized(size: int, *, sk: str = "s", **attributes: str) -> dict[str, Any]:
    """An item of exactly `size` bytes as DynamoDB bills it, padded in attribute `x`."""
    item: dict[str, Any] = {
        "PK": {"S": "p"},
        "SK": {"S": sk},
        **{name: {"S": value} for name, value in attributes.items()},
    }
    item["x"] = {"S": "a" * (size - item_size(item) - len("x"))}
    assert item_size(item) == size
    return item


def listed(size: int, recency: str) -> dict[str, Any]:
    """An item in GSI1, as a conversation is, at `recency` in its list."""
    return sized(size, GSI1PK="USER#u", GSI1SK=recency)


def test_a_write_costs_a_unit_per_kb_of_the_larger_item_and_twice_in_a_transaction() -> None:
    assert write_units(None, sized(1024), transactional=False) == 1
    assert write_units(None, sized(1025), transactional=False) == 2
    assert write_units(None, sized(20), transactional=False) == 1
    # Growing is billed on the item after, shrinking and deleting on the item before.
    assert write_units(sized(900), sized(1100), transactional=False) == 2
    assert write_units(sized(2100), sized(10), transactional=False) == 3
    assert write_units(sized(3000), None, transactional=False) == 3
    assert write_units(None, None, transactional=False) == 1
    assert write_units(None, sized(1500), transactional=True) == 4
    assert write_units(sized(2100), sized(10), transactional=True) == 6


def test_the_index_is_written_in_place_once_and_twice_when_the_key_moves() -> None:
    assert index_units(None, sized(500), GSI1) == 0
    assert index_units(None, listed(500, "a"), GSI1) == 1
    assert index_units(listed(500, "a"), listed(1500, "a"), GSI1) == 2
    # The entry at "a" (2 KB) is removed, the one at "b" (1 KB) is put.
    assert index_units(listed(1500, "a"), listed(500, "b"), GSI1) == 3
    assert index_units(listed(2500, "a"), None, GSI1) == 3
    assert index_units(listed(500, "a"), listed(500, "a"), GSI1) == 0


def test_the_tables_indexes_are_gsi1_and_gsi2_projecting_every_attribute() -> None:
    assert table_indexes() == (GSI1, GSI2)


def test_a_ledger_bills_each_write_against_the_item_it_replaces() -> None:
    ledger = Ledger({key_of(sized(1500, sk="a")): sized(1500, sk="a")}, (GSI1,))

    replaced = ledger.bill([Call(operation="PutItem", params={"Item": sized(100, sk="a")})], {})
    updated = ledger.bill(
        [Call(operation="UpdateItem", params={"Key": {"PK": {"S": "p"}, "SK": {"S": "b"}}})],
        {("p", "b"): listed(2500, "x")},
    )
    transaction = {
        "TransactItems": [
            {"Put": {"Item": sized(1000, sk="c")}},
            {"Delete": {"Key": {"PK": {"S": "p"}, "SK": {"S": "a"}}}},
        ]
    }
    transacted = ledger.bill([Call(operation="TransactWriteItems", params=transaction)], {})
    batch = {
        "RequestItems": {
            "t": [
                {"PutRequest": {"Item": sized(3000, sk="d")}},
                {"PutRequest": {"Item": sized(100, sk="e")}},
                {"DeleteRequest": {"Key": {"PK": {"S": "p"}, "SK": {"S": "b"}}}},
            ]
        }
    }
    left = {"t": [{"PutRequest": {"Item": sized(100, sk="e")}}]}
    batched = ledger.bill(
        [
            Call(operation="BatchWriteItem", params=batch, unprocessed=left),
            Call(operation="GetItem", params={}),
        ],
        {},
    )

    # The 1.5 KB item replaced by 100 bytes: 2 units.
    assert (replaced.table_units, replaced.index_units) == (2, 0)
    # A new 2.5 KB item in the index: 3 units in the table, one 3-unit entry.
    assert (updated.table_units, updated.index_units) == (3, 3)
    # Twice 1 KB, and twice the 100 bytes left of "a".
    assert (transacted.table_units, transacted.index_units) == (4, 0)
    # 3 KB put, "e" left unprocessed, the 2.5 KB item deleted from the table and the index.
    assert (batched.table_units, batched.index_units) == (6, 3)
    assert batched.requests == {"BatchWriteItem": 1, "GetItem": 1}
    total = replaced + updated + transacted + batched
    assert (total.units, total.request_count) == (21, 5)
    assert ledger.item(("p", "a")) is None
    assert ledger.item(("p", "d")) == sized(3000, sk="d")
    assert ledger.item(("p", "e")) is None


def test_an_item_written_twice_in_one_bill_is_refused() -> None:
    ledger = Ledger({}, ())
    twice = [Call(operation="PutItem", params={"Item": sized(10)}) for _ in range(2)]

    with pytest.raises(ValueError, match="twice"):
        ledger.bill(twice, {})


def test_a_failed_call_is_not_billed_silently() -> None:
    failed = Call(operation="PutItem", params={"Item": sized(10)}, failed=True)

    with pytest.raises(NotImplementedError):
        Ledger({}, ()).bill([failed], {})


def test_the_rewrite_pattern_bills_each_chunk_on_the_whole_message_so_far() -> None:
    message = sized(1000, sk="MSG#0#1", content="")

    bill = rewrite_per_chunk(message, ["d" * 20] * 3, (GSI1,))

    # The message grows to 1,020, 1,040 and 1,060 bytes: 1, 2 and 2 units.
    assert bill == Bill(
        requests={"UpdateItem": 3}, table_units=5, index_units=0, reported_units=None
    )


def test_what_the_engine_reports_is_kept_only_when_every_write_reported_it() -> None:
    put = {"Item": sized(10)}
    reported = Ledger({}, ()).bill([Call(operation="PutItem", params=put, reported_units=1.0)], {})
    silent = Ledger({}, ()).bill([Call(operation="PutItem", params=put)], {})

    assert reported.reported_units == 1.0
    assert (reported + silent).reported_units is None
    assert (reported + reported).reported_units == 2.0
