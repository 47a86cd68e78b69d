"""The context values: an existing user pool, HTTPS, no Valkey, an alarm email, and bad input."""

from __future__ import annotations

import json
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


def test_a_certificate_serves_https_and_redirects_http(variant: Synthesis) -> None:
    listeners = [
        listener["Properties"]
        for listener in variant.container.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    ]
    by_port = {listener["Port"]: listener for listener in listeners}
    group = next(
        group["Properties"]
        for name, group in variant.container.of_type("AWS::EC2::SecurityGroup").items()
        if name.startswith("LoadBalancerSecurityGroup")
    )

    assert set(by_port) == {80, 443}
    assert by_port[443]["Protocol"] == "HTTPS"
    assert by_port[443]["Certificates"] == [{"CertificateArn": VARIANT_CONTEXT["certificateArn"]}]
    assert by_port[80]["DefaultActions"][0]["Type"] == "redirect"
    assert sorted(rule["FromPort"] for rule in group["SecurityGroupIngress"]) == [80, 443]
    url = variant.container.json["Outputs"]["ApiUrl"]["Value"]["Fn::Join"][1]
    assert url[0] == "https://"


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
