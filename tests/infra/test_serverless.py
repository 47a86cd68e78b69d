"""The serverless shape: Lambda (Mangum) behind an HTTP API with a Cognito JWT authorizer."""

from __future__ import annotations

import json
from typing import Any

from tests.infra.conftest import Synthesis, Synthesized

RATE_LIMIT_TYPES = (
    "AWS::ElastiCache::ServerlessCache",
    "AWS::EC2::VPC",
    "AWS::SecretsManager::Secret",
)


def _ref(shape: Synthesized, resource_type: str, prefix: str = "") -> dict[str, str]:
    found = [name for name in shape.of_type(resource_type) if name.startswith(prefix)]
    assert len(found) == 1, (resource_type, prefix, found)
    return {"Ref": found[0]}


def test_the_function_runs_the_handler_on_graviton_with_its_layer(
    serverless: Synthesized,
) -> None:
    from aws_cdk.assertions import Match

    serverless.template.has_resource_properties(
        "AWS::Lambda::Function",
        {
            "Handler": "graphql_api.aws_lambda.handler",
            "Runtime": "python3.12",
            "Architectures": ["arm64"],
            "MemorySize": 1769,
            "Timeout": 15,
            # A cap, so a flood's cost has a ceiling (infra/options.py explains the number).
            "ReservedConcurrentExecutions": 50,
            "Layers": [_ref(serverless, "AWS::Lambda::LayerVersion")],
            "LoggingConfig": {"LogGroup": _ref(serverless, "AWS::Logs::LogGroup", "Function")},
            # Not in a VPC unless rate limits are shared: DynamoDB, S3 and Cognito are public
            # endpoints.
            "VpcConfig": Match.absent(),
        },
    )
    serverless.template.has_resource_properties(
        "AWS::Lambda::LayerVersion",
        {"CompatibleRuntimes": ["python3.12"], "CompatibleArchitectures": ["arm64"]},
    )


def test_the_function_gets_the_services_settings_from_the_stack(
    serverless: Synthesized,
) -> None:
    variables = serverless.only("AWS::Lambda::Function")[1]["Properties"]["Environment"][
        "Variables"
    ]

    assert variables == {
        "CHAT_TABLE_NAME": {"Ref": serverless.only("AWS::DynamoDB::Table")[0]},
        "COGNITO_USER_POOL_ID": _ref(serverless, "AWS::Cognito::UserPool"),
        "COGNITO_REGION": {"Ref": "AWS::Region"},
        "COGNITO_APP_CLIENT_IDS": _ref(serverless, "AWS::Cognito::UserPoolClient"),
        "CONTENT_BUCKET": _ref(serverless, "AWS::S3::Bucket", "BackendContentBucket"),
    }


def test_the_function_code_is_the_graphql_api_package_alone(
    serverless: Synthesized,
) -> None:
    code = serverless.only("AWS::Lambda::Function")[1]["Properties"]["Code"]
    asset = serverless.outdir / f"asset.{code['S3Key'].removesuffix('.zip')}"

    assert sorted(path.name for path in asset.iterdir()) == ["graphql_api"]
    files = {str(path.relative_to(asset)) for path in asset.rglob("*") if path.is_file()}
    assert "graphql_api/aws_lambda.py" in files
    assert "graphql_api/app.py" in files
    assert not [name for name in files if "__pycache__" in name or name.endswith(".pyc")]


def test_the_layer_is_the_built_dependencies_or_a_named_placeholder(
    synthesis: Synthesis,
) -> None:
    from aws_cdk.assertions import Annotations, Match

    from infra.layout import LAMBDA_DEPS_PLACEHOLDER, lambda_deps_built

    annotations = Annotations.from_stack(synthesis.shapes.serverless)
    warning = Match.string_like_regexp("PLACEHOLDER.*make lambda-package")
    layer = synthesis.serverless.only("AWS::Lambda::LayerVersion")[1]
    asset = synthesis.outdir / f"asset.{layer['Properties']['Content']['S3Key'][:-4]}"
    if lambda_deps_built():
        annotations.has_no_warning("*", warning)
        assert (asset / "python").is_dir()
    else:
        annotations.has_warning("*", warning)
        assert (asset / "README.txt").read_text() == (
            LAMBDA_DEPS_PLACEHOLDER / "README.txt"
        ).read_text()


