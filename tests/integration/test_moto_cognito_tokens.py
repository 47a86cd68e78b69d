"""Tokens that moto's Cognito really issued (sign_up, admin_confirm_sign_up, initiate_auth)
verify through the JWKS moto serves, and tokens for another pool or app client do not."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from graphql_api.auth import AuthenticationError, JwksCache, TokenVerifier
from graphql_api.local.cognito import CognitoTokens, DevCognito
from graphql_api.local.moto_server import LockedMotoServer
from graphql_api.settings import CognitoSettings, TokenUse

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_url(moto_server: LockedMotoServer) -> str:
    return moto_server.url


@pytest.fixture(scope="module")
def cognito(moto_url: str) -> Iterator[DevCognito]:
    with DevCognito.create(endpoint_url=moto_url, region=REGION) as cognito:
        yield cognito


@pytest.fixture(scope="module")
def alice(cognito: DevCognito) -> CognitoTokens:
    cognito.ensure_user("alice")
    return cognito.tokens_for("alice")


@pytest.fixture(scope="module")
def other_pool_tokens(moto_url: str) -> CognitoTokens:
    with DevCognito.create(endpoint_url=moto_url, region=REGION, pool_name="other") as other:
        return other.tokens_for("alice")


@pytest.fixture(scope="module")
def other_client_tokens(cognito: DevCognito) -> CognitoTokens:
    with cognito.new_app_client(client_name="someone-elses-app") as other_app:
        return other_app.tokens_for("carol")


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def settings_for(cognito: DevCognito, *, token_use: TokenUse) -> CognitoSettings:
    return CognitoSettings(
        user_pool_id=cognito.pool_id,
        region=REGION,
        app_client_ids=(cognito.client_id,),
        jwks_url_override=cognito.jwks_url,
        token_use=token_use,
    )


def verifier_for(settings: CognitoSettings, http: aiohttp.ClientSession) -> TokenVerifier:
    return TokenVerifier.from_settings(settings, JwksCache.from_settings(settings, session=http))


async def test_moto_access_token_verifies(
    cognito: DevCognito, alice: CognitoTokens, http: aiohttp.ClientSession
) -> None:
    verifier = verifier_for(settings_for(cognito, token_use="access"), http)

    identity = await verifier.verify(alice.access_token)

    assert identity.username == "alice"
    assert identity.token_use == "access"
    assert identity.client_id == cognito.client_id
    assert "aws.cognito.signin.user.admin" in identity.scopes


async def test_moto_id_token_verifies(
    cognito: DevCognito, alice: CognitoTokens, http: aiohttp.ClientSession
) -> None:
    verifier = verifier_for(settings_for(cognito, token_use="id"), http)

    identity = await verifier.verify(alice.id_token)

    assert identity.username == "alice"
    assert identity.token_use == "id"
    assert identity.client_id == cognito.client_id


async def test_both_moto_tokens_name_the_same_user(
    cognito: DevCognito, alice: CognitoTokens, http: aiohttp.ClientSession
) -> None:
    verifier = verifier_for(settings_for(cognito, token_use="any"), http)

    from_access = await verifier.verify(alice.access_token)
    from_id = await verifier.verify(alice.id_token)

    assert from_access.sub == from_id.sub


@pytest.mark.parametrize("kind", ["access_token", "id_token"])
async def test_a_token_from_another_pool_is_refused(
    cognito: DevCognito,
    other_pool_tokens: CognitoTokens,
    http: aiohttp.ClientSession,
    kind: str,
) -> None:
    # moto signs every pool with the same key, so only the issuer check stands in the way.
    verifier = verifier_for(settings_for(cognito, token_use="any"), http)

    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(getattr(other_pool_tokens, kind))

    assert caught.value.message == "wrong issuer"


@pytest.mark.parametrize(
    ("kind", "message"), [("access_token", "wrong client"), ("id_token", "wrong audience")]
)
async def test_a_token_for_another_app_client_of_the_pool_is_refused(
    cognito: DevCognito,
    other_client_tokens: CognitoTokens,
    http: aiohttp.ClientSession,
    kind: str,
    message: str,
) -> None:
    verifier = verifier_for(settings_for(cognito, token_use="any"), http)

    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(getattr(other_client_tokens, kind))

    assert caught.value.message == message


async def test_the_default_settings_refuse_a_moto_id_token(
    cognito: DevCognito, alice: CognitoTokens, http: aiohttp.ClientSession
) -> None:
    settings = CognitoSettings.from_env(
        {
            "AWS_REGION": REGION,
            "COGNITO_USER_POOL_ID": cognito.pool_id,
            "COGNITO_APP_CLIENT_IDS": cognito.client_id,
            "COGNITO_JWKS_URL": cognito.jwks_url,
        }
    )
    verifier = verifier_for(settings, http)

    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(alice.id_token)

    assert caught.value.message == "wrong token use"
