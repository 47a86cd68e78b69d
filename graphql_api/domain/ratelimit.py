"""Per-user request budgets: a token bucket per user and budget (reads, writes, appends),
shared by every instance through Redis (or Valkey) when RATE_LIMIT_URL is set, kept in this
process otherwise.

Each bucket is GCRA, the generic cell rate algorithm: a token bucket kept as one timestamp,
the theoretical arrival time (TAT) of the user's next request at the budget's steady rate.
With T = 60 s / the rate per minute, a request costing n tokens is admitted when
max(TAT, now) + n*T - burst*T <= now, and then moves TAT to max(TAT, now) + n*T; refused, it
is told to wait the difference. A TAT in the past is a full bucket, so a bucket is forgotten
once its TAT passes (the Redis key expires then) and idle users cost nothing.

Shared, a check is one Lua script (EVALSHA; redis-py loads it again after NOSCRIPT, e.g. on a
restarted Redis), atomic over every bucket the request draws on, on Redis's clock, so the
instances' clocks do not matter. A check Redis fails, or does not answer within
SHARED_TIMEOUT_SECONDS, is decided by this process's buckets instead, and Redis is left alone
for SHARED_RETRY_SECONDS: during an outage every instance limits on its own (a user's budget
then is per instance), says so once in its log and in `chat_api_rate_limit_shared`, and goes
back to Redis by itself when it answers. A request is never failed for the limiter's sake.

Why not a library: `limits` has fixed, moving and sliding windows, not a token bucket with a
burst of its own; `pyrate-limiter`'s Redis bucket logs every request in a sorted set;
`throttled-py` has GCRA on Redis, but builds its own client from a URL, its pools cached in a
process-wide dict, with no way to hand it the client the lifespan opens and closes, and its
Redis support stops short of redis-py 8, which the broadcast uses. The algorithm itself is
the dozen lines below, twice.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import enum
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

from graphql_api.errors import RateLimitedError
from graphql_api.settings import RateLimitSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

# Redis answers a check in well under a millisecond; one that takes this long is not answering.
SHARED_TIMEOUT_SECONDS: Final = 0.1
# After a failed check, checks stay in the process this long before Redis is tried again, so
# an outage costs at most one slow check per interval, not one per request.
SHARED_RETRY_SECONDS: Final = 1.0
# How long startup waits for Redis to load the script; without it, the process starts with
# per-process limits and tries Redis again on the next check.
STARTUP_TIMEOUT_SECONDS: Final = 2.0
# Buckets this process keeps (its own, or during an outage), the least recently used forgotten
# first; a forgotten bucket is a full one. About 10 MB.
LOCAL_BUCKETS: Final = 50_000

Transport = Literal["graphql", "rest", "websocket"]


class Budget(enum.StrEnum):
    READ = "read"
    WRITE = "write"
    # The deltas of an answer being streamed (issue 21's appendMessage): several a second for
    # as long as the answer is generated, so they never spend the user's writes.
    APPEND = "append"


# What draws on the appends' budget, the one place that says so: the mutation's root field,
# and the REST route of the same operation (POST .../messages/{messageId}/deltas).
APPEND_MUTATIONS: Final = frozenset({"appendMessage"})
APPEND_ROUTE_SUFFIX: Final = "/deltas"

# Tokens a request draws from each of its user's budgets.
Charge = Mapping[Budget, int]


def mutation_budget(field_name: str) -> Budget:
    """The budget a mutation's root field draws on."""
    return Budget.APPEND if field_name in APPEND_MUTATIONS else Budget.WRITE


def route_budget(method: str, path: str) -> Budget:
    """The budget a REST operation (its method and route template) draws on."""
    if method in ("GET", "HEAD"):
        return Budget.READ
    return Budget.APPEND if path.endswith(APPEND_ROUTE_SUFFIX) else Budget.WRITE


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    per_minute: int
    burst: int

    @property
    def interval_ms(self) -> float:
        """Milliseconds per token."""
        return 60_000 / self.per_minute


def rates_of(settings: RateLimitSettings) -> dict[Budget, Rate]:
    return {
        Budget.READ: Rate(settings.reads_per_minute, settings.reads_burst),
        Budget.WRITE: Rate(settings.writes_per_minute, settings.writes_burst),
        Budget.APPEND: Rate(settings.appends_per_minute, settings.appends_burst),
    }


@dataclasses.dataclass(frozen=True, slots=True)
class Draw:
    """Tokens taken from one bucket."""

    key: str
    rate: Rate
    cost: int


