"""The table, exactly as schema/table.json describes it, as an AWS::DynamoDB::Table.

schema/table.json is a CreateTable input written out by the service (a test keeps it in step
with graphql_api/storage/table.py). It is read here at synthesis, field by field: a field this
module does not know stops synthesis rather than being dropped, so a new index, TTL or stream
in table.json reaches the stack or fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aws_cdk import CfnResource, RemovalPolicy
from constructs import Construct

# Fields CreateTable and CloudFormation spell and shape the same. TimeToLiveSpecification and
# PointInTimeRecoverySpecification are not CreateTable fields (they are separate API calls),
# but table.json may carry them for the stack, in CloudFormation's shape.
_SAME_SHAPE = frozenset(
    {
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "ProvisionedThroughput",
        "OnDemandThroughput",
        "WarmThroughput",
        "TableClass",
        "DeletionProtectionEnabled",
        "Tags",
        "TimeToLiveSpecification",
        "PointInTimeRecoverySpecification",
    }
)


class TableDefinitionError(ValueError):
    """schema/table.json has a field the stack cannot carry."""


def load_definition(path: Path) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(path.read_text())
    return definition


def table_properties(definition: Mapping[str, Any]) -> dict[str, Any]:
    """CloudFormation properties for a CreateTable definition, plus the stack's own policy.

    TableName is left out: CloudFormation then names the table, so both shapes (or two stages)
    fit in one account and a replacement never collides with the old table; the service gets
    the name from the stack.
    """
    properties: dict[str, Any] = {}
    for field, value in definition.items():
        if field == "TableName":
            continue
        if field in _SAME_SHAPE:
            properties[field] = value
        elif field == "StreamSpecification":
            if value.get("StreamEnabled"):
                properties[field] = {"StreamViewType": value["StreamViewType"]}
        elif field == "SSESpecification":
            sse = {name: item for name, item in value.items() if name != "Enabled"}
            properties[field] = {"SSEEnabled": bool(value.get("Enabled")), **sse}
        else:
            raise TableDefinitionError(
                f"schema/table.json: {field!r} has no AWS::DynamoDB::Table counterpart in "
                "infra/table.py; add it there"
            )
    # Whatever table.json says: the history is the product, so it survives a mistaken
    # delete (deletion protection) and a bad write (35 days of point-in-time recovery).
    properties["PointInTimeRecoverySpecification"] = {"PointInTimeRecoveryEnabled": True}
    properties["DeletionProtectionEnabled"] = True
    return properties


class HistoryTable(Construct):
    """The service's one table. RETAIN: deleting the stack leaves the table and its data."""

    def __init__(self, scope: Construct, construct_id: str, *, definition: Mapping[str, Any]):
        super().__init__(scope, construct_id)
        self.resource = CfnResource(
            self,
            "Resource",
            type="AWS::DynamoDB::Table",
            properties=table_properties(definition),
        )
        self.resource.apply_removal_policy(RemovalPolicy.RETAIN)
        self.index_names: tuple[str, ...] = tuple(
            index["IndexName"] for index in definition.get("GlobalSecondaryIndexes", ())
        )

    @property
    def table_name(self) -> str:
        return self.resource.ref

    @property
    def table_arn(self) -> str:
        return self.resource.get_att("Arn").to_string()

    def index_arn(self, index_name: str) -> str:
        # Each index by name: a `/index/*` wildcard would also cover indexes added later.
        return f"{self.table_arn}/index/{index_name}"
