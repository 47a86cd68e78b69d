"""The table in both templates is schema/table.json, field by field, plus the stack's own policy
(on-demand, point-in-time recovery, deletion protection, RETAIN, no stream)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import Synthesis

TABLE_JSON = Path(__file__).resolve().parents[2] / "schema" / "table.json"
# Set by the stack whatever table.json says.
STACK_POLICY = {
    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    "DeletionProtectionEnabled": True,
}


def _definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(TABLE_JSON.read_text())
    return definition


def _in_cloudformation(field: str, value: Any) -> tuple[str, Any] | None:
    """How a CreateTable field reads in AWS::DynamoDB::Table (None: absent)."""
    if field == "StreamSpecification":
        if not value.get("StreamEnabled"):
            return None
        return field, {"StreamViewType": value["StreamViewType"]}
    if field == "SSESpecification":
        rest = {name: item for name, item in value.items() if name != "Enabled"}
        return field, {"SSEEnabled": bool(value.get("Enabled")), **rest}
    return field, value


def _expected(definition: dict[str, Any]) -> dict[str, Any]:
    expected: dict[str, Any] = {}
    for field, value in definition.items():
        if field == "TableName":
            continue
        translated = _in_cloudformation(field, value)
        if translated is not None:
            expected[translated[0]] = translated[1]
    return {**expected, **STACK_POLICY}


def test_every_field_of_table_json_is_the_templates(synthesis: Synthesis) -> None:
    expected = _expected(_definition())
    for shape in synthesis.both:
        _, table = shape.only("AWS::DynamoDB::Table")
        properties = table["Properties"]
        for field, value in expected.items():
            assert properties.get(field) == value, f"{shape.name}: {field}"
        # Nothing beyond table.json and the stack's policy: no stray stream, index or name.
        assert set(properties) == set(expected), shape.name


def test_every_index_has_its_keys_and_projection(synthesis: Synthesis) -> None:
    indexes = _definition().get("GlobalSecondaryIndexes", [])
    assert indexes, "table.json has no index: the home screen's GSI1 is missing"
    for shape in synthesis.both:
        _, table = shape.only("AWS::DynamoDB::Table")
        deployed = {
            index["IndexName"]: index
            for index in table["Properties"].get("GlobalSecondaryIndexes", [])
        }
        assert set(deployed) == {index["IndexName"] for index in indexes}, shape.name
        for index in indexes:
            mine = deployed[index["IndexName"]]
            assert mine["KeySchema"] == index["KeySchema"], (shape.name, index["IndexName"])
            assert mine["Projection"] == index["Projection"], (shape.name, index["IndexName"])


def test_the_table_is_on_demand_recoverable_protected_retained_and_streamless(
    synthesis: Synthesis,
) -> None:
    for shape in synthesis.both:
        shape.template.has_resource(
            "AWS::DynamoDB::Table",
            {
                "DeletionPolicy": "Retain",
                "UpdateReplacePolicy": "Retain",
                "Properties": {
                    "BillingMode": "PAY_PER_REQUEST",
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "DeletionProtectionEnabled": True,
                },
            },
        )
        _, table = shape.only("AWS::DynamoDB::Table")
        # The sync design keeps a change log in the table; nothing reads a stream.
        assert "StreamSpecification" not in table["Properties"], shape.name
        # CloudFormation names the table; the service gets the name from the stack.
        assert "TableName" not in table["Properties"], shape.name


def test_a_ttl_a_new_index_and_a_stream_in_table_json_reach_the_table() -> None:
    from infra.table import table_properties

    definition = copy.deepcopy(_definition())
    definition["TimeToLiveSpecification"] = {"AttributeName": "ttl", "Enabled": True}
    definition["AttributeDefinitions"].append({"AttributeName": "GSI2PK", "AttributeType": "S"})
    definition["GlobalSecondaryIndexes"].append(
        {
            "IndexName": "GSI2",
            "KeySchema": [{"AttributeName": "GSI2PK", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["title"]},
        }
    )
    definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    definition["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}

    assert table_properties(definition) == _expected(definition)


def test_a_field_the_stack_does_not_know_stops_synthesis() -> None:
    from infra.table import TableDefinitionError, table_properties

    definition = {**_definition(), "ResourcePolicy": "{}"}

    with pytest.raises(TableDefinitionError, match="ResourcePolicy"):
        table_properties(definition)
