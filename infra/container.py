"""The container shape: the Dockerfile's image on ECS Fargate behind an Application Load
Balancer, which carries HTTP and WebSocket alike, with ElastiCache (Valkey) through which the
service's instances fan subscriptions out to each other.

Traffic: internet -> ALB (public subnets) -> tasks (private subnets, 8000) -> DynamoDB and S3
through free gateway endpoints, everything else of AWS (Cognito's signing keys, ECR, logs)
through one NAT gateway; tasks -> Valkey (isolated subnets, 6379, TLS, an AUTH token).
"""

from __future__ import annotations

from aws_cdk import Annotations, CfnOutput, Duration, Fn, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.backend import Backend
from infra.layout import REPO_ROOT
from infra.monitoring import PERIOD, SERVER_ERRORS_THRESHOLD
from infra.options import Options
from infra.valkey import auth_token

SERVICE_PORT = 8000
CACHE_PORT = 6379
# Graviton, as the Lambda shape: 20% cheaper than x86_64 per vCPU-hour, and the apps' team
# builds on Apple silicon, where an arm64 image builds natively (x86_64 hosts need QEMU).
PLATFORM = ecr_assets.Platform.LINUX_ARM64
# Half a vCPU runs one uvicorn worker at the request rates of a chat app's history screens;
# scale out on CPU rather than up.
TASK_CPU = 512
TASK_MEMORY_MIB = 1024
# Two tasks, one per AZ, so losing a task or an AZ keeps the service up.
MIN_TASKS = 2
MAX_TASKS = 10
# Long-lived WebSocket subscriptions: the ALB closes a connection idle for this long (its
# default is 60 s). Clients should still ping well within it: mobile networks cut sooner.
IDLE_TIMEOUT = Duration.seconds(3600)
CACHE_NODE_TYPE = "cache.t4g.micro"
LOG_RETENTION = logs.RetentionDays.ONE_MONTH
PLAIN_HTTP_REFUSED = (
    "No certificateArn: the load balancer would carry bearer tokens over plain HTTP. Give "
    "-c certificateArn=<an ACM certificate's ARN> (HTTPS on 443, 80 redirects to it), or "
    "-c allowPlainHttp=true for a trial whose tokens may cross the internet in clear text."
)


class ContainerStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, options: Options) -> None:
        # No `env`: the templates are account- and region-agnostic, and nothing is looked up
        # (the VPC uses the region's first two AZs by Fn::GetAZs).
        super().__init__(scope, construct_id)
        self.backend = Backend(self, "Backend", options=options)
        self.vpc = network(self)
        self.service_security_group = ec2.SecurityGroup(
            self,
            "ServiceSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="chat-history tasks: in from the ALB only",
        )
        # HTTPS to AWS's APIs; DNS goes to the VPC resolver, which security groups do not filter.
        self.service_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (DynamoDB, S3, Cognito, ECR, logs)"
        )
        environment = self.backend.service_environment()
        environment["AWS_REGION"] = self.region
        cache_token: secretsmanager.Secret | None = None
        if options.broadcast:
            cache_url, cache_token = self._cache()
            # One Valkey for both: the fan-out's pub/sub and the per-user limits' budgets.
            environment["BROADCAST_URL"] = cache_url
            environment["RATE_LIMIT_URL"] = cache_url
        self.service = self._service(environment, cache_token)
        self.load_balancer, self.target_group, scheme = self._load_balancer(options)
        self._alarms()
        self.backend.add_outputs(self)
        CfnOutput(
            self,
            "ApiUrl",
            value=f"{scheme}://{self.load_balancer.load_balancer_dns_name}/graphql",
        )

    def _cache(self) -> tuple[str, secretsmanager.Secret]:
        """A one-node Valkey for pub/sub and the rate limits: its URL, and its AUTH token.

        One node: the change log in DynamoDB is the source of truth, so losing the node only
        delays live delivery until subscribers catch up from the log, and the limits fall back
        to each task's own until it returns; nothing in it outlives a minute's budget, so it
        keeps no snapshots.
        """
        security_group = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="chat-history Valkey: in from the tasks only",
        )
        security_group.add_ingress_rule(
            self.service_security_group, ec2.Port.tcp(CACHE_PORT), "tasks"
        )
        self.service_security_group.add_egress_rule(
            security_group, ec2.Port.tcp(CACHE_PORT), "Valkey"
        )
        subnets = elasticache.CfnSubnetGroup(
            self,
            "CacheSubnets",
            description="chat-history Valkey (isolated subnets)",
            subnet_ids=self.vpc.select_subnets(
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED
            ).subnet_ids,
        )
        token = auth_token(self, "CacheAuthToken", description="chat-history Valkey AUTH token")
        cache = elasticache.CfnReplicationGroup(
            self,
            "Cache",
            replication_group_description="chat-history fan-out and rate limits",
            engine="valkey",
            engine_version="8.0",
            cache_node_type=CACHE_NODE_TYPE,
            num_cache_clusters=1,
            automatic_failover_enabled=False,
            port=CACHE_PORT,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[security_group.security_group_id],
            at_rest_encryption_enabled=True,
            # Change announcements carry only ids and versions, but a streaming answer's deltas
            # travel with their text (pub/sub stores nothing, yet it is on the wire), and user
            # ids and activity are worth keeping off it too, hence rediss:// below.
            transit_encryption_enabled=True,
            # Anything that reaches the port (the security group is the first fence) must also
            # know the token before it can read or spend a user's budget. CloudFormation
            # resolves this reference at deploy time: the template holds only the secret's ARN.
            auth_token=token.secret_value.unsafe_unwrap(),
            snapshot_retention_limit=0,
            auto_minor_version_upgrade=True,
        )
        url = Fn.join(
            "",
            [
                "rediss://",
                cache.attr_primary_end_point_address,
                ":",
                cache.attr_primary_end_point_port,
            ],
        )
        return url, token

    def _service(
        self, environment: dict[str, str], cache_token: secretsmanager.Secret | None
    ) -> ecs.FargateService:
        task_role = iam.Role(
            self,
            "ServiceRole",
            assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"),
            description="The chat-history service's tasks: its table and bucket only",
        )
        access = self.backend.grant_service(task_role)
        task = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=TASK_CPU,
            memory_limit_mib=TASK_MEMORY_MIB,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
            task_role=task_role,
        )
        task.add_container(
            "Service",
            # Built and pushed by `cdk deploy` (Docker needed then, not at synthesis); the
            # build context is what .dockerignore lets through.
            image=ecs.ContainerImage.from_asset(str(REPO_ROOT), platform=PLATFORM),
            # The image's arguments, plus connections kept open longer than the ALB keeps them
            # idle: the ALB must always be the side that closes one.
            command=[
                "--host",
                "0.0.0.0",  # noqa: S104 - inside the task; only the ALB's group reaches it
                "--port",
                str(SERVICE_PORT),
                "--timeout-keep-alive",
                str(int(IDLE_TIMEOUT.to_seconds()) + 60),
            ],
            environment=environment,
            port_mappings=[ecs.PortMapping(container_port=SERVICE_PORT)],
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="service",
                log_group=logs.LogGroup(self, "ServiceLogs", retention=LOG_RETENTION),
            ),
            # The service writes no files.
            readonly_root_filesystem=True,
            # `serve` lets requests finish within 20 s of SIGTERM; this is the hard stop.
            stop_timeout=Duration.seconds(30),
        )
        if cache_token is not None:
            self._inject(task, "REDIS_AUTH_TOKEN", cache_token)
        cluster = ecs.Cluster(self, "Cluster", vpc=self.vpc)
        service = ecs.FargateService(
            self,
            "Service",
            cluster=cluster,
            task_definition=task,
            desired_count=MIN_TASKS,
            min_healthy_percent=100,
            max_healthy_percent=200,
            security_groups=[self.service_security_group],
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            assign_public_ip=False,
            # A deployment whose tasks never turn healthy rolls back by itself.
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=Duration.seconds(60),
        )
        # Tasks started before the policy is attached would fail /readyz, and the circuit
        # breaker could roll the first deployment back.
        service.node.add_dependency(access)
        scaling = service.auto_scale_task_count(min_capacity=MIN_TASKS, max_capacity=MAX_TASKS)
        scaling.scale_on_cpu_utilization("Cpu", target_utilization_percent=60)
        return service

    @staticmethod
    def _inject(
        task: ecs.FargateTaskDefinition, variable: str, secret: secretsmanager.Secret
    ) -> None:
        """ECS reads `secret` when it starts a task and hands it to the service as `variable`:
        it never sits in the task definition.

        Instead of `secrets=` on the container, whose grant adds DescribeSecret: starting a task
        needs GetSecretValue alone, by the execution role (the service's own role gets nothing).
        """
        definition = task.node.default_child
        assert isinstance(definition, ecs.CfnTaskDefinition)
        definition.add_property_override(
            "ContainerDefinitions.0.Secrets", [{"Name": variable, "ValueFrom": secret.secret_arn}]
        )
        task.obtain_execution_role().add_to_principal_policy(
            iam.PolicyStatement(
                sid="ReadCacheAuthToken",
                actions=["secretsmanager:GetSecretValue"],
                resources=[secret.secret_arn],
            )
        )

    def _load_balancer(
        self, options: Options
    ) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup, str]:
        security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="chat-history ALB: HTTP(S) from anywhere, out to the tasks only",
        )
        load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=self.vpc,
            internet_facing=True,
            security_group=security_group,
            idle_timeout=IDLE_TIMEOUT,
            drop_invalid_header_fields=True,
        )
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=self.vpc,
            port=SERVICE_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            targets=[self.service],
            health_check=elbv2.HealthCheck(
                # Readiness: the table answers and the signing keys are loaded. A task that
                # loses DynamoDB leaves rotation without being restarted.
                path="/readyz",
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            # Long enough for in-flight requests; subscriptions reconnect (with `since`) to
            # another task.
            deregistration_delay=Duration.seconds(30),
        )
        if options.certificate_arn:
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS")
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "redirect")
            load_balancer.add_listener(
                "Https",
                port=443,
                open=False,
                certificates=[
                    acm.Certificate.from_certificate_arn(
                        self, "Certificate", options.certificate_arn
                    )
                ],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_target_groups=[target_group],
            )
            load_balancer.add_redirect(source_port=80, target_port=443, open=False)
            scheme = "https"
        else:
            # An error on this stack alone: `cdk deploy ChatHistoryServerless` still works
            # without a certificate, while this stack refuses to synthesize or deploy.
            if not options.allow_plain_http:
                Annotations.of(self).add_error(PLAIN_HTTP_REFUSED)
            security_group.add_ingress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "HTTP")
            load_balancer.add_listener(
                "Http", port=80, open=False, default_target_groups=[target_group]
            )
            scheme = "http"
        return load_balancer, target_group, scheme

    def _alarms(self) -> None:
        alarms = self.backend.alarms
        metrics = self.load_balancer.metrics
        alarms.alarm(
            "Target5xx",
            metrics.http_code_target(
                elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=PERIOD, statistic="Sum"
            ),
            threshold=SERVER_ERRORS_THRESHOLD,
            description="The service answered 5xx through the ALB.",
        )
        alarms.alarm(
            "LoadBalancer5xx",
            metrics.http_code_elb(elbv2.HttpCodeElb.ELB_5XX_COUNT, period=PERIOD, statistic="Sum"),
            threshold=SERVER_ERRORS_THRESHOLD,
            description="The ALB itself answered 5xx (no healthy task, a task reset the "
            "connection, ...).",
        )
        alarms.alarm(
            "UnhealthyTasks",
            self.target_group.metrics.unhealthy_host_count(period=PERIOD, statistic="Maximum"),
            threshold=1,
            description="A task fails /readyz (DynamoDB or the signing keys unreachable).",
        )


def network(scope: Construct) -> ec2.Vpc:
    return ec2.Vpc(
        scope,
        "Vpc",
        max_azs=2,
        # One NAT gateway, the shape's largest fixed cost; losing its AZ cuts the other AZ's
        # tasks off from Cognito and ECR until it returns (DynamoDB and S3 go on through the
        # gateway endpoints). Two cost another ~$33 a month.
        nat_gateways=1,
        subnet_configuration=[
            ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
            ec2.SubnetConfiguration(
                name="Service", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22
            ),
            ec2.SubnetConfiguration(
                name="Cache", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
            ),
        ],
        # Free, and they keep table and bucket traffic off the NAT's per-GB charge.
        gateway_endpoints={
            "DynamoDB": ec2.GatewayVpcEndpointOptions(
                service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
            ),
            "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
        },
    )
