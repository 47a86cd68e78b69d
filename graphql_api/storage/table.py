"""The table's definition, written out as schema/table.json too: a CreateTable input and the
TTL attribute (set with UpdateTimeToLive once the table exists, as CreateTable cannot).

`create_table` also brings an existing table up to the definition's indexes: a table created
before an index existed gets it with UpdateTable (one index per call, as DynamoDB allows), and
`chat-history-api migrate` then gives the items written before it their keys for it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from botocore.exceptions import ClientError

from .client import DynamoDBClient, error_code, translate_errors

# Temporary conversations and old change-log entries carry it; DynamoDB deletes them some
# time (up to days) after it passes, and every read path treats them as gone at once.
from .items import TTL_ATTRIBUTE

GSI_RECENCY = "GSI1"
GSI_GROUPING = "GSI2"
_INDEX_KEYS = {GSI_RECENCY: ("GSI1PK", "GSI1SK"), GSI_GROUPING: ("GSI2PK", "GSI2SK")}


def _index(name: str) -> dict[str, Any]:
    partition, sort = _INDEX_KEYS[name]
    return {
        "IndexName": name,
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ],
        # ALL, because the lists show title, counts and the last message straight from the
        # index: a KEYS_ONLY index would cost a BatchGet per page.
        "Projection": {"ProjectionType": "ALL"},
    }


def table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("PK", "SK", "GSI1PK", "GSI1SK", "GSI2PK", "GSI2SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        # GSI1: the home list, the archive and the projects list. GSI2: one list per project
        # (and one of the conversations in none), so a project's page is one Query too.
        "GlobalSecondaryIndexes": [_index(GSI_RECENCY), _index(GSI_GROUPING)],
    }


def time_to_live() -> dict[str, Any]:
    return {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def table_definition_json(table_name: str = "chat-history") -> str:
    definition = {**table_definition(table_name), "TimeToLiveSpecification": time_to_live()}
    return json.dumps(definition, indent=2) + "\n"


async def create_table(
    client: DynamoDBClient,
    *,
    table_name: str,
    wait_seconds: float = 300.0,
    poll_seconds: float = 1.0,
) -> bool:
    """Create the table unless it exists, add any index of the definition it lacks, and wait
    until it and every index are ACTIVE. True if it was created. Safe to run again."""
    created = True
    with translate_errors(resource=table_name):
        try:
            await client.create_table(**table_definition(table_name))
        except ClientError as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            created = False
        async with asyncio.timeout(wait_seconds):
            while True:
                description = await _settled(client, table_name, poll_seconds)
                missing = _missing_index(description)
                if missing is None:
                    break
                await _add_index(client, table_name, missing)
        await _enable_time_to_live(client, table_name)
    return created


async def _settled(client: DynamoDBClient, table_name: str, poll_seconds: float) -> dict[str, Any]:
    """The table's description once it and every index are ACTIVE."""
    while True:
        description: dict[str, Any] = dict(
            (await client.describe_table(TableName=table_name))["Table"]
        )
        indexes = description.get("GlobalSecondaryIndexes", [])
        if description.get("TableStatus") == "ACTIVE" and all(
            index.get("IndexStatus") == "ACTIVE" for index in indexes
        ):
            return description
        await asyncio.sleep(poll_seconds)


def _missing_index(description: dict[str, Any]) -> str | None:
    """The first index of the definition the table lacks; None when it has them all."""
    present = {index["IndexName"] for index in description.get("GlobalSecondaryIndexes", [])}
    return next((name for name in _INDEX_KEYS if name not in present), None)


async def _add_index(client: DynamoDBClient, table_name: str, name: str) -> None:
    index = _index(name)
    wanted = {key["AttributeName"] for key in index["KeySchema"]}
    try:
        await client.update_table(
            TableName=table_name,
            AttributeDefinitions=[
                definition
                for definition in table_definition(table_name)["AttributeDefinitions"]
                if definition["AttributeName"] in wanted
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],  # type: ignore[typeddict-item]
        )
    except ClientError as exc:
        # Another deploy's create-table added it first: the next look finds it.
        if error_code(exc) not in ("ResourceInUseException", "LimitExceededException"):
            raise


async def _enable_time_to_live(client: DynamoDBClient, table_name: str) -> None:
    described = await client.describe_time_to_live(TableName=table_name)
    if described.get("TimeToLiveDescription", {}).get("TimeToLiveStatus") in (
        "ENABLED",
        "ENABLING",
    ):
        return
    await client.update_time_to_live(
        TableName=table_name,
        TimeToLiveSpecification=time_to_live(),  # type: ignore[arg-type]
    )


async def delete_table(client: DynamoDBClient, *, table_name: str) -> None:
    with translate_errors(resource=table_name):
        await client.delete_table(TableName=table_name)
