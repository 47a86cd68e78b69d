"""The dev stack's engine keeps DynamoDB's contract for transactions: a cancelled one leaves
every item as it was, the ones it named and the ones it did not (moto_server backs up only
the named ones in full)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio
from botocore.exceptions import ClientError

from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.table import create_table, delete_table

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb.type_defs import TransactWriteItemTypeDef


@pytest_asyncio.fixture
async def table(dynamodb_client: DynamoDBClient) -> AsyncIterator[str]:
    name = f"moto-transactions-{uuid.uuid4().hex}"
    await create_table(dynamodb_client, table_name=name)
    try:
        yield name
    finally:
        await delete_table(dynamodb_client, table_name=name)


def key(n: int) -> dict[str, Any]:
    return {"PK": {"S": "USER#moto"}, "SK": {"S": f"ITEM#{n}"}}


async def put(client: DynamoDBClient, table: str, n: int, text: str) -> None:
    await client.put_item(TableName=table, Item={**key(n), "text": {"S": text}})


async def items(client: DynamoDBClient, table: str) -> dict[str, str]:
    found = await client.query(
        TableName=table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": "USER#moto"}},
        ConsistentRead=True,
    )
    return {item["SK"]["S"]: item["text"]["S"] for item in found["Items"]}


def update(table: str, n: int, text: str) -> TransactWriteItemTypeDef:
    return {
        "Update": {
            "TableName": table,
            "Key": key(n),
            "UpdateExpression": "SET #t = :t",
            "ExpressionAttributeNames": {"#t": "text"},
            "ExpressionAttributeValues": {":t": {"S": text}},
        }
    }


async def test_a_cancelled_transaction_leaves_named_and_other_items_as_they_were(
    dynamodb_client: DynamoDBClient, table: str
) -> None:
    for n in range(5):
        await put(dynamodb_client, table, n, f"before {n}")
    before = await items(dynamodb_client, table)

    with pytest.raises(ClientError) as cancelled:
        await dynamodb_client.transact_write_items(
            TransactItems=[
                # Applied in place by moto, then undone when the last action fails.
                update(table, 1, "changed"),
                {"Put": {"TableName": table, "Item": {**key(9), "text": {"S": "new"}}}},
                {"Delete": {"TableName": table, "Key": key(2)}},
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key(3),
                        "ConditionExpression": "attribute_not_exists(PK)",
                    }
                },
            ]
        )

    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert await items(dynamodb_client, table) == before
    # The restored table is the live one: later writes, to any item, land and stay.
    await put(dynamodb_client, table, 4, "after")
    await dynamodb_client.transact_write_items(TransactItems=[update(table, 0, "committed")])
    assert await items(dynamodb_client, table) == {
        **before,
        "ITEM#0": "committed",
        "ITEM#4": "after",
    }