@dataclasses.dataclass(frozen=True, slots=True)
class Taken:
    """A check's verdict: 0 ms to wait (admitted), or how long, and the draw that said so."""

    wait_ms: float
    refused_by: int = 0

    @property
    def admitted(self) -> bool:
        return self.wait_ms <= 0


class LocalBuckets:
    """The buckets in this process: each one's TAT in milliseconds of `clock`, at most
    `capacity` of them."""

    def __init__(
        self, *, capacity: int = LOCAL_BUCKETS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._tats: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._capacity = capacity
        self._clock = clock

    def __len__(self) -> int:
        return len(self._tats)

    def take(self, draws: Sequence[Draw]) -> Taken:
        now = self._clock() * 1000
        verdict = Taken(0.0)
        tats: list[float] = []
        for index, draw in enumerate(draws):
            interval = draw.rate.interval_ms
            tat = max(self._tats.get(draw.key, now), now) + draw.cost * interval
            wait = tat - draw.rate.burst * interval - now
            if wait > verdict.wait_ms:
                verdict = Taken(wait, index)
            tats.append(tat)
        if verdict.admitted:
            for draw, tat in zip(draws, tats, strict=True):
                self._tats[draw.key] = tat
        for draw in draws:
            if draw.key in self._tats:
                self._tats.move_to_end(draw.key)
        while len(self._tats) > self._capacity:
            self._tats.popitem(last=False)
        return verdict


# KEYS: the buckets a request draws on (one user's, so one hash slot on a cluster). ARGV: for
# each, its milliseconds per token, burst and cost. Returns the wait in milliseconds (a string:
# Redis would truncate a number) and the 0-based index of the bucket that refused. Redis 5 or
# later (Valkey included): TIME before writes needs effect replication.
_SCRIPT: Final = """
local clock = redis.call('TIME')
local now = clock[1] * 1000 + clock[2] / 1000
local wait, refused_by = 0, 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[i * 3 - 2])
  local burst = tonumber(ARGV[i * 3 - 1])
  local cost = tonumber(ARGV[i * 3])
  local tat = math.max(tonumber(redis.call('GET', key)) or now, now) + cost * interval
  if tat - burst * interval - now > wait then
    wait, refused_by = tat - burst * interval - now, i - 1
  end
  tats[i] = tat
end
if wait <= 0 then
  for i, key in ipairs(KEYS) do
    redis.call('SET', key, string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now))
  end
end
return {string.format('%.3f', wait), refused_by}
"""


class SharedBuckets:
    """The buckets in Redis, under `prefix`."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        from redis import exceptions as redis_errors

        self.redis = redis
        self._prefix = prefix
        self._script = redis.register_script(_SCRIPT)
        # What a check may fail with when Redis is down, slow or refusing (TimeoutError: our
        # own bound on it).
        self.failures: tuple[type[Exception], ...] = (
            redis_errors.RedisError,
            OSError,
            TimeoutError,
        )

    async def load(self) -> None:
        """Load the script, so the first check runs it by its hash."""
        await self.redis.script_load(_SCRIPT)

    async def take(self, draws: Sequence[Draw]) -> Taken:
        keys = [self._prefix + draw.key for draw in draws]
        args: list[float] = []
        for draw in draws:
            args += [draw.rate.interval_ms, draw.rate.burst, draw.cost]
        wait, refused_by = await self._script(keys=keys, args=args)
        return Taken(float(wait), int(refused_by))


def key_prefix(table_name: str) -> str:
    """Buckets of one table's users: deployments sharing a Redis never share budgets."""
    return f"chat-history:{table_name}:ratelimit:"


class RateLimitMetrics(Protocol):
    def rate_limited(self, kind: str, transport: str) -> None:
        """A request refused for its user's `kind` of budget."""

    def rate_limits_shared(self, shared: bool) -> None:
        """Whether checks are going through Redis (True) or stay in the process."""

    def rate_limit_checked_locally(self) -> None:
        """A check decided in the process although RATE_LIMIT_URL is set."""


class _Uncounted:
    def rate_limited(self, kind: str, transport: str) -> None:
        pass

    def rate_limits_shared(self, shared: bool) -> None:
        pass

    def rate_limit_checked_locally(self) -> None:
        pass


class RateLimiter:
    """Every user's budgets: in Redis through `shared` while it answers, in `local` otherwise."""

    def __init__(
        self,
        rates: Mapping[Budget, Rate],
        *,
        local: LocalBuckets | None = None,
        shared: SharedBuckets | None = None,
        metrics: RateLimitMetrics | None = None,
    ) -> None:
        self._rates = dict(rates)
        self._local = LocalBuckets() if local is None else local
        self._shared = shared
        self._metrics = _Uncounted() if metrics is None else metrics
        # Whether Redis is known to be down, and when (time.monotonic()) to try it again.
        self._outage = False
        self._retry_at = 0.0
        self._metrics.rate_limits_shared(shared is not None)

    @property
    def shared(self) -> bool:
        """Whether the next check goes to Redis: it is configured, and not known to be down."""
        return self._shared is not None and not self._outage

    async def check(self, user_id: str, charge: Charge, *, transport: Transport) -> None:
        """Take `charge` from the user's buckets; RateLimitedError, with nothing taken, when
        one of them is short. A cost over a bucket's burst takes the whole burst: the request
        is then admitted only from a full bucket, never refused for good."""
        budgets = [budget for budget, cost in sorted(charge.items()) if cost > 0]
        if not budgets:
            return
        taken = await self._take(
            [self._draw(user_id, budget, charge[budget]) for budget in budgets]
        )
        if taken.admitted:
            return
        refused = budgets[taken.refused_by]
        self._metrics.rate_limited(refused.value, transport)
        raise RateLimitedError(
            retry_after=max(1, math.ceil(taken.wait_ms / 1000)), budget=refused.value
        )

    def _draw(self, user_id: str, budget: Budget, cost: int) -> Draw:
        rate = self._rates[budget]
        # `{user_id}` is a hash tag: a user's buckets share a cluster slot, as a script's keys
        # must (ElastiCache Serverless is a cluster).
        return Draw(key=f"{{{user_id}}}:{budget}", rate=rate, cost=min(cost, rate.burst))

    async def _take(self, draws: Sequence[Draw]) -> Taken:
        shared = self._shared
        if shared is None:
            return self._local.take(draws)
        if time.monotonic() >= self._retry_at:
            try:
                async with asyncio.timeout(SHARED_TIMEOUT_SECONDS):
                    taken = await shared.take(draws)
            except shared.failures as exc:
                self.shared_failed(exc)
            else:
                self._shared_answered()
                return taken
        self._metrics.rate_limit_checked_locally()
        return self._local.take(draws)

    def shared_failed(self, exc: BaseException) -> None:
        self._retry_at = time.monotonic() + SHARED_RETRY_SECONDS
        if self._outage:
            return
        self._outage = True
        self._metrics.rate_limits_shared(False)
        # The exception's type only: its text may quote keys, which hold user ids.
        logger.warning(
            "rate limits are per process until the limiter's Redis answers again (%s)",
            type(exc).__name__,
        )

    def _shared_answered(self) -> None:
        if not self._outage:
            return
        self._outage = False
        self._metrics.rate_limits_shared(True)
        logger.info("rate limits are shared again: the limiter's Redis answers")


@contextlib.asynccontextmanager
async def open_rate_limiter(
    settings: RateLimitSettings,
    *,
    table_name: str,
    password: str | None = None,
    metrics: RateLimitMetrics | None = None,
) -> AsyncIterator[RateLimiter]:
    """The limiter `settings` describe: per process when RATE_LIMIT_URL is unset, else Redis,
    where `password` (REDIS_AUTH_TOKEN) authenticates unless the URL carries one."""
    rates = rates_of(settings)
    if settings.url is None:
        yield RateLimiter(rates, metrics=metrics)
        return
    # Imported only here: a process without Redis (Lambda, the dev stack) never loads it.
    from redis import exceptions as redis_errors
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    options: dict[str, Any] = {
        # Outer bounds only: each check is cut at SHARED_TIMEOUT_SECONDS.
        "socket_connect_timeout": 1.0,
        "socket_timeout": 1.0,
        "socket_keepalive": True,
        # A pooled connection Redis dropped (a restart, a failover) fails its next command:
        # try once more at once on a new one, rather than fall back for that.
        "retry": Retry(NoBackoff(), retries=1),
        "retry_on_error": [redis_errors.ConnectionError, redis_errors.TimeoutError],
    }
    # One connection per check in flight, so no more than the requests admitted at once.
    # redis-py lets a password in the URL win over this one.
    redis = Redis.from_url(settings.url, password=password, **options)
    shared = SharedBuckets(redis, prefix=key_prefix(table_name))
    limiter = RateLimiter(rates, shared=shared, metrics=metrics)
    try:
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                await shared.load()
        except shared.failures as exc:
            limiter.shared_failed(exc)
        yield limiter
    finally:
        await redis.aclose()
