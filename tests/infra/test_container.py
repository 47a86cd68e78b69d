"""The container shape: the Dockerfile's image on Fargate behind an ALB, Valkey for fan-out, in
a VPC of its own with security groups that let through only what each part needs."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import DEFAULT_CONTEXT, Synthesis, Synthesized

SECRET = "AWS::SecretsManager::Secret"


def _id(shape: Synthesized, resource_type: str, prefix: str) -> str:
    found = [name for name in shape.of_type(resource_type) if name.startswith(prefix)]
    assert len(found) == 1, (resource_type, prefix, found)
    return found[0]


def _group(shape: Synthesized, prefix: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [_id(shape, "AWS::EC2::SecurityGroup", prefix), "GroupId"]}


def _rules(shape: Synthesized, prefix: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ingress, egress) of one security group, inline and separate rules together."""
    group_id = _id(shape, "AWS::EC2::SecurityGroup", prefix)
    properties = shape.resources[group_id]["Properties"]
    ingress = list(properties.get("SecurityGroupIngress", []))
    egress = list(properties.get("SecurityGroupEgress", []))
    reference = {"Fn::GetAtt": [group_id, "GroupId"]}
    for kind, into in (("Ingress", ingress), ("Egress", egress)):
        for rule in shape.of_type(f"AWS::EC2::SecurityGroup{kind}").values():
            if rule["Properties"]["GroupId"] == reference:
                into.append({k: v for k, v in rule["Properties"].items() if k != "GroupId"})
    return ingress, egress


