"""Relay's Node interface: what a client can refetch by id alone (node, nodes)."""

from __future__ import annotations

import strawberry


@strawberry.interface(
    description=(
        "An object the caller owns, refetchable by its id alone with `node(id:)` (Relay's "
        "@refetchable): conversations and projects. Their ids are the client-chosen UUIDs "
        "clients already hold, unique per user across both types. A Message is not a Node: "
        "its id alone does not say which conversation holds it, which is where a message is "
        "read from; refetch its conversation's `messages` instead."
    )
)
class Node:
    id: strawberry.ID
