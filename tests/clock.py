"""A clock tests can move: the service's idea of now, while the world's clock runs on."""

from __future__ import annotations

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
