"""The table's definition, written out as schema/table.json too: a CreateTable input and the
TTL attribute (set with UpdateTimeToLive once the table exists, as CreateTable cannot)."""

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


def table_definition(table_name: str) -> dict[str, Any]:
    return {
        "TableName": table_name,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("PK", "SK", "GSI1PK", "GSI1SK")
        ],
        "KeySchema": [
            {"AttributeName": "PK", "KeyType": "HASH"},
            {"AttributeName": "SK", "KeyType": "RANGE"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
        "GlobalSecondaryIndexes": [
            {
                "IndexName": GSI_RECENCY,
                "KeySchema": [
                    {"AttributeName": "GSI1PK", "KeyType": "HASH"},
                    {"AttributeName": "GSI1SK", "KeyType": "RANGE"},
                ],
                # ALL, because the home screen shows title, counts and the last message
                # straight from the index: a KEYS_ONLY index would cost a BatchGet per page.
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def time_to_live() -> dict[str, Any]:
    return {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def table_definition_json(table_name: str = "chat-history") -> str:
    definition = {**table_definition(table_name), "TimeToLiveSpecification": time_to_live()}
    return json.dumps(definition, indent=2) + "\n"


async def create_table(
    client: DynamoDBClient, *, table_name: str, wait_seconds: float = 300.0
) -> bool:
    """Create the table unless it exists, then wait until it is ACTIVE. True if it was created."""
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
                description = (await client.describe_table(TableName=table_name))["Table"]
                indexes = description.get("GlobalSecondaryIndexes", [])
                if description.get("TableStatus") == "ACTIVE" and all(
                    index.get("IndexStatus") == "ACTIVE" for index in indexes
                ):
                    break
                await asyncio.sleep(1.0)
        await _enable_time_to_live(client, table_name)
    return created


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
