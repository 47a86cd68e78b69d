"""The few choices a deployment makes, read from CDK context (`-c name=value`).

- `userPoolId` and `appClientIds`: use this existing Cognito user pool (`<region>_<id>`) and
  accept tokens of these comma-separated app clients, instead of creating a pool and client.
- `alarmEmail`: subscribe this address to the alarm topic.
- `certificateArn` (container shape): an ACM certificate; the ALB then serves HTTPS on 443 and
  redirects 80. The container shape refuses to synthesize without one, unless
- `allowPlainHttp` (container shape, default false) says so for a trial: the ALB then speaks
  plain HTTP, and bearer tokens cross the internet in clear text.
- `broadcast` (container shape, default true): ElastiCache (Valkey) for subscriptions fan-out
  and the per-user rate limits shared by every task.
- `rateLimits` (serverless shape, default false): an ElastiCache Serverless (Valkey) for the
  rate limits, shared by every Lambda instance; the function then runs in a VPC.
- `reservedConcurrency` (serverless shape, default RESERVED_CONCURRENCY): the most instances of
  the function at once, so a flood cannot scale the bill without bound.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from constructs import Node

_POOL_ID = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$")
# The stage's THROTTLE_RATE (200 requests/s) at 250 ms each on average: ten times a typical
# request's time, so only a slowdown (DynamoDB, a cold start burst) ever reaches it. At the
# cap, the function's duration costs 50 x 1.769 GB x $0.0000133334/GB-s = $4.25 an hour at
# most (infra/README.md has the whole arithmetic).
RESERVED_CONCURRENCY = 50


class OptionsError(ValueError):
    """A context value that cannot be used; the message names it."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExistingUserPool:
    pool_id: str
    client_ids: tuple[str, ...]

    @property
    def region(self) -> str:
        """A pool id starts with its region, so no lookup is needed to find it."""
        return self.pool_id.partition("_")[0]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Options:
    existing_user_pool: ExistingUserPool | None = None
    alarm_email: str | None = None
    certificate_arn: str | None = None
    allow_plain_http: bool = False
    broadcast: bool = True
    rate_limits: bool = False
    reserved_concurrency: int = RESERVED_CONCURRENCY

    @classmethod
    def from_context(cls, node: Node) -> Options:
        def text(name: str) -> str | None:
            value: Any = node.try_get_context(name)
            if value is None:
                return None
            return str(value).strip() or None

        return cls(
            existing_user_pool=_existing_pool(text("userPoolId"), text("appClientIds")),
            alarm_email=text("alarmEmail"),
            certificate_arn=text("certificateArn"),
            allow_plain_http=_flag("allowPlainHttp", text("allowPlainHttp"), default=False),
            broadcast=_flag("broadcast", text("broadcast"), default=True),
            rate_limits=_flag("rateLimits", text("rateLimits"), default=False),
            reserved_concurrency=_count(
                "reservedConcurrency", text("reservedConcurrency"), default=RESERVED_CONCURRENCY
            ),
        )


def _existing_pool(pool_id: str | None, client_ids: str | None) -> ExistingUserPool | None:
    if pool_id is None and client_ids is None:
        return None
    if pool_id is None or client_ids is None:
        raise OptionsError("userPoolId and appClientIds: give both to use an existing pool")
    if not _POOL_ID.match(pool_id):
        raise OptionsError(f"userPoolId: {pool_id!r} is not <region>_<id>")
    ids = tuple(part.strip() for part in client_ids.split(",") if part.strip())
    if not ids:
        raise OptionsError("appClientIds: name at least one app client id")
    return ExistingUserPool(pool_id=pool_id, client_ids=ids)


def _flag(name: str, value: str | None, *, default: bool) -> bool:
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"true", "yes", "on", "1"}:
        return True
    if lowered in {"false", "no", "off", "0"}:
        return False
    raise OptionsError(f"{name}: {value!r} is not true or false")


def _count(name: str, value: str | None, *, default: int) -> int:
    if value is None:
        return default
    if not value.isdigit() or int(value) < 1:
        raise OptionsError(f"{name}: {value!r} is not a whole number of at least 1")
    return int(value)