def _strip(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(
        ({k: v for k, v in rule.items() if k != "Description"} for rule in rules),
        key=json.dumps,
    )


def test_the_image_is_the_dockerfiles_built_at_deploy_for_arm64(synthesis: Synthesis) -> None:
    assets = json.loads((synthesis.outdir / "ChatHistoryContainer.assets.json").read_text())
    (image,) = assets["dockerImages"].values()
    context = synthesis.outdir / image["source"]["directory"]

    assert image["source"].get("platform") == "linux/arm64"
    assert (context / "Dockerfile").is_file()
    # What .dockerignore lets through, and nothing else of the repository.
    assert sorted(path.name for path in context.iterdir()) == [
        ".dockerignore",
        "Dockerfile",
        "README.md",
        "graphql_api",
        "pyproject.toml",
        "requirements",
    ]
    # Of the locks, only the service's: the image installs from it.
    assert [path.name for path in (context / "requirements").iterdir()] == ["service.txt"]


def test_tasks_run_the_image_in_private_subnets_with_the_services_settings(
    container: Synthesized,
) -> None:
    task = container.only("AWS::ECS::TaskDefinition")[1]["Properties"]
    (definition,) = task["ContainerDefinitions"]
    environment = {item["Name"]: item["Value"] for item in definition["Environment"]}
    service = container.only("AWS::ECS::Service")[1]["Properties"]
    network = service["NetworkConfiguration"]["AwsvpcConfiguration"]
    private = {
        name
        for name, subnet in container.of_type("AWS::EC2::Subnet").items()
        if name.startswith("VpcServiceSubnet")
    }

    assert task["RuntimePlatform"]["CpuArchitecture"] == "ARM64"
    assert definition["PortMappings"] == [{"ContainerPort": 8000, "Protocol": "tcp"}]
    assert definition["ReadonlyRootFilesystem"] is True
    assert definition["LogConfiguration"]["LogDriver"] == "awslogs"
    assert set(environment) == {
        "CHAT_TABLE_NAME",
        "AWS_REGION",
        "COGNITO_USER_POOL_ID",
        "COGNITO_REGION",
        "COGNITO_APP_CLIENT_IDS",
        "CONTENT_BUCKET",
        "BROADCAST_URL",
        "RATE_LIMIT_URL",
    }
    assert environment["BROADCAST_URL"]["Fn::Join"][1][0] == "rediss://"
    # One Valkey carries both the fan-out and the limits' budgets.
    assert environment["RATE_LIMIT_URL"] == environment["BROADCAST_URL"]
    # The token reaches the service from Secrets Manager, never through the task definition.
    assert definition["Secrets"] == [
        {"Name": "REDIS_AUTH_TOKEN", "ValueFrom": {"Ref": _id(container, SECRET, "CacheAuthToken")}}
    ]
    assert network["AssignPublicIp"] == "DISABLED"
    assert {subnet["Ref"] for subnet in network["Subnets"]} == private
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    assert service["DesiredCount"] == 2


def test_the_load_balancer_health_checks_readyz_and_keeps_sockets_open(
    container: Synthesized,
) -> None:
    balancer = container.only("AWS::ElasticLoadBalancingV2::LoadBalancer")[1]["Properties"]
    attributes = {a["Key"]: a["Value"] for a in balancer["LoadBalancerAttributes"]}
    target_group = container.only("AWS::ElasticLoadBalancingV2::TargetGroup")[1]["Properties"]

    assert balancer["Scheme"] == "internet-facing"
    assert int(attributes["idle_timeout.timeout_seconds"]) >= 3600
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert target_group["HealthCheckPath"] == "/readyz"
    assert target_group["Matcher"] == {"HttpCode": "200"}
    assert (target_group["Port"], target_group["TargetType"]) == (8000, "ip")


def test_the_load_balancer_serves_https_with_the_certificate_and_redirects_http(
    container: Synthesized,
) -> None:
    listeners = container.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    by_port = {listener["Properties"]["Port"]: listener["Properties"] for listener in listeners}

    assert set(by_port) == {80, 443}
    assert by_port[443]["Protocol"] == "HTTPS"
    assert by_port[443]["SslPolicy"].startswith("ELBSecurityPolicy-TLS13")
    assert by_port[443]["Certificates"] == [{"CertificateArn": DEFAULT_CONTEXT["certificateArn"]}]
    assert by_port[443]["DefaultActions"] == [
        {
            "Type": "forward",
            "TargetGroupArn": {
                "Ref": _id(container, "AWS::ElasticLoadBalancingV2::TargetGroup", "Targets")
            },
        }
    ]
    (redirect,) = by_port[80]["DefaultActions"]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["Port"] == "443"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"


def test_security_groups_open_only_alb_to_tasks_and_tasks_to_valkey(
    container: Synthesized,
) -> None:
    alb, tasks, cache = (
        _group(container, "LoadBalancerSecurityGroup"),
        _group(container, "ServiceSecurityGroup"),
        _group(container, "CacheSecurityGroup"),
    )
    alb_in, alb_out = _rules(container, "LoadBalancerSecurityGroup")
    tasks_in, tasks_out = _rules(container, "ServiceSecurityGroup")
    cache_in, cache_out = _rules(container, "CacheSecurityGroup")

    assert _strip(alb_in) == [
        {"CidrIp": "0.0.0.0/0", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443},
        {"CidrIp": "0.0.0.0/0", "FromPort": 80, "IpProtocol": "tcp", "ToPort": 80},
    ]
    assert _strip(alb_out) == [
        {"DestinationSecurityGroupId": tasks, "FromPort": 8000, "IpProtocol": "tcp", "ToPort": 8000}
    ]
    assert _strip(tasks_in) == [
        {"SourceSecurityGroupId": alb, "FromPort": 8000, "IpProtocol": "tcp", "ToPort": 8000}
    ]
    assert _strip(tasks_out) == _strip(
        [
            {"CidrIp": "0.0.0.0/0", "FromPort": 443, "IpProtocol": "tcp", "ToPort": 443},
            {
                "DestinationSecurityGroupId": cache,
                "FromPort": 6379,
                "IpProtocol": "tcp",
                "ToPort": 6379,
            },
        ]
    )
    assert _strip(cache_in) == [
        {"SourceSecurityGroupId": tasks, "FromPort": 6379, "IpProtocol": "tcp", "ToPort": 6379}
    ]
    # CDK's way of saying "no egress": one rule that matches nothing.
    assert [rule["CidrIp"] for rule in cache_out] == ["255.255.255.255/32"]


def test_valkey_is_encrypted_and_isolated(container: Synthesized) -> None:
    cache = container.only("AWS::ElastiCache::ReplicationGroup")[1]["Properties"]
    subnet_group = container.only("AWS::ElastiCache::SubnetGroup")[1]["Properties"]

    assert cache["Engine"] == "valkey"
    assert cache["TransitEncryptionEnabled"] is True
    assert cache["AtRestEncryptionEnabled"] is True
    assert {subnet["Ref"] for subnet in subnet_group["SubnetIds"]} == {
        name for name in container.of_type("AWS::EC2::Subnet") if name.startswith("VpcCache")
    }
    cache_route_tables = [
        table
        for name, table in container.of_type("AWS::EC2::Route").items()
        if name.startswith("VpcCache")
    ]
    assert cache_route_tables == []  # isolated: no route out at all


def test_valkey_takes_a_generated_auth_token_only_the_execution_role_may_read(
    container: Synthesized,
) -> None:
    secret_id = _id(container, SECRET, "CacheAuthToken")
    generated = container.resources[secret_id]["Properties"]["GenerateSecretString"]
    cache = container.only("AWS::ElastiCache::ReplicationGroup")[1]["Properties"]
    readers = {
        name: policy["Properties"]["Roles"]
        for name, policy in container.of_type("AWS::IAM::Policy").items()
        if "secretsmanager" in json.dumps(policy["Properties"]["PolicyDocument"])
    }

    # Letters and digits: Valkey refuses some punctuation, and URLs would need the rest escaped.
    assert generated == {"ExcludePunctuation": True, "IncludeSpace": False, "PasswordLength": 64}
    # A dynamic reference: CloudFormation resolves it at deploy time; the template has no token.
    assert cache["AuthToken"] == {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret_id}, ":SecretString:::}}"]]
    }
    ((policy, roles),) = readers.items()
    assert roles == [{"Ref": _id(container, "AWS::IAM::Role", "TaskExecutionRole")}]
    statements = container.resources[policy]["Properties"]["PolicyDocument"]["Statement"]
    assert [s for s in statements if "secretsmanager" in json.dumps(s)] == [
        {
            "Sid": "ReadCacheAuthToken",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": {"Ref": secret_id},
        }
    ]


