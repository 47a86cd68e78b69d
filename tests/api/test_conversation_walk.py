"""Walking the conversation list while conversations are created and renamed under it."""

from __future__ import annotations

from typing import Any

from tests.api.harness import Api, create_conversation

PAGE = """
query($after: String) {
  conversations(first: 4, after: $after) {
    edges { node { id } }
    pageInfo { hasNextPage endCursor }
  }
}
"""
RENAME = """
mutation($i: RenameConversationInput!) { renameConversation(input: $i) { conversation { id } } }
"""


async def next_page(api: Api, user: str, after: str | None) -> tuple[list[str], Any]:
    data = await api.data(PAGE, {"after": after}, user=user)
    connection = data["conversations"]
    return [edge["node"]["id"] for edge in connection["edges"]], connection["pageInfo"]


async def test_changes_during_a_walk_move_to_the_top_and_nothing_repeats(
    api: Api, alice: str
) -> None:
    created = [(await create_conversation(api, alice, f"c{n}"))["id"] for n in range(12)]
    newest_first = list(reversed(created))

    seen, info = await next_page(api, alice, None)
    assert seen == newest_first[:4]
    moved = newest_first[9]  # still ahead of the walk, on its last page
    await api.data(RENAME, {"i": {"id": moved, "title": "renamed mid-walk"}}, user=alice)
    added = (await create_conversation(api, alice, "created mid-walk"))["id"]
    while info["hasNextPage"]:
        page, info = await next_page(api, alice, info["endCursor"])
        seen += page

    assert len(seen) == len(set(seen)), "a conversation came back twice in one walk"
    assert seen == [c for c in newest_first if c != moved]
    fresh, _ = await next_page(api, alice, None)
    assert fresh[:2] == [added, moved]
