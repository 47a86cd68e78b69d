"""The seed's shape: the ASGI app in AWS Lambda (via Mangum) behind an API Gateway HTTP API.

API Gateway checks every request's token with a Cognito JWT authorizer before it costs an
invocation; the service verifies it again, so a route added without the authorizer is still
closed. WebSocket subscriptions cannot run here (a Lambda invocation ends with its response):
clients of this shape poll `changes(since:)` instead; the container shape has them.

With `-c rateLimits=true`, the per-user limits live in an ElastiCache Serverless (Valkey) that
every instance of the function shares, and the function runs in a VPC to reach it (see
`RateLimitCache`); without it, each instance keeps its own budgets.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_cdk import Annotations, CfnOutput, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigateway
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.backend import Backend
from infra.lambda_package import LAMBDA_PYTHON
from infra.layout import LAMBDA_DEPS, LAMBDA_DEPS_PLACEHOLDER, REPO_ROOT, lambda_deps_built
from infra.monitoring import PERIOD, SERVER_ERRORS_THRESHOLD
from infra.options import Options
from infra.rate_limits import RateLimitCache

HANDLER = "graphql_api.aws_lambda.handler"
# CPU is allotted in proportion to memory and reaches one full vCPU at 1,769 MB. The service is
# one Python thread, so below that its cold start (imports, schema build: CPU-bound) and every
# request stretch; above it, a second vCPU would sit idle. CPU-bound work costs the same
# GB-seconds at any size below one vCPU, so this buys latency for little money.
MEMORY_MB = 1769
# Above the service's own bounds (DYNAMODB_DEADLINE_SECONDS 10 s, a JWKS fetch 5 s), so the
# service always answers, 503 at worst, before Lambda would kill it; below API Gateway's 30 s.
TIMEOUT = Duration.seconds(15)
# Paths that answer without a token (the service does not ask for one either).
PUBLIC_ROUTES = ("/healthz", "/readyz")
# Requests per second, and the burst above it, for the whole stage.
THROTTLE_RATE = 200
THROTTLE_BURST = 400
LOG_RETENTION = logs.RetentionDays.ONE_MONTH

# The layer is built for this version by `make lambda-package`: one constant for both.
RUNTIME = lambda_.Runtime(
    "python{}.{}".format(*LAMBDA_PYTHON), lambda_.RuntimeFamily.PYTHON, supports_inline_code=True
)


class ServerlessStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, options: Options) -> None:
        # No `env`: the templates are account- and region-agnostic, and nothing is looked up.
        super().__init__(scope, construct_id)
        self.backend = Backend(self, "Backend", options=options)
        self.rate_limits = (
            RateLimitCache(self, "RateLimits", own_user_pool=options.existing_user_pool is None)
            if options.rate_limits
            else None
        )
        self.function = self._function(options)
        self.api = self._api()
        self._alarms()
        self.backend.add_outputs(self)
        CfnOutput(self, "ApiUrl", value=f"{self.api.api_endpoint}/graphql")

    def _function(self, options: Options) -> lambda_.Function:
        log_group = logs.LogGroup(self, "FunctionLogs", retention=LOG_RETENTION)
        role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="The chat-history service in Lambda: its table, bucket and log group",
        )
        # Instead of AWSLambdaBasicExecutionRole, which may write to every log group (`*`):
        # this group only.
        # Lambda names the streams, so the grant is on the group's ARN, streams included.
        role.add_to_policy(
            iam.PolicyStatement(
                sid="Logs",
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn],
            )
        )
        access = self.backend.grant_service(role)
        environment = self.backend.service_environment()
        network: dict[str, Any] = {}
        if self.rate_limits is not None:
            environment.update(self.rate_limits.service_environment())
            network = self.rate_limits.function_network()
        function = lambda_.Function(
            self,
            "Service",
            runtime=RUNTIME,
            architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER,
            code=function_code(),
            layers=[self._dependencies()],
            memory_size=MEMORY_MB,
            timeout=TIMEOUT,
            role=role,
            log_group=log_group,
            environment=environment,
            # Reserved, hence also a cap: beyond it Lambda throttles invocations instead of
            # starting more instances, so a flood's cost has a ceiling (infra/README.md).
            reserved_concurrent_executions=options.reserved_concurrency,
            description="chat-history-api (GraphQL) via Mangum",
            **network,
        )
        # CloudFormation would otherwise create the function (and the API could route to it)
        # before this policy is attached, and the first requests would be denied.
        function.node.add_dependency(access)
        if self.rate_limits is not None:
            # Lambda checks, as it creates the function, that its role may attach it to the VPC.
            function.node.add_dependency(self.rate_limits.grant_network_interfaces(role))
        return function

    def _dependencies(self) -> lambda_.LayerVersion:
        if lambda_deps_built():
            code = lambda_.Code.from_asset(str(LAMBDA_DEPS))
        else:
            code = lambda_.Code.from_asset(str(LAMBDA_DEPS_PLACEHOLDER))
            Annotations.of(self).add_warning_v2(
                "chat-history:lambda-deps-placeholder",
                "The Lambda layer is a PLACEHOLDER without the service's packages: run "
                "`make lambda-package` before deploying, or the function fails at init.",
            )
        return lambda_.LayerVersion(
            self,
            "Dependencies",
            code=code,
            compatible_runtimes=[RUNTIME],
            compatible_architectures=[lambda_.Architecture.ARM_64],
            description="chat-history-api's third-party packages (make lambda-package)",
        )

    def _api(self) -> apigateway.HttpApi:
        pool = self.backend.user_pool
        authorizer = authorizers.HttpJwtAuthorizer(
            "Cognito",
            jwt_issuer=pool.issuer,
            # Cognito access tokens carry `client_id` instead of `aud`; API Gateway checks
            # whichever is present against these.
            jwt_audience=list(pool.client_ids),
        )
        integration = integrations.HttpLambdaIntegration(
            "Service",
            self.function,
            payload_format_version=apigateway.PayloadFormatVersion.VERSION_2_0,
        )
        api = apigateway.HttpApi(
            self,
            "Api",
            description="chat-history-api",
            # Every path reaches the service behind the authorizer (GraphQL today, the REST
            # routes as they come), except the health checks below.
            default_integration=integration,
            default_authorizer=authorizer,
            create_default_stage=False,
        )
        for path in PUBLIC_ROUTES:
            api.add_routes(
                path=path,
                methods=[apigateway.HttpMethod.GET],
                integration=integration,
                authorizer=apigateway.HttpNoneAuthorizer(),
            )
        access_logs = logs.LogGroup(self, "ApiAccessLogs", retention=LOG_RETENTION)
        apigateway.CfnStage(
            self,
            "DefaultStage",
            api_id=api.api_id,
            stage_name="$default",
            auto_deploy=True,
            # A stage-wide cap, so a runaway client cannot run up the bill (HTTP APIs cannot
            # throttle per client).
            default_route_settings=apigateway.CfnStage.RouteSettingsProperty(
                throttling_rate_limit=THROTTLE_RATE, throttling_burst_limit=THROTTLE_BURST
            ),
            access_log_settings=apigateway.CfnStage.AccessLogSettingsProperty(
                destination_arn=access_logs.log_group_arn, format=json.dumps(ACCESS_LOG_FORMAT)
            ),
        )
        return api

    def _alarms(self) -> None:
        alarms = self.backend.alarms
        alarms.alarm(
            "Api5xx",
            self.api.metric_server_error(period=PERIOD, statistic="Sum"),
            threshold=SERVER_ERRORS_THRESHOLD,
            description="The HTTP API answered 5xx (from the service or the integration).",
        )
        alarms.alarm(
            "FunctionErrors",
            self.function.metric_errors(period=PERIOD, statistic="Sum"),
            threshold=1,
            description="The function crashed or timed out (the service's own 5xx are "
            "answers, counted by Api5xx).",
        )
        alarms.alarm(
            "FunctionThrottles",
            self.function.metric_throttles(period=PERIOD, statistic="Sum"),
            threshold=1,
            description="Lambda refused invocations: the function's reserved concurrency (or "
            "the account's) is exhausted.",
        )


# One JSON line per request; no headers, so no token ever reaches the logs.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTime",
    "method": "$context.httpMethod",
    "path": "$context.path",
    "status": "$context.status",
    "latencyMs": "$context.responseLatency",
    "integrationLatencyMs": "$context.integrationLatency",
    "integrationError": "$context.integrationErrorMessage",
    "authorizerError": "$context.authorizer.error",
    "sourceIp": "$context.identity.sourceIp",
    "userAgent": "$context.identity.userAgent",
    "sub": "$context.authorizer.claims.sub",
}


def function_code() -> lambda_.AssetCode:
    """The `graphql_api` package from the working tree, and nothing else of the repository.

    Third-party packages come from the layer, so a code change re-uploads ~200 KB.
    """
    others = sorted(name for name in os.listdir(REPO_ROOT) if name != "graphql_api")
    return lambda_.Code.from_asset(
        str(REPO_ROOT),
        exclude=[*others, "**/__pycache__", "**/*.pyc"],
    )
