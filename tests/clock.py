"""Time a test controls: a clock it moves (the service's idea of now, while the world's clock
runs on), and moments that come only when it says so."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta


@dataclasses.dataclass
class MovableClock:
    """Real time plus an offset the test moves forward; pass it where a clock is taken."""

    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


@dataclasses.dataclass
class HeldMoments:
    """A `wait_until` (create_app's) whose moments come when the test says, not by the clock:
    a wait returns only after `arrive()`. `awaited` holds each moment waited for."""

    awaited: list[float] = dataclasses.field(default_factory=list)
    _waiting: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    _arrived: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)

    async def __call__(self, moment: float) -> None:
        self.awaited.append(moment)
        self._waiting.set()
        await self._arrived.wait()

    async def waited_for(self) -> None:
        """Returns once something is waiting for a moment."""
        await self._waiting.wait()

    def arrive(self) -> None:
        """Every moment waited for, and every later one, has come."""
        self._arrived.set()
