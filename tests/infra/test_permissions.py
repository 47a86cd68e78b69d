"""The service's role may do exactly what graphql_api/ does: the permissions module's action list
against the DynamoDB and S3 operations the code calls, then the policies in both templates.

The code is read, not run: every call `<anything>.<operation>(` whose name is a DynamoDB or S3
operation in botocore's service models, every `get_paginator("<operation>")`, and the item
kinds of TransactWriteItems/TransactGetItems, which IAM authorizes one by one as PutItem,
UpdateItem, ...: dict keys such as "Put" anywhere, and in a module that sends transactions any
string naming a kind.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name

from tests.infra.conftest import Synthesis, Synthesized

CODE = Path(__file__).resolve().parents[2] / "graphql_api"

# Operations the deployed service never performs, with the reason. The stacks make the table,
# so its lifecycle calls belong to the `create-table` command (run with an operator's
# credentials), the dev stack and the tests.
NOT_THE_SERVICES: Mapping[str, str] = {
    "create_table": "the create-table command and the dev stack",
    "delete_table": "the tests and the dev stack",
    "update_time_to_live": "the create-table command (CloudFormation sets the TTL)",
    "describe_time_to_live": "the create-table command",
    "create_bucket": "the dev stack (a deployment's bucket comes from the stack)",
    "update_table": "the create-table command (adds an index an older table lacks)",
    "scan": "the migrate command (backfills keys, with an operator's credentials)",
}

# Operations whose IAM action is not `<service>:<OperationName>`.
TRANSACTION_ITEMS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
    "Get": "dynamodb:GetItem",
}
SPECIAL_TRANSACTIONS = frozenset({"transact_write_items", "transact_get_items"})
SPECIAL_ACTIONS: Mapping[str, tuple[str, ...]] = {
    # Authorized item by item (see TRANSACTION_ITEMS).
    "transact_write_items": (),
    "transact_get_items": (),
    "head_object": ("s3:GetObject",),
    "delete_objects": ("s3:DeleteObject",),
    "create_multipart_upload": ("s3:PutObject",),
    "upload_part": ("s3:PutObject",),
    "complete_multipart_upload": ("s3:PutObject",),
    "abort_multipart_upload": ("s3:AbortMultipartUpload",),
    "list_objects_v2": ("s3:ListBucket",),
    "list_objects": ("s3:ListBucket",),
    "copy_object": ("s3:GetObject", "s3:PutObject"),
    # boto3's transfer helpers, which are not in the service model.
    "upload_fileobj": ("s3:PutObject",),
    "upload_file": ("s3:PutObject",),
    "download_fileobj": ("s3:GetObject",),
    "download_file": ("s3:GetObject",),
}
SERVICES = {"dynamodb": "dynamodb", "s3": "s3"}


def _operations() -> dict[str, tuple[str, ...]]:
    """Every DynamoDB and S3 client method name, with the IAM actions it needs."""
    session = botocore.session.get_session()
    operations: dict[str, tuple[str, ...]] = {}
    for service, prefix in SERVICES.items():
        for name in session.get_service_model(service).operation_names:
            operations[xform_name(name)] = (f"{prefix}:{name}",)
    return {**operations, **SPECIAL_ACTIONS}


@dataclasses.dataclass(frozen=True)
class Call:
    operation: str
    where: str


def calls_in(source: str, filename: str, operations: Iterable[str]) -> list[Call]:
    known = set(operations)
    tree = ast.parse(source, filename)
    found: list[Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name = node.func.attr
            if name in known:
                found.append(Call(name, f"{filename}:{node.lineno}"))
            elif name == "get_paginator" and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and first.value in known:
                    found.append(Call(str(first.value), f"{filename}:{node.lineno}"))
    return found + _transaction_items(tree, filename, found)


def _transaction_items(tree: ast.Module, filename: str, calls: list[Call]) -> list[Call]:
    """Item kinds of a transaction: dict keys such as {"Put": ...} anywhere, and, in a module
    that sends transactions, any string naming a kind (`self._add(name, "Put", ...)`)."""
    sends = any(call.operation in SPECIAL_TRANSACTIONS for call in calls)
    found: list[Call] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            strings = [key for key in node.keys if isinstance(key, ast.Constant)]
        elif sends and isinstance(node, ast.Constant):
            strings = [node]
        else:
            continue
        for constant in strings:
            if constant.value in TRANSACTION_ITEMS:
                where = f"{filename}:{constant.lineno}"
                found.append(Call(f"transaction item {constant.value}", where))
    return found


def required_actions(calls: Iterable[Call]) -> dict[str, list[str]]:
    """IAM action -> where the code needs it."""
    operations = _operations()
    needed: dict[str, list[str]] = {}
    for call in calls:
        if call.operation in NOT_THE_SERVICES:
            continue
        if call.operation.startswith("transaction item "):
            actions: tuple[str, ...] = (TRANSACTION_ITEMS[call.operation.split()[-1]],)
        else:
            actions = operations[call.operation]
        for action in actions:
            needed.setdefault(action, []).append(call.where)
    return needed


def code_calls() -> list[Call]:
    operations = _operations()
    calls: list[Call] = []
    for path in sorted(CODE.rglob("*.py")):
        relative = str(path.relative_to(CODE.parent))
        calls += calls_in(path.read_text(), relative, operations)
    return calls


@pytest.fixture(scope="module")
def needed() -> dict[str, list[str]]:
    return required_actions(code_calls())


def test_the_scan_finds_the_operations_the_storage_layer_is_known_to_use(
    needed: dict[str, list[str]],
) -> None:
    # If this fails the scanner is blind, and the two tests below would prove nothing.
    assert {
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:DescribeTable",
    } <= set(needed)


def test_the_scanner_reads_transactions_paginators_and_s3_calls() -> None:
    source = """
