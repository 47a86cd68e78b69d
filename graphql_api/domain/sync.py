"""Multi-device sync: the change feed a device reads.

The change log in storage is the source of truth. Every committed write also tells the
table's listener (see storage.client.ChatTable.listener), which the subscription transport
sets to fan changes out to live subscribers: a publish that is lost costs a subscriber some
latency, never a change, because subscribers also read the log.
"""

from __future__ import annotations

import dataclasses

from graphql_api.storage.records import ChangeRecord


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChangeFeed:
    changes: list[ChangeRecord]
    sync_token: str
    has_more: bool
    resync_required: bool
