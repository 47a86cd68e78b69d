"""Settings read from the environment: REDIS_AUTH_TOKEN, the password kept out of Redis URLs."""

from __future__ import annotations

import pytest

from graphql_api.settings import Settings, SettingsError

BASE_ENV = {
    "CHAT_TABLE_NAME": "t",
    "AWS_REGION": "us-east-1",
    "COGNITO_USER_POOL_ID": "us-east-1_Pool",
    "COGNITO_APP_CLIENT_IDS": "client",
}
VALKEY = "rediss://master.chat.abc123.use1.cache.amazonaws.com:6379"
TOKEN = "Zq3vX9kPm2LwR7tYb4NcH8sJd6FgA1eU"


def test_the_token_is_read_and_names_every_redis_url_it_authenticates() -> None:
    settings = Settings.from_env(
        {**BASE_ENV, "BROADCAST_URL": VALKEY, "RATE_LIMIT_URL": VALKEY, "REDIS_AUTH_TOKEN": TOKEN}
    )

    assert settings.redis_auth_token == TOKEN
    assert settings.redis_urls == {"BROADCAST_URL": VALKEY, "RATE_LIMIT_URL": VALKEY}


def test_a_token_beside_the_limiter_url_alone_is_read() -> None:
    settings = Settings.from_env({**BASE_ENV, "RATE_LIMIT_URL": VALKEY, "REDIS_AUTH_TOKEN": TOKEN})

    assert settings.redis_auth_token == TOKEN


def test_the_token_is_optional_and_a_blank_one_is_none() -> None:
    assert Settings.from_env({**BASE_ENV, "BROADCAST_URL": VALKEY}).redis_auth_token is None
    assert Settings.from_env({**BASE_ENV, "REDIS_AUTH_TOKEN": "  "}).redis_auth_token is None


def test_the_token_stays_out_of_the_settings_repr() -> None:
    settings = Settings.from_env({**BASE_ENV, "BROADCAST_URL": VALKEY, "REDIS_AUTH_TOKEN": TOKEN})

    assert TOKEN not in repr(settings)
    assert VALKEY in repr(settings)


def test_a_token_without_a_redis_url_is_refused() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE_ENV, "REDIS_AUTH_TOKEN": TOKEN})

    assert raised.value.variable == "REDIS_AUTH_TOKEN"
    assert "BROADCAST_URL" in str(raised.value)
    assert "RATE_LIMIT_URL" in str(raised.value)


def test_a_token_beside_a_url_with_its_own_password_is_refused() -> None:
    with_password = "rediss://:another@cache.example:6379"

    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE_ENV, "BROADCAST_URL": with_password, "REDIS_AUTH_TOKEN": TOKEN})

    assert raised.value.variable == "BROADCAST_URL"
    assert TOKEN not in str(raised.value)


def test_a_user_named_in_the_url_takes_the_token_as_its_password() -> None:
    rbac = "rediss://chat-history@cache.example:6379"

    settings = Settings.from_env({**BASE_ENV, "BROADCAST_URL": rbac, "REDIS_AUTH_TOKEN": TOKEN})

    assert settings.redis_urls == {"BROADCAST_URL": rbac, "RATE_LIMIT_URL": None}


@pytest.mark.parametrize("token", ["two words", "tab\there", "bell\x07"])
def test_a_malformed_token_is_refused_without_showing_it(token: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**BASE_ENV, "BROADCAST_URL": VALKEY, "REDIS_AUTH_TOKEN": token})

    assert raised.value.variable == "REDIS_AUTH_TOKEN"
    assert token not in str(raised.value)