def test_every_request_passes_the_cognito_jwt_authorizer_but_health_checks(
    serverless: Synthesized,
) -> None:
    pool = _ref(serverless, "AWS::Cognito::UserPool")
    serverless.template.has_resource_properties(
        "AWS::ApiGatewayV2::Authorizer",
        {
            "AuthorizerType": "JWT",
            "IdentitySource": ["$request.header.Authorization"],
            "JwtConfiguration": {
                "Audience": [_ref(serverless, "AWS::Cognito::UserPoolClient")],
                "Issuer": {
                    "Fn::Join": [
                        "",
                        ["https://cognito-idp.", {"Ref": "AWS::Region"}, ".amazonaws.com/", pool],
                    ]
                },
            },
        },
    )
    authorizer = _ref(serverless, "AWS::ApiGatewayV2::Authorizer")
    routes = {
        route["Properties"]["RouteKey"]: route["Properties"]
        for route in serverless.of_type("AWS::ApiGatewayV2::Route").values()
    }

    assert set(routes) == {"$default", "GET /healthz", "GET /readyz"}
    assert routes["$default"]["AuthorizationType"] == "JWT"
    assert routes["$default"]["AuthorizerId"] == authorizer
    for key in ("GET /healthz", "GET /readyz"):
        assert routes[key]["AuthorizationType"] == "NONE"


def test_the_integration_sends_payload_v2_to_the_function(serverless: Synthesized) -> None:
    serverless.template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {"IntegrationType": "AWS_PROXY", "PayloadFormatVersion": "2.0"},
    )


def test_the_stage_is_throttled_and_logs_each_request_without_headers(
    serverless: Synthesized,
) -> None:
    stage = serverless.only("AWS::ApiGatewayV2::Stage")[1]["Properties"]
    access_logs = serverless.of_type("AWS::Logs::LogGroup")

    assert stage["StageName"] == "$default"
    assert stage["AutoDeploy"] is True
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0
    destination = stage["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0]
    assert destination in access_logs
    log_format = json.loads(stage["AccessLogSettings"]["Format"])
    assert "$context.status" in log_format.values()
    assert not [value for value in log_format.values() if "header" in value.lower()]


def test_log_groups_keep_a_month(serverless: Synthesized, container: Synthesized) -> None:
    for shape in (serverless, container):
        groups = shape.of_type("AWS::Logs::LogGroup")
        assert groups, shape.name
        for name, group in groups.items():
            assert group["Properties"].get("RetentionInDays") == 30, (shape.name, name)


def _alarms(shape: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        name: alarm["Properties"] for name, alarm in shape.of_type("AWS::CloudWatch::Alarm").items()
    }


def test_alarms_watch_5xx_function_errors_throttles_and_table_throttling(
    serverless: Synthesized,
) -> None:
    alarms = _alarms(serverless)
    topic = _ref(serverless, "AWS::SNS::Topic")
    by_metric = {(a.get("Namespace"), a.get("MetricName")): a for a in alarms.values()}

    assert ("AWS/ApiGateway", "5xx") in by_metric
    assert ("AWS/Lambda", "Errors") in by_metric
    assert ("AWS/Lambda", "Throttles") in by_metric
    assert any("ReadThrottleEvents" in json.dumps(a.get("Metrics")) for a in alarms.values())
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [topic]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_outputs_name_the_api_the_pool_the_clients_and_the_table(
    serverless: Synthesized,
) -> None:
    outputs = serverless.json["Outputs"]

    assert {"ApiUrl", "UserPoolId", "AppClientIds", "TableName"} <= set(outputs)
    assert outputs["ApiUrl"]["Value"]["Fn::Join"][1][-1] == "/graphql"
    assert outputs["UserPoolId"]["Value"] == _ref(serverless, "AWS::Cognito::UserPool")


def test_the_user_pool_is_kept_and_its_client_is_a_native_apps(
    serverless: Synthesized,
) -> None:
    from aws_cdk.assertions import Match

    serverless.template.has_resource(
        "AWS::Cognito::UserPool",
        {
            "DeletionPolicy": "Retain",
            "Properties": {"DeletionProtection": "ACTIVE", "UserPoolTier": "LITE"},
        },
    )
    serverless.template.has_resource_properties(
        "AWS::Cognito::UserPoolClient",
        {
            "GenerateSecret": False,
            "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
            "AllowedOAuthFlows": Match.absent(),
            "PreventUserExistenceErrors": "ENABLED",
        },
    )


def test_the_content_bucket_is_private_encrypted_tls_only_and_kept(
    serverless: Synthesized, container: Synthesized
) -> None:
    from aws_cdk.assertions import Match

    for shape in (serverless, container):
        shape.template.has_resource(
            "AWS::S3::Bucket",
            {
                "DeletionPolicy": "Retain",
                "Properties": {
                    "PublicAccessBlockConfiguration": {
                        "BlockPublicAcls": True,
                        "BlockPublicPolicy": True,
                        "IgnorePublicAcls": True,
                        "RestrictPublicBuckets": True,
                    },
                    "BucketEncryption": {
                        "ServerSideEncryptionConfiguration": [
                            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                        ]
                    },
                    "LifecycleConfiguration": {
                        "Rules": [
                            Match.object_like(
                                {
                                    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                                    "Status": "Enabled",
                                }
                            )
                        ]
                    },
                    "VersioningConfiguration": Match.absent(),
                },
            },
        )
        shape.template.has_resource_properties(
            "AWS::S3::BucketPolicy",
            {
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                }
            },
        )


