"""The service's own paths or the libraries' general ones: the environment chooses for the suite.

`make test-general` (CI runs it after `make test`) runs the API and integration tests again with
DYNAMODB_FAST_PATH=false and GRAPHQL_DOCUMENT_CACHE_SIZE=0, so botocore's whole pipeline and
graphql-core's unplanned execution are tested as well as storage/fast_path.py and
gql/planned.py. Those two variables reach what the tests build through here only, read by the
service's own Settings (the same names, parsing and validation); nothing else of the
environment is read, so a developer's shell does not change what the tests build.
"""

from __future__ import annotations

import os
from typing import Any, Final

from graphql_api.settings import DynamoDBSettings, Settings

VARIABLES: Final = ("DYNAMODB_FAST_PATH", "GRAPHQL_DOCUMENT_CACHE_SIZE")


def environment() -> dict[str, str]:
    """The variables that choose, as set; for a process the tests start."""
    return {name: os.environ[name] for name in VARIABLES if name in os.environ}


def dynamodb_settings(**fields: Any) -> DynamoDBSettings:
    """DynamoDBSettings of `fields`, the fast path as chosen unless `fields` set it."""
    return DynamoDBSettings.from_env(environment(), **fields)


def settings(**fields: Any) -> Settings:
    """Settings of `fields`, the document cache as chosen unless `fields` set it."""
    return Settings.from_env(environment(), **fields)


def fast_path() -> bool:
    """Whether a client the tests open by hand (not from Settings) takes the fast path."""
    # The two required fields are given only to be ignored: no table or region is read here.
    return dynamodb_settings(table_name="unused", region="unused").fast_path
