"""What the suite builds takes the paths the environment chooses (tests/general_paths.py).

`make test-general` sets DYNAMODB_FAST_PATH=false and GRAPHQL_DOCUMENT_CACHE_SIZE=0 so the API
and integration tests exercise botocore's and graphql-core's general paths. Were that choice
lost on the way to the apps and clients the tests build, that run would test our own paths a
second time and pass all the same: these fail instead, in whichever run it happens.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from graphql_api.settings import Settings, SettingsError
from graphql_api.storage.client import DynamoDBClient
from graphql_api.storage.fast_path import fast_path_of
from tests import general_paths
from tests.api.harness import Api, api_settings
from tests.conftest import REGION
from tests.tokens import FakeUserPool

# Not in the manifest of trusted documents, so only the document cache can plan it.
AD_HOC = "query AdHoc { conversations { edges { node { id title } } } }"


def as_serve_reads_it() -> Settings:
    """The settings `chat-history-api serve` would run with in this process's environment."""
    required = {
        "CHAT_TABLE_NAME": "chat",
        "AWS_REGION": REGION,
        "COGNITO_USER_POOL_ID": f"{REGION}_pool",
        "COGNITO_APP_CLIENT_IDS": "client",
    }
    chosen = {name: os.environ[name] for name in general_paths.VARIABLES if name in os.environ}
    return Settings.from_env({**required, **chosen})


async def test_the_apps_storage_takes_the_chosen_path(api: Api, alice: str) -> None:
    expected = as_serve_reads_it().dynamodb.fast_path
    client = api.services.table.client

    fast = fast_path_of(client)
    assert (fast is not None) is expected
    if fast is not None:
        sent = fast.requests_sent
        with api.counting() as counter:
            await api.data(AD_HOC, user=alice)
        assert fast.requests_sent - sent == counter.count > 0


def test_the_suites_own_client_takes_the_chosen_path(dynamodb_client: DynamoDBClient) -> None:
    expected = as_serve_reads_it().dynamodb.fast_path

    assert (fast_path_of(dynamodb_client) is not None) is expected


async def test_documents_are_planned_only_when_the_chosen_cache_keeps_them(
    api: Api, alice: str, planned_runs: list[str]
) -> None:
    expected = as_serve_reads_it().graphql_document_cache_size

    assert api.services.settings.graphql_document_cache_size == expected
    for _ in range(2):
        await api.data(AD_HOC, user=alice)
    assert planned_runs == (["AdHoc", "AdHoc"] if expected else [])


def test_the_variables_are_read_as_the_service_reads_them(
    user_pool: FakeUserPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DYNAMODB_FAST_PATH", "off")
    monkeypatch.setenv("GRAPHQL_DOCUMENT_CACHE_SIZE", "0")
    # The service's other variables are not the suite's to take from a developer's shell.
    monkeypatch.setenv("MAX_PAGE_SIZE", "3")

    def settings(**fields: Any) -> Settings:
        return api_settings(
            user_pool, table_name="chat", endpoint="http://127.0.0.1:1", region=REGION, **fields
        )

    chosen = settings()
    assert chosen.dynamodb.fast_path is False
    assert chosen.graphql_document_cache_size == 0
    assert chosen.limits.max_page_size == 100
    # What a test sets itself wins: the tests that compare the two paths build both.
    pinned = settings(dynamodb={"fast_path": True}, graphql_document_cache_size=512)
    assert pinned.dynamodb.fast_path is True
    assert pinned.graphql_document_cache_size == 512

    monkeypatch.setenv("DYNAMODB_FAST_PATH", "sometimes")
    with pytest.raises(SettingsError, match=r"^DYNAMODB_FAST_PATH: 'sometimes' is not a boolean"):
        settings()
