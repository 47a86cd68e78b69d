"""What the service's role may do: the one list of actions, and the statements built from it.

Both shapes grant exactly these, on exactly the table, its indexes by name and the content
bucket's objects. tests/infra/test_permissions.py reads graphql_api/ for the DynamoDB and S3
operations it calls and fails when this list misses one or grants one nothing calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_cdk import aws_iam as iam

TABLE_ACTIONS: tuple[str, ...] = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    # TransactWriteItems has no action of its own: IAM checks each Put, Update and Delete in
    # it as PutItem, UpdateItem and DeleteItem.
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    # /readyz
    "dynamodb:DescribeTable",
)
# A Query is the only operation an index answers.
INDEX_ACTIONS: tuple[str, ...] = ("dynamodb:Query",)
CONTENT_ACTIONS: tuple[str, ...] = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")

# Granted before the code that needs them has landed, each with the reason; the permissions
# test fails once the code calls one, so this stays empty unless a feature is half-way in.
GRANTED_AHEAD_OF_CODE: Mapping[str, str] = {}


def granted_actions() -> frozenset[str]:
    return frozenset((*TABLE_ACTIONS, *INDEX_ACTIONS, *CONTENT_ACTIONS))


def service_statements(
    *, table_arn: str, index_arns: Iterable[str], bucket_arn: str
) -> list[iam.PolicyStatement]:
    statements = [
        iam.PolicyStatement(sid="Table", actions=list(TABLE_ACTIONS), resources=[table_arn]),
        iam.PolicyStatement(
            sid="ContentObjects",
            actions=list(CONTENT_ACTIONS),
            # An object ARN names keys, so this is the one wildcard: every object of the
            # service's own bucket, and nothing else of S3 (no listing, no bucket settings).
            resources=[f"{bucket_arn}/*"],
        ),
    ]
    indexes = list(index_arns)
    if indexes:
        statements.insert(
            1, iam.PolicyStatement(sid="Indexes", actions=list(INDEX_ACTIONS), resources=indexes)
        )
    return statements
