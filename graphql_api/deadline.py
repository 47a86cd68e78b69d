"""The moment the current request must be answered by, which every storage call it makes obeys.

DYNAMODB_DEADLINE_SECONDS bounds one storage call, retries included (ChatTable.guard). A
request may make several one after another (a mutation's root fields run in turn, a delete
walks its pages, a write waits for the user's earlier one), each of which would get the whole
deadline again. So the transports start the request's own deadline when they admit it
(`within`), and each storage call is held to what is left of it (`bounded`): an admitted
request finishes within DYNAMODB_DEADLINE_SECONDS of its admission, SERVICE_UNAVAILABLE at
worst for the calls that did not fit.

A context variable, as the request's record is: tasks started during the request (a loader's
gather) copy the context, and with it the deadline.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

# time.monotonic() by which the current request must be answered; None outside requests
# (the CLI, startup), where each call keeps its own bound only.
_ends_at: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "request_deadline", default=None
)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Storage calls made in the block end within `seconds` from now, all of them together."""
    token = _ends_at.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ends_at.reset(token)


def bounded(seconds: float) -> float:
    """`seconds`, or what is left of the current request's deadline if that is less (zero or
    negative once it has passed: the call then fails at once)."""
    ends_at = _ends_at.get()
    if ends_at is None:
        return seconds
    return min(seconds, ends_at - time.monotonic())
