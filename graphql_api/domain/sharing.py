"""Where a share link is read: the public route's path, named once for every transport (the
route itself, GraphQL's and REST's `path`)."""

from __future__ import annotations

from typing import Final

SHARED_PREFIX: Final = "/shared/"


def shared_path(link_id: str) -> str:
    return f"{SHARED_PREFIX}{link_id}"
