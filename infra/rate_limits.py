"""The serverless shape's shared rate limits (`-c rateLimits=true`): an ElastiCache Serverless
(Valkey) cache, and the VPC the function must then run in to reach it.

Without it, every Lambda instance keeps its own budgets: a user's requests spread over N warm
instances get up to N times their limit, so the limit bounds a burst, not a user.

The network, at the least it costs (us-east-1 prices in infra/README.md):
- DynamoDB and S3 through gateway endpoints: free.
- Cognito, whose signing keys the service fetches at init, through an interface endpoint
  (PrivateLink, ~$7.30 a month per AZ) when the stack created the pool: that pool is in the
  stack's region and has no domain, the two conditions under which Cognito serves a pool
  through PrivateLink. An existing pool may be elsewhere or have a domain, so then the
  function reaches Cognito through one NAT gateway instead (~$36.50 a month with its IPv4).
- Nothing else: Lambda ships the function's logs itself, outside the VPC.
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Fn, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.valkey import auth_token

CACHE_PORT = 6379
# The user the service signs in as (RBAC is the only access control a serverless cache has);
# the URL names it and REDIS_AUTH_TOKEN carries its password.
SERVICE_USER = "chat-history"
# Ceilings on what the cache may grow to, so it is bounded like the function: budgets are a few
# bytes per active user, so 1 GB is far beyond need; 5,000 ECPUs a second is ~2,500 limit
# checks a second, above the stage's throttle (200 requests a second). At the ceilings it costs
# $0.084 an hour for storage and $0.04 for ECPUs; at rest, the 100 MB minimum: $0.0084 an hour.
MAX_DATA_STORAGE_GB = 1
MAX_ECPU_PER_SECOND = 5000


class RateLimitCache(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, own_user_pool: bool) -> None:
        super().__init__(scope, construct_id)
        prefix = Stack.of(self).stack_name.lower()
        self.vpc = _network(self, private_cognito=own_user_pool)
        self.function_subnets = ec2.SubnetSelection(subnet_group_name="Function")
        self.function_security_group = ec2.SecurityGroup(
            self,
            "FunctionSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="chat-history function: out to the AWS APIs and the Valkey only",
        )
        self.function_security_group.add_egress_rule(
            ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "AWS APIs (DynamoDB, S3, Cognito)"
        )
        if own_user_pool:
            cognito = self.vpc.add_interface_endpoint(
                "Cognito",
                service=ec2.InterfaceVpcEndpointAwsService.COGNITO_IDP,
                subnets=self.function_subnets,
                # The service fetches https://cognito-idp.<region>.amazonaws.com/... as anywhere.
                private_dns_enabled=True,
                open=False,
            )
            cognito.connections.allow_default_port_from(self.function_security_group, "function")
        cache_security_group = ec2.SecurityGroup(
            self,
            "CacheSecurityGroup",
            vpc=self.vpc,
            allow_all_outbound=False,
            description="chat-history rate-limit Valkey: in from the function only",
        )
        cache_security_group.add_ingress_rule(
            self.function_security_group, ec2.Port.tcp(CACHE_PORT), "function"
        )
        self.function_security_group.add_egress_rule(
            cache_security_group, ec2.Port.tcp(CACHE_PORT), "Valkey"
        )
        self.token = auth_token(
            self, "AuthToken", description="chat-history rate-limit Valkey: the service's password"
        )
        password = self.token.secret_value.unsafe_unwrap()
        service = _user(
            self, "ServiceUser", f"{prefix}-service", SERVICE_USER, "on ~* &* +@all", password
        )
        # A group must hold a user named `default`, the one a client without a name signs in
        # as: this one may do nothing.
        default = _user(self, "DefaultUser", f"{prefix}-default", "default", "off -@all", password)
        users = elasticache.CfnUserGroup(
            self,
            "Users",
            engine="valkey",
            user_group_id=prefix,
            user_ids=[service.ref, default.ref],
        )
        self.cache = elasticache.CfnServerlessCache(
            self,
            "Cache",
            serverless_cache_name=prefix,
            description="chat-history per-user rate limits",
            engine="valkey",
            major_engine_version="8",
            subnet_ids=self.vpc.select_subnets(subnet_group_name="Cache").subnet_ids,
            security_group_ids=[cache_security_group.security_group_id],
            user_group_id=users.ref,
            cache_usage_limits=elasticache.CfnServerlessCache.CacheUsageLimitsProperty(
                data_storage=elasticache.CfnServerlessCache.DataStorageProperty(
                    maximum=MAX_DATA_STORAGE_GB, unit="GB"
                ),
                ecpu_per_second=elasticache.CfnServerlessCache.ECPUPerSecondProperty(
                    maximum=MAX_ECPU_PER_SECOND
                ),
            ),
        )

    def service_environment(self) -> dict[str, str]:
        """RATE_LIMIT_URL, and REDIS_AUTH_TOKEN, which CloudFormation resolves from Secrets
        Manager at deploy time: the template holds only the secret's ARN, but the function's
        configuration holds the value (fetching it at init would cost another interface
        endpoint, ~$14.60 a month, to guard the same cache)."""
        url = Fn.join(
            "",
            [
                f"rediss://{SERVICE_USER}@",
                self.cache.attr_endpoint_address,
                ":",
                self.cache.attr_endpoint_port,
            ],
        )
        return {
            "RATE_LIMIT_URL": url,
            "REDIS_AUTH_TOKEN": self.token.secret_value.unsafe_unwrap(),
        }

    def function_network(self) -> dict[str, Any]:
        """The lambda_.Function keywords that put it in the VPC."""
        return {
            "vpc": self.vpc,
            "vpc_subnets": self.function_subnets,
            "security_groups": [self.function_security_group],
        }

    def grant_network_interfaces(self, role: iam.IRole) -> iam.Policy:
        """What Lambda needs of the role to attach the function to the VPC: the ENI actions of
        AWS's AWSLambdaVPCAccessExecutionRole (which could also write to any log group).
        EC2 scopes none of them by resource here, hence `*`."""
        policy = iam.Policy(
            self,
            "NetworkInterfaces",
            statements=[
                iam.PolicyStatement(
                    sid="NetworkInterfaces",
                    actions=[
                        "ec2:CreateNetworkInterface",
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeSubnets",
                        "ec2:DeleteNetworkInterface",
                        "ec2:AssignPrivateIpAddresses",
                        "ec2:UnassignPrivateIpAddresses",
                    ],
                    resources=["*"],
                )
            ],
        )
        policy.attach_to_role(role)
        return policy


def _user(
    scope: Construct, construct_id: str, user_id: str, name: str, access: str, password: str
) -> elasticache.CfnUser:
    return elasticache.CfnUser(
        scope,
        construct_id,
        engine="valkey",
        user_id=user_id,
        user_name=name,
        access_string=access,
        authentication_mode={"Type": "password", "Passwords": [password]},
    )


def _network(scope: Construct, *, private_cognito: bool) -> ec2.Vpc:
    function_subnets = (
        ec2.SubnetType.PRIVATE_ISOLATED if private_cognito else ec2.SubnetType.PRIVATE_WITH_EGRESS
    )
    subnets = [
        ec2.SubnetConfiguration(name="Function", subnet_type=function_subnets, cidr_mask=22),
        ec2.SubnetConfiguration(
            name="Cache", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
        ),
    ]
    if not private_cognito:
        subnets.insert(
            0,
            ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
        )
    return ec2.Vpc(
        scope,
        "Vpc",
        max_azs=2,
        nat_gateways=0 if private_cognito else 1,
        subnet_configuration=subnets,
        gateway_endpoints={
            "DynamoDB": ec2.GatewayVpcEndpointOptions(
                service=ec2.GatewayVpcEndpointAwsService.DYNAMODB
            ),
            "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3),
        },
    )
