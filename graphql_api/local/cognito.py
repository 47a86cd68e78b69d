"""A Cognito user pool on the embedded moto server, with users who can sign in for real tokens.

moto signs every pool's tokens with one RS256 key (kid "dummy") and serves it at
`<moto-url>/<pool-id>/.well-known/jwks.json`; the issuer is the real Cognito one, so the
service verifies these tokens exactly as it verifies production ones. Plain (sync) botocore is
enough here: this runs at dev startup and in test setup, never on a request path.
"""

from __future__ import annotations

import dataclasses
import secrets
from types import TracebackType
from typing import Any, Protocol, cast

import botocore.session
from botocore.exceptions import ClientError


class _CognitoIdp(Protocol):
    """The cognito-idp operations used here (botocore's client is untyped)."""

    def create_user_pool(self, **kwargs: Any) -> dict[str, Any]: ...
    def create_user_pool_client(self, **kwargs: Any) -> dict[str, Any]: ...
    def sign_up(self, **kwargs: Any) -> dict[str, Any]: ...
    def admin_confirm_sign_up(self, **kwargs: Any) -> dict[str, Any]: ...
    def admin_set_user_password(self, **kwargs: Any) -> dict[str, Any]: ...
    def initiate_auth(self, **kwargs: Any) -> dict[str, Any]: ...
    def close(self) -> None: ...


@dataclasses.dataclass(frozen=True, kw_only=True)
class CognitoTokens:
    access_token: str
    id_token: str
    refresh_token: str


class DevCognito:
    """One user pool and one app client; `create` makes them, the constructor attaches."""

    def __init__(self, *, endpoint_url: str, region: str, pool_id: str, client_id: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.pool_id = pool_id
        self.client_id = client_id
        self._client = _client(endpoint_url=self.endpoint_url, region=region)
        self._passwords: dict[str, str] = {}

    @classmethod
    def create(
        cls,
        *,
        endpoint_url: str,
        region: str = "us-east-1",
        pool_name: str = "chat-history-api-dev",
        client_name: str = "chat-history-api-dev",
    ) -> DevCognito:
        client = _client(endpoint_url=endpoint_url, region=region)
        try:
            pool_id: str = client.create_user_pool(PoolName=pool_name)["UserPool"]["Id"]
            client_id = _create_app_client(client, pool_id=pool_id, client_name=client_name)
        finally:
            client.close()
        return cls(endpoint_url=endpoint_url, region=region, pool_id=pool_id, client_id=client_id)

    def new_app_client(self, *, client_name: str) -> DevCognito:
        """Another app client of this pool, e.g. someone else's app whose tokens we refuse."""
        client_id = _create_app_client(self._client, pool_id=self.pool_id, client_name=client_name)
        return DevCognito(
            endpoint_url=self.endpoint_url,
            region=self.region,
            pool_id=self.pool_id,
            client_id=client_id,
        )

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint_url}/{self.pool_id}/.well-known/jwks.json"

    def ensure_user(self, username: str, *, password: str | None = None) -> None:
        """Create and confirm `username`; if it exists, (re)set its password so we can sign in."""
        # A random default keeps a guessable password out of the dev stack.
        password = password or self._passwords.get(username) or _new_password()
        try:
            self._client.sign_up(ClientId=self.client_id, Username=username, Password=password)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "UsernameExistsException":
                raise
            self._client.admin_set_user_password(
                UserPoolId=self.pool_id, Username=username, Password=password, Permanent=True
            )
        else:
            self._client.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=username)
        self._passwords[username] = password

    def tokens_for(self, username: str) -> CognitoTokens:
        """Sign `username` in (creating it first if this object has not) with USER_PASSWORD_AUTH."""
        if username not in self._passwords:
            self.ensure_user(username)
        result = self._client.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": self._passwords[username]},
        )["AuthenticationResult"]
        return CognitoTokens(
            access_token=result["AccessToken"],
            id_token=result["IdToken"],
            refresh_token=result["RefreshToken"],
        )

    def token_for(self, username: str) -> str:
        """An access token for `username`, the kind the service accepts by default."""
        return self.tokens_for(username).access_token

    def id_token_for(self, username: str) -> str:
        return self.tokens_for(username).id_token

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DevCognito:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _client(*, endpoint_url: str, region: str) -> _CognitoIdp:
    # moto accepts any credentials; fixed fake ones keep real ones in the environment (and any
    # real account) out of play.
    client = botocore.session.get_session().create_client(
        "cognito-idp",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 - moto's fake credentials, not a secret
    )
    return cast(_CognitoIdp, client)


def _create_app_client(client: _CognitoIdp, *, pool_id: str, client_name: str) -> str:
    created = client.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=client_name,
        # No client secret: USER_PASSWORD_AUTH then needs no SECRET_HASH.
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    client_id: str = created["UserPoolClient"]["ClientId"]
    return client_id


def _new_password() -> str:
    # The suffix meets Cognito's default policy (upper, lower, digit, symbol) whatever the
    # random part happens to contain.
    return secrets.token_urlsafe(12) + "Aa1!"
