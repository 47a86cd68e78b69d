"""What both shapes share: the table, the content bucket, the user pool, the alarm topic, and
the service's settings and permissions on them."""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration, Fn, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.cognito import UserPoolRef, user_pool
from infra.layout import TABLE_DEFINITION
from infra.monitoring import Alarms
from infra.options import Options
from infra.permissions import service_statements
from infra.table import HistoryTable, load_definition


class Backend(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, options: Options) -> None:
        super().__init__(scope, construct_id)
        self.table = HistoryTable(self, "Table", definition=load_definition(TABLE_DEFINITION))
        self.content_bucket = content_bucket(self)
        self.user_pool: UserPoolRef = user_pool(self, options.existing_user_pool)
        self.alarms = Alarms(self, "Alarms", email=options.alarm_email)
        self.alarms.table_throttling(self.table)

    def service_environment(self) -> dict[str, str]:
        """The service's settings (see the README's configuration table) that the stack knows."""
        return {
            "CHAT_TABLE_NAME": self.table.table_name,
            "COGNITO_USER_POOL_ID": self.user_pool.pool_id,
            "COGNITO_REGION": self.user_pool.region,
            "COGNITO_APP_CLIENT_IDS": Fn.join(",", list(self.user_pool.client_ids)),
            "CONTENT_BUCKET": self.content_bucket.bucket_name,
        }

    def grant_service(self, role: iam.IRole) -> iam.Policy:
        policy = iam.Policy(
            self,
            "ServiceAccess",
            statements=service_statements(
                table_arn=self.table.table_arn,
                index_arns=[self.table.index_arn(name) for name in self.table.index_names],
                bucket_arn=self.content_bucket.bucket_arn,
            ),
        )
        policy.attach_to_role(role)
        return policy

    def add_outputs(self, scope: Construct) -> None:
        CfnOutput(scope, "UserPoolId", value=self.user_pool.pool_id)
        CfnOutput(
            scope,
            "AppClientIds",
            value=Fn.join(",", list(self.user_pool.client_ids)),
            description="Comma-separated; the apps sign in with one of these",
        )
        CfnOutput(scope, "TableName", value=self.table.table_name)
        CfnOutput(scope, "ContentBucketName", value=self.content_bucket.bucket_name)
        CfnOutput(scope, "AlarmTopicArn", value=self.alarms.topic.topic_arn)


def content_bucket(scope: Construct) -> s3.Bucket:
    """Message content too large for a DynamoDB item; only the service reads or writes it."""
    return s3.Bucket(
        scope,
        "ContentBucket",
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        # Not versioned: deleting a conversation must delete its content, not keep a
        # noncurrent copy of it.
        versioned=False,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="AbortIncompleteUploads",
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN,
    )