async def f(client, s3):
    await client.transact_write_items(TransactItems=[{"ConditionCheck": {}}, {"Put": {}}])
    client.get_paginator("query")
    await s3.put_object(Bucket="b", Key="k", Body=b"")
    await s3.head_object(Bucket="b", Key="k")
    await client.create_table(TableName="t")
"""
    calls = calls_in(source, "example.py", _operations())

    assert set(required_actions(calls)) == {
        "dynamodb:ConditionCheckItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "s3:PutObject",
        "s3:GetObject",
    }


def test_the_scanner_reads_item_kinds_named_in_a_module_that_sends_transactions() -> None:
    sender = """
class Transaction:
    def delete(self, key):
        self._add("Delete", {"Key": key})
    async def commit(self):
        await self.client.transact_write_items(TransactItems=self.actions)
"""
    bystander = """
LABELS = ["Update", "Delete"]  # a module that sends no transaction: words, not actions
"""
    operations = _operations()

    assert set(required_actions(calls_in(sender, "sender.py", operations))) == {
        "dynamodb:DeleteItem"
    }
    assert required_actions(calls_in(bystander, "bystander.py", operations)) == {}


def test_the_policy_grants_every_action_the_code_needs(needed: dict[str, list[str]]) -> None:
    from infra.permissions import granted_actions

    missing = {action: where for action, where in needed.items() if action not in granted_actions()}

    assert not missing, f"add these to infra/permissions.py: {missing}"


def test_the_policy_grants_nothing_the_code_does_not_call(needed: dict[str, list[str]]) -> None:
    from infra.permissions import GRANTED_AHEAD_OF_CODE, granted_actions

    unused = granted_actions() - set(needed) - set(GRANTED_AHEAD_OF_CODE)
    arrived = set(GRANTED_AHEAD_OF_CODE) & set(needed)

    assert not unused, f"nothing in graphql_api/ calls these: {sorted(unused)}"
    assert not arrived, (
        f"the code now calls {sorted(arrived)}: remove them from GRANTED_AHEAD_OF_CODE"
    )
    assert set(GRANTED_AHEAD_OF_CODE) <= granted_actions()


# --- the templates -----------------------------------------------------------------------


def _role_policies(shape: Synthesized, role_id: str) -> list[dict[str, Any]]:
    """Every statement any policy gives the role, inline or attached."""
    role = shape.resources[role_id]
    assert "ManagedPolicyArns" not in role["Properties"], f"{shape.name}: managed policies"
    statements = [
        statement
        for inline in role["Properties"].get("Policies", [])
        for statement in inline["PolicyDocument"]["Statement"]
    ]
    for policy in shape.of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"].get("Roles", []):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _service_role(shape: Synthesized, principal: str) -> str:
    roles = [
        logical_id
        for logical_id, role in shape.of_type("AWS::IAM::Role").items()
        if logical_id.startswith("ServiceRole")
        and role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        == {"Service": principal}
    ]
    assert len(roles) == 1, roles
    return roles[0]


def _only(shape: Synthesized, resource_type: str, prefix: str) -> str:
    found = [name for name in shape.of_type(resource_type) if name.startswith(prefix)]
    assert len(found) == 1, (shape.name, resource_type, found)
    return found[0]


def _expected_data_statements(shape: Synthesized) -> list[dict[str, Any]]:
    from infra.permissions import CONTENT_ACTIONS, INDEX_ACTIONS, TABLE_ACTIONS

    table = {"Fn::GetAtt": [shape.only("AWS::DynamoDB::Table")[0], "Arn"]}
    bucket = {"Fn::GetAtt": [_only(shape, "AWS::S3::Bucket", "BackendContentBucket"), "Arn"]}
    indexes = [
        index["IndexName"]
        for index in shape.only("AWS::DynamoDB::Table")[1]["Properties"]["GlobalSecondaryIndexes"]
    ]
    index_arns = [{"Fn::Join": ["", [table, f"/index/{name}"]]} for name in indexes]
    return [
        {"Sid": "Table", "Effect": "Allow", "Action": list(TABLE_ACTIONS), "Resource": table},
        {
            "Sid": "Indexes",
            "Effect": "Allow",
            "Action": INDEX_ACTIONS[0] if len(INDEX_ACTIONS) == 1 else list(INDEX_ACTIONS),
            "Resource": index_arns[0] if len(index_arns) == 1 else index_arns,
        },
        {
            "Sid": "ContentObjects",
            "Effect": "Allow",
            "Action": list(CONTENT_ACTIONS),
            "Resource": {"Fn::Join": ["", [bucket, "/*"]]},
        },
    ]


def _no_wildcards(statements: list[dict[str, Any]]) -> None:
    for statement in statements:
        actions = statement["Action"]
        for action in [actions] if isinstance(actions, str) else actions:
            assert "*" not in action, statement
        text = json.dumps(statement["Resource"])
        # The one wildcard is the object-key part of the content bucket's ARN.
        assert text.count("*") == (1 if statement["Sid"] == "ContentObjects" else 0), statement


def test_the_lambda_role_has_the_data_statements_and_its_own_log_group(
    serverless: Synthesized,
) -> None:
    role = _service_role(serverless, "lambda.amazonaws.com")
    statements = _role_policies(serverless, role)
    log_group = _only(serverless, "AWS::Logs::LogGroup", "FunctionLogs")

    assert sorted(statements, key=lambda s: s["Sid"]) == sorted(
        [
            *_expected_data_statements(serverless),
            {
                "Sid": "Logs",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": {"Fn::GetAtt": [log_group, "Arn"]},
            },
        ],
        key=lambda s: s["Sid"],
    )
    _no_wildcards(statements)
    function = serverless.only("AWS::Lambda::Function")[1]
    assert function["Properties"]["Role"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_task_role_has_the_data_statements_only(container: Synthesized) -> None:
    role = _service_role(container, "ecs-tasks.amazonaws.com")
    statements = _role_policies(container, role)

    assert statements == _expected_data_statements(container)
    _no_wildcards(statements)
    task = container.only("AWS::ECS::TaskDefinition")[1]
    assert task["Properties"]["TaskRoleArn"] == {"Fn::GetAtt": [role, "Arn"]}


def test_the_policies_use_cdk_assertions_too(synthesis: Synthesis) -> None:
    from aws_cdk.assertions import Match

    for shape in synthesis.both:
        shape.template.has_resource_properties(
            "AWS::IAM::Policy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {"Sid": "Table", "Action": Match.array_with(["dynamodb:Query"])}
                            )
                        ]
                    )
                }
            },
        )
        assert "dynamodb:Scan" not in json.dumps(shape.json)
