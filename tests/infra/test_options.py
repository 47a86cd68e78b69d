"""The context values: an existing user pool, plain HTTP by consent, no Valkey, shared rate
limits, a concurrency cap, an alarm email, and bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import VARIANT_CONTEXT, Synthesis

POOL_ID = VARIANT_CONTEXT["userPoolId"]
CLIENT_IDS = VARIANT_CONTEXT["appClientIds"].split(",")
ISSUER = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL_ID}"


def test_an_existing_pool_is_used_by_id_without_creating_one(variant: Synthesis) -> None:
    for shape in variant.both:
        assert not shape.of_type("AWS::Cognito::UserPool"), shape.name
        assert not shape.of_type("AWS::Cognito::UserPoolClient"), shape.name
        assert shape.json["Outputs"]["UserPoolId"]["Value"] == POOL_ID
        assert shape.json["Outputs"]["AppClientIds"]["Value"] == ",".join(CLIENT_IDS)

    function = variant.serverless.only("AWS::Lambda::Function")[1]
    variables = function["Properties"]["Environment"]["Variables"]
    # The pool's region comes from its id: it may differ from the stack's.
    assert (
        variables["COGNITO_USER_POOL_ID"],
        variables["COGNITO_REGION"],
        variables["COGNITO_APP_CLIENT_IDS"],
    ) == (POOL_ID, "eu-west-1", ",".join(CLIENT_IDS))
    authorizer = variant.serverless.only("AWS::ApiGatewayV2::Authorizer")[1]["Properties"]
    assert authorizer["JwtConfiguration"] == {"Audience": CLIENT_IDS, "Issuer": ISSUER}


def test_plain_http_is_served_only_when_the_deployer_allows_it(variant: Synthesis) -> None:
    from aws_cdk.assertions import Annotations, Match

    listener = variant.container.only("AWS::ElasticLoadBalancingV2::Listener")[1]["Properties"]

    assert (listener["Port"], listener["Protocol"]) == (80, "HTTP")
    assert listener["DefaultActions"][0]["Type"] == "forward"
    url = variant.container.json["Outputs"]["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url[0] == "http://"
    Annotations.from_stack(variant.shapes.container).has_no_error("*", Match.any_value())


def test_without_a_certificate_the_container_shape_refuses_naming_both_ways_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from aws_cdk.assertions import Annotations, Match

    from infra.app import build, main

    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    monkeypatch.setattr("infra.app.DEFAULT_OUTDIR", tmp_path)
    shapes = build(outdir=tmp_path / "unused", context={})
    refusal = Match.string_like_regexp("plain HTTP.*certificateArn=.*allowPlainHttp=true")

    Annotations.from_stack(shapes.container).has_error("*", refusal)
    # The serverless shape needs no certificate: the CDK CLI deploys it alone all the same.
    Annotations.from_stack(shapes.serverless).has_no_error("*", Match.any_value())
    assert main([]) == 2
    error = capsys.readouterr().err
    assert "configuration error: ChatHistoryContainer: No certificateArn" in error
    assert "-c certificateArn=" in error
    assert "-c allowPlainHttp=true" in error
    # Refused before synthesis: nothing was written.
    assert not list(tmp_path.glob("*.template.json"))


def test_make_synth_stands_an_example_certificate_in_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from infra.app import CONTAINER, EXAMPLE_CERTIFICATE_ARN, main

    monkeypatch.delenv("CDK_OUTDIR", raising=False)
    monkeypatch.setattr("infra.app.DEFAULT_OUTDIR", tmp_path)

    assert main(["--example-certificate"]) == 0

    assert f"an EXAMPLE certificate ({EXAMPLE_CERTIFICATE_ARN})" in capsys.readouterr().err
    template = json.loads((tmp_path / f"{CONTAINER}.template.json").read_text())
    certificates = [
        resource["Properties"]["Certificates"]
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
        and "Certificates" in resource["Properties"]
    ]
    assert certificates == [[{"CertificateArn": EXAMPLE_CERTIFICATE_ARN}]]


def test_the_concurrency_cap_is_the_context_value(variant: Synthesis) -> None:
    function = variant.serverless.only("AWS::Lambda::Function")[1]["Properties"]

    assert function["ReservedConcurrentExecutions"] == int(VARIANT_CONTEXT["reservedConcurrency"])


def test_rate_limits_with_an_existing_pool_reach_cognito_through_a_nat_gateway(
    variant: Synthesis,
) -> None:
    """An existing pool may be in another region or have a domain: PrivateLink serves
    neither, so the function gets a route to the internet instead."""
    serverless = variant.serverless
    endpoints = serverless.of_type("AWS::EC2::VPCEndpoint").values()
    function = serverless.only("AWS::Lambda::Function")[1]["Properties"]

    assert len(serverless.of_type("AWS::EC2::NatGateway")) == 1
    assert [e["Properties"]["VpcEndpointType"] for e in endpoints] == ["Gateway", "Gateway"]
    assert serverless.only("AWS::ElastiCache::ServerlessCache")
    assert {subnet["Ref"] for subnet in function["VpcConfig"]["SubnetIds"]} == {
        name
        for name in serverless.of_type("AWS::EC2::Subnet")
        if name.startswith("RateLimitsVpcFunction")
    }
    assert any(
        name.startswith("RateLimitsVpcFunction") and "NatGatewayId" in route["Properties"]
        for name, route in serverless.of_type("AWS::EC2::Route").items()
    )


def test_without_broadcast_there_is_no_valkey_and_no_broadcast_url(variant: Synthesis) -> None:
    container = variant.container
    task = container.only("AWS::ECS::TaskDefinition")[1]["Properties"]
    names = {item["Name"] for item in task["ContainerDefinitions"][0]["Environment"]}

    assert not container.of_type("AWS::ElastiCache::ReplicationGroup")
    assert "BROADCAST_URL" not in names
    assert "6379" not in json.dumps(container.of_type("AWS::EC2::SecurityGroupEgress"))


def test_an_alarm_email_subscribes_to_the_topic(variant: Synthesis) -> None:
    for shape in variant.both:
        shape.template.has_resource_properties(
            "AWS::SNS::Subscription",
            {"Protocol": "email", "Endpoint": VARIANT_CONTEXT["alarmEmail"]},
        )


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"userPoolId": POOL_ID}, "give both"),
        ({"appClientIds": "abc"}, "give both"),
        ({"userPoolId": "not-a-pool", "appClientIds": "abc"}, "not <region>_<id>"),
        ({"userPoolId": POOL_ID, "appClientIds": " , "}, "at least one"),
        ({"broadcast": "maybe"}, "not true or false"),
        ({"allowPlainHttp": "maybe"}, "allowPlainHttp: 'maybe' is not true or false"),
        ({"rateLimits": "yes please"}, "rateLimits: 'yes please' is not true or false"),
        ({"reservedConcurrency": "0"}, "reservedConcurrency: '0' is not a whole number"),
        ({"reservedConcurrency": "lots"}, "reservedConcurrency: 'lots' is not a whole number"),
    ],
)
def test_bad_context_values_are_refused_by_name(context: dict[str, Any], message: str) -> None:
    from aws_cdk import App

    from infra.options import Options, OptionsError

    app = App(context=context)

    with pytest.raises(OptionsError, match=message):
        Options.from_context(app.node)


def test_make_synth_refuses_a_bad_context_value_with_exit_code_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from infra.app import main

    assert main(["-c", "broadcast=maybe"]) == 2
    assert "configuration error: broadcast" in capsys.readouterr().err