def test_nothing_was_looked_up_in_an_account(synthesis: Synthesis) -> None:
    manifest = json.loads((synthesis.outdir / "manifest.json").read_text())

    assert "missing" not in manifest
    for shape in synthesis.both:
        artifact = manifest["artifacts"][shape.name]
        assert artifact["environment"] == "aws://unknown-account/unknown-region"


def test_without_shared_limits_there_is_no_cache_and_no_vpc(serverless: Synthesized) -> None:
    for resource_type in RATE_LIMIT_TYPES:
        assert not serverless.of_type(resource_type), resource_type


def test_shared_limits_put_a_valkey_the_function_signs_in_to_in_a_vpc(limited: Synthesis) -> None:
    serverless = limited.serverless
    cache_id, cache = serverless.only("AWS::ElastiCache::ServerlessCache")
    users = {
        user["Properties"]["UserName"]: user["Properties"]
        for user in serverless.of_type("AWS::ElastiCache::User").values()
    }
    group = serverless.only("AWS::ElastiCache::UserGroup")[1]["Properties"]
    secret = serverless.only("AWS::SecretsManager::Secret")[0]
    password = {
        "Fn::Join": ["", ["{{resolve:secretsmanager:", {"Ref": secret}, ":SecretString:::}}"]]
    }
    function = serverless.only("AWS::Lambda::Function")[1]["Properties"]
    variables = function["Environment"]["Variables"]

    assert (cache["Properties"]["Engine"], cache["Properties"]["MajorEngineVersion"]) == (
        "valkey",
        "8",
    )
    # Bounded, as the function is: a ceiling on storage and on requests a second.
    assert cache["Properties"]["CacheUsageLimits"] == {
        "DataStorage": {"Maximum": 1, "Unit": "GB"},
        "ECPUPerSecond": {"Maximum": 5000},
    }
    assert cache["Properties"]["UserGroupId"] == {
        "Ref": _ref(serverless, "AWS::ElastiCache::UserGroup")["Ref"]
    }
    assert users["chat-history"]["AccessString"].startswith("on ")
    assert users["default"]["AccessString"].startswith("off ")
    for user in users.values():
        assert user["AuthenticationMode"] == {"Type": "password", "Passwords": [password]}
    assert len(group["UserIds"]) == 2
    assert variables["RATE_LIMIT_URL"] == {
        "Fn::Join": [
            "",
            [
                "rediss://chat-history@",
                {"Fn::GetAtt": [cache_id, "Endpoint.Address"]},
                ":",
                {"Fn::GetAtt": [cache_id, "Endpoint.Port"]},
            ],
        ]
    }
    assert variables["REDIS_AUTH_TOKEN"] == password
    assert function["VpcConfig"]["SecurityGroupIds"] == [
        {
            "Fn::GetAtt": [
                _ref(serverless, "AWS::EC2::SecurityGroup", "RateLimitsFunction")["Ref"],
                "GroupId",
            ]
        }
    ]


def test_shared_limits_with_the_stacks_own_pool_need_no_nat_gateway(limited: Synthesis) -> None:
    """DynamoDB and S3 through free gateway endpoints; Cognito's signing keys through
    PrivateLink, which serves the stack's own pool (same region, no domain)."""
    serverless = limited.serverless
    endpoints = {
        json.dumps(endpoint["Properties"]["ServiceName"]): endpoint["Properties"]
        for endpoint in serverless.of_type("AWS::EC2::VPCEndpoint").values()
    }
    (cognito,) = [props for name, props in endpoints.items() if "cognito-idp" in name]
    function = serverless.only("AWS::Lambda::Function")[1]

    assert not serverless.of_type("AWS::EC2::NatGateway")
    assert not serverless.of_type("AWS::EC2::InternetGateway")
    assert sorted(props["VpcEndpointType"] for props in endpoints.values()) == [
        "Gateway",
        "Gateway",
        "Interface",
    ]
    assert cognito["PrivateDnsEnabled"] is True
    assert sorted(cognito["SubnetIds"], key=json.dumps) == sorted(
        function["Properties"]["VpcConfig"]["SubnetIds"], key=json.dumps
    )
    # Lambda checks the role's network-interface permissions as it creates the function.
    eni = _ref(serverless, "AWS::IAM::Policy", "RateLimitsNetworkInterfaces")["Ref"]
    assert eni in function["DependsOn"]
    statement = serverless.resources[eni]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Sid"] for s in statement] == ["NetworkInterfaces"]
    assert all(action.startswith("ec2:") for action in statement[0]["Action"])
