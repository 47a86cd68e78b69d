"""The moment the current request must be answered by, which every storage call it makes obeys.

DYNAMODB_DEADLINE_SECONDS bounds one storage call, retries included (ChatTable.guard). A
request may make several one after another (a mutation's root fields run in turn, a delete
walks its pages, a write waits for the user's earlier one), each of which would get the whole
deadline again. So the transports start the request's own deadline when they admit it
(`within`), and each storage call is held to what is left of it (`bounded`): an admitted
request finishes within DYNAMODB_DEADLINE_SECONDS of its admission, SERVICE_UNAVAILABLE at
worst for the calls that did not fit.

A context variable, as the request's record is: tasks started during the request (a loader's
gather) copy the context, and with it the deadline (one object, so what they count adds up).
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import time
from collections.abc import Iterator


@dataclasses.dataclass
class Admitted:
    """The current request's deadline, and what its time went on that says nothing about the
    process's load (admission.py reads it)."""

    # time.monotonic() by which the request must be answered.
    ends_at: float
    # Seconds spent waiting for the same user's earlier writes (storage.client.KeyedLocks):
    # a user queueing its own writes makes its requests slow, not the process busy.
    queued: float = 0.0


# None outside requests (the CLI, startup), where each call keeps its own bound only.
_current: contextvars.ContextVar[Admitted | None] = contextvars.ContextVar(
    "request_deadline", default=None
)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[Admitted]:
    """Storage calls made in the block end within `seconds` from now, all of them together."""
    admitted = Admitted(ends_at=time.monotonic() + seconds)
    token = _current.set(admitted)
    try:
        yield admitted
    finally:
        _current.reset(token)


def bounded(seconds: float) -> float:
    """`seconds`, or what is left of the current request's deadline if that is less (zero or
    negative once it has passed: the call then fails at once)."""
    admitted = _current.get()
    if admitted is None:
        return seconds
    return min(seconds, admitted.ends_at - time.monotonic())


def queued(seconds: float) -> None:
    """Count `seconds` the current request (if any) waited for its user's earlier writes."""
    admitted = _current.get()
    if admitted is not None:
        admitted.queued += seconds
