"""App fixtures: one app per test module, on the suite's moto store, with real signed tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from graphql_api.gql import executor
from graphql_api.gql.planned import PlannedExecutor
from tests.api.harness import Api, new_user
from tests.api.rest_harness import Rest
from tests.apps import AppFactory


@pytest_asyncio.fixture(scope="module")
async def api(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api() as running:
        yield running


@pytest.fixture
def alice() -> str:
    return new_user()


@pytest.fixture
def bob() -> str:
    return new_user()


@pytest_asyncio.fixture(scope="module")
async def rest(api: Api) -> Rest:
    """The REST routes of the module's app, every answer checked against its OpenAPI document."""
    return await Rest.on(api)


@pytest.fixture
def planned_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The operations that ran on the planned executor."""
    runs: list[str] = []

    class Counting(PlannedExecutor):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            runs.append(self.operation.name.value if self.operation.name else "")

    monkeypatch.setattr(executor, "PlannedExecutor", Counting)
    return runs
