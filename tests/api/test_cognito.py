"""Tokens from a real Cognito IdP API (moto's) are accepted exactly as production ones are."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from graphql_api.app import create_app
from graphql_api.local.cognito import DevCognito
from graphql_api.local.moto_server import LockedMotoServer
from graphql_api.settings import CognitoSettings, InputLimits
from tests import general_paths
from tests.api.harness import served
from tests.conftest import REGION, credentials_for


@pytest.fixture(scope="module")
def cognito(moto_server: LockedMotoServer) -> Iterator[DevCognito]:
    with DevCognito.create(endpoint_url=moto_server.url, region=REGION) as idp:
        yield idp


async def test_a_signed_in_cognito_user_gets_their_own_data(
    cognito: DevCognito, dynamodb_endpoint: str, api_table: str
) -> None:
    settings = general_paths.settings(
        dynamodb=general_paths.dynamodb_settings(
            table_name=api_table, region=REGION, endpoint_url=dynamodb_endpoint
        ),
        cognito=CognitoSettings(
            user_pool_id=cognito.pool_id,
            region=cognito.region,
            app_client_ids=(cognito.client_id,),
            jwks_url_override=cognito.jwks_url,
        ),
        limits=InputLimits(),
    )
    app = create_app(settings, aws_credentials=credentials_for(dynamodb_endpoint))
    create = (
        'mutation { createConversation(input: {title: "via cognito"}) { conversation { id } } }'
    )
    listing = "{ conversations { edges { node { title } } } }"
    async with served(app) as (http, _):
        alice = {"Authorization": f"Bearer {cognito.token_for('alice')}"}
        bob = {"Authorization": f"Bearer {cognito.token_for('bob')}"}
        created = await http.post("/graphql", json={"query": create}, headers=alice)
        assert created.status_code == 200, created.text
        assert "errors" not in created.json()
        mine = await http.post("/graphql", json={"query": listing}, headers=alice)
        theirs = await http.post("/graphql", json={"query": listing}, headers=bob)
    assert mine.json()["data"]["conversations"]["edges"] == [{"node": {"title": "via cognito"}}]
    assert theirs.json()["data"]["conversations"]["edges"] == []
