"""Alarms, all sent to one SNS topic (subscribe to it, or give `-c alarmEmail=...`)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.table import HistoryTable

PERIOD = Duration.minutes(5)
# A few 5xx in five minutes: the service answers 503 while DynamoDB is unavailable, and
# clients retry, so one is noise and a handful is an incident.
SERVER_ERRORS_THRESHOLD = 5


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, email: str | None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

    def alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No requests means no errors, not an unknown state.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm

    def table_throttling(self, table: HistoryTable) -> cloudwatch.Alarm:
        """Any throttled read or write, on the table or any of its indexes.

        The service retries throttled calls, so a client may not notice; a throttle on an
        on-demand table still means traffic outran what the table has scaled to.
        """
        metrics: dict[str, cloudwatch.IMetric] = {}
        dimension_sets: list[dict[str, str]] = [{"TableName": table.table_name}]
        dimension_sets += [
            {"TableName": table.table_name, "GlobalSecondaryIndexName": name}
            for name in table.index_names
        ]
        for dimensions in dimension_sets:
            for metric_name in ("ReadThrottleEvents", "WriteThrottleEvents"):
                metrics[f"m{len(metrics)}"] = cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=metric_name,
                    dimensions_map=dimensions,
                    statistic="Sum",
                    period=PERIOD,
                )
        # DynamoDB emits these only when something was throttled, and `a + b` is missing
        # wherever one side is: fill the gaps with 0, then add.
        filled = ", ".join(f"FILL({name}, 0)" for name in metrics)
        total = cloudwatch.MathExpression(
            expression=f"SUM([{filled}])",
            using_metrics=metrics,
            label="Throttled reads and writes (table and indexes)",
            period=PERIOD,
        )
        return self.alarm(
            "TableThrottling",
            total,
            threshold=1,
            description="DynamoDB throttled reads or writes on the chat-history table or its "
            "indexes in the last 5 minutes.",
        )