def test_the_vpc_is_built_here_with_free_endpoints_for_dynamodb_and_s3(
    container: Synthesized,
) -> None:
    endpoints = container.of_type("AWS::EC2::VPCEndpoint")
    services = sorted(
        json.dumps(endpoint["Properties"]["ServiceName"]) for endpoint in endpoints.values()
    )

    assert len(container.of_type("AWS::EC2::VPC")) == 1
    assert len(container.of_type("AWS::EC2::NatGateway")) == 1
    assert [endpoint["Properties"]["VpcEndpointType"] for endpoint in endpoints.values()] == [
        "Gateway",
        "Gateway",
    ]
    assert "dynamodb" in services[0]
    assert "s3" in services[1]
    # Two AZs of whatever region it is deployed to, without a lookup.
    assert "Fn::GetAZs" in json.dumps(container.of_type("AWS::EC2::Subnet"))


def test_alarms_watch_alb_5xx_unhealthy_tasks_and_table_throttling(
    container: Synthesized,
) -> None:
    alarms = [alarm["Properties"] for alarm in container.of_type("AWS::CloudWatch::Alarm").values()]
    metrics = {alarm.get("MetricName") for alarm in alarms}

    assert {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count", "UnHealthyHostCount"} <= metrics
    assert any("WriteThrottleEvents" in json.dumps(alarm.get("Metrics")) for alarm in alarms)
    topic = {"Ref": _id(container, "AWS::SNS::Topic", "BackendAlarms")}
    assert all(alarm["AlarmActions"] == [topic] for alarm in alarms)


def test_outputs_name_the_api_the_pool_the_clients_and_the_table(
    container: Synthesized,
) -> None:
    outputs = container.json["Outputs"]

    assert {"ApiUrl", "UserPoolId", "AppClientIds", "TableName"} <= set(outputs)
    url = outputs["ApiUrl"]["Value"]["Fn::Join"][1]
    assert (url[0], url[-1]) == ("https://", "/graphql")


def test_the_service_keeps_idle_connections_longer_than_the_load_balancer(
    container: Synthesized,
) -> None:
    definition = container.only("AWS::ECS::TaskDefinition")[1]["Properties"]
    (service,) = definition["ContainerDefinitions"]
    command = service["Command"]
    keep_alive = int(command[command.index("--timeout-keep-alive") + 1])
    balancer = container.only("AWS::ElasticLoadBalancingV2::LoadBalancer")[1]["Properties"]
    idle = next(
        int(attribute["Value"])
        for attribute in balancer["LoadBalancerAttributes"]
        if attribute["Key"] == "idle_timeout.timeout_seconds"
    )
    # The balancer must always be the side that closes an idle connection.
    assert keep_alive > idle
