"""Exact DynamoDB request counts, from aiobotocore's event hooks, grouped into waves.

A wave is a set of requests in flight together: a request that starts while another is
still in flight joins its wave. Sequential round trips therefore show as separate waves.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from graphql_api.storage.client import DynamoDBClient


@dataclasses.dataclass
class RequestCounter:
    operations: list[str] = dataclasses.field(default_factory=list)
    waves: list[list[str]] = dataclasses.field(default_factory=list)
    _in_flight: int = 0

    @property
    def count(self) -> int:
        return len(self.operations)

    def reset(self) -> None:
        self.operations.clear()
        self.waves.clear()

    def _before(self, model: Any, **_: Any) -> None:
        name = str(model.name)
        self.operations.append(name)
        if self._in_flight == 0:
            self.waves.append([])
        self.waves[-1].append(name)
        self._in_flight += 1

    def _after(self, **_: Any) -> None:
        self._in_flight = max(0, self._in_flight - 1)

    @classmethod
    @contextlib.contextmanager
    def attached(cls, client: DynamoDBClient) -> Iterator[RequestCounter]:
        counter = cls()
        events = client.meta.events
        # before-call fires once per API call (not per botocore retry); after-call pairs it.
        events.register("before-call.dynamodb", counter._before)
        events.register("after-call.dynamodb", counter._after)
        events.register("after-call-error.dynamodb", counter._after)
        try:
            yield counter
        finally:
            events.unregister("before-call.dynamodb", counter._before)
            events.unregister("after-call.dynamodb", counter._after)
            events.unregister("after-call-error.dynamodb", counter._after)
