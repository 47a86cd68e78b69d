"""Share links over GraphQL and the public route: the contract, a snapshot that stays frozen
whatever the conversation does next, revocation at once on every delete path, one 404 for
every link that does not stand, the per-address limit, and isolation between users."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from graphql_api.domain.ratelimit import address_key
from graphql_api.storage.shares import new_link_id
from tests.api.harness import (
    SUITE_RATE_LIMITS,
    Api,
    add_messages,
    create_conversation,
    new_id,
    new_user,
)
from tests.api.test_operations import operation
from tests.api.test_projects import create_project
from tests.apps import AppFactory

CREATE = operation("CreateShareLink")
UPDATE = operation("UpdateShareLink")
REVOKE = operation("RevokeShareLink")
LINKS = operation("ShareLinks")
OF_CONVERSATION = operation("ConversationShareLinks")
FORK = operation("ForkSharedConversation")
JSON = "application/json"
# What Chromium sends when it opens a link.
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"
PUBLIC = {
    "x-robots-tag": "noindex, nofollow",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
}
BRANCH = """
mutation Branch($input: AddMessageInput!) {
  addMessage(input: $input) { message { id } }
}
"""
RENAME = """
mutation Rename($id: ID!, $title: String!) {
  renameConversation(input: { id: $id, title: $title }) { conversation { id } }
}
"""
TAG = """
mutation Tag($id: ID!) {
  updateConversation(input: { id: $id, tags: ["secret-tag"], pinned: true }) { conversation { id } }
}
"""
RATE = """
mutation Rate($c: ID!, $m: ID!) {
  setMessageFeedback(input: { conversationId: $c, messageId: $m, rating: DOWN, comment: "meh" }) {
    message { id }
  }
}
"""
SWITCH = """
mutation Switch($c: ID!, $leaf: ID!) {
  setActiveBranch(input: { conversationId: $c, leafId: $leaf }) { conversation { id } }
}
"""
DELETE = """
mutation Delete($id: ID!) { deleteConversation(input: { id: $id }) { deletedConversationId } }
"""
DELETE_ALL = "mutation { deleteAllMyData { done conversationsRemaining } }"
DELETE_PROJECT = operation("DeleteProject")
MOVE = """
mutation Move($c: ID!, $p: ID) {
  moveConversation(input: { conversationId: $c, projectId: $p }) { conversation { id } }
}
"""
NODE = "query Node($id: ID!) { node(id: $id) { __typename id ... on ShareLink { title } } }"
CHANGES = """
query Changes($since: String) {
  changes(since: $since) {
    changes { kind conversationId shareLinkId shareLink { id messageCount } }
  }
}
"""
SYNC = "{ changes { syncToken } }"
MESSAGES = """
query Messages($id: ID!) {
  conversation(id: $id) { messages { edges { node { id role content } } } }
}
"""


async def chat(api: Api, user: str, contents: list[str], **fields: Any) -> dict[str, Any]:
    """A conversation of `contents`, user and assistant in turn."""
    conversation = await create_conversation(api, user, "Tomatoes", **fields)
    await add_messages(api, user, conversation["id"], contents)
    return conversation


async def share(api: Api, user: str, conversation_id: str, **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE, {"conversationId": conversation_id, **fields}, user=user)
    link: dict[str, Any] = data["createShareLink"]["shareLink"]
    return link


async def read(api: Api, link_id: str, accept: str = JSON) -> httpx.Response:
    return await api.http.get(f"/shared/{link_id}", headers={"Accept": accept})


async def shown(api: Api, link_id: str) -> dict[str, Any]:
    response = await read(api, link_id)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def contents(body: dict[str, Any]) -> list[str]:
    return [message["content"] for message in body["messages"]]


async def gone(api: Api, link_id: str) -> bool:
    """Whether the link answers the one 404 of a link that does not stand."""
    unknown = await read(api, new_link_id())
    response = await read(api, link_id)
    return response.status_code == 404 and response.content == unknown.content


# --- the contract ---------------------------------------------------------------------------


async def test_a_link_serves_its_branch_as_json_with_nothing_of_the_owners(
    api: Api, alice: str
) -> None:
    conversation = await chat(api, alice, ["What is a tomato?", "A fruit.", "Really?", "Yes."])

    link = await share(api, alice, conversation["id"])

    assert link["path"] == f"/shared/{link['id']}"
    assert (link["conversationId"], link["title"], link["messageCount"]) == (
        conversation["id"],
        "Tomatoes",
        4,
    )
    response = await read(api, link["id"])
    assert response.status_code == 200
    assert response.headers["content-type"] == JSON
    for name, value in PUBLIC.items():
        assert response.headers[name] == value
    assert "private" in response.headers["cache-control"]
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    body = response.json()
    assert set(body) == {"title", "createdAt", "updatedAt", "messages"}
    assert body["title"] == "Tomatoes"
    assert (body["createdAt"], body["updatedAt"]) == (link["createdAt"], link["updatedAt"])
    assert [set(message) for message in body["messages"]] == [
        {"role", "content", "createdAt", "modelId"}
    ] * 4
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("user", "What is a tomato?"),
        ("assistant", "A fruit."),
        ("user", "Really?"),
        ("assistant", "Yes."),
    ]
    opened = await api.data(OF_CONVERSATION, {"id": conversation["id"]}, user=alice)
    for secret in (alice, conversation["id"], opened["conversation"]["activeLeafId"]):
        assert secret not in response.text


async def test_the_page_escapes_every_piece_of_content_and_carries_no_script(
    api: Api, alice: str
) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    conversation = await create_conversation(api, alice, f"Title {hostile}")
    await add_messages(api, alice, conversation["id"], [f"Q {hostile}\n  indented", "A & B"])
    link = await share(api, alice, conversation["id"])

    response = await read(api, link["id"], BROWSER)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert "<script" not in page.lower()
    assert "<img" not in page.lower()
    assert 'onerror="' not in page  # the text is there, escaped, never an attribute
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 3  # title, heading, message
    assert "Q &lt;script&gt;" in page
    assert "\n  indented" in page
    assert "A &amp; B" in page
    assert '<meta name="robots" content="noindex, nofollow">' in page
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<link rel="icon" href="data:,">' in page
    assert "white-space: pre-wrap" in page
    assert ">User " in page
    assert ">Assistant " in page
    for name, value in PUBLIC.items():
        assert response.headers[name] == value
    assert response.headers["vary"] == "Accept"


async def test_content_negotiation_prefers_the_page_and_refuses_neither(
    api: Api, alice: str
) -> None:
    conversation = await chat(api, alice, ["q"])
    link = await share(api, alice, conversation["id"])

    kinds = {
        accept: (await read(api, link["id"], accept)).headers.get("content-type")
        for accept in ("*/*", "application/json;q=0.9, text/html;q=0.5", "text/html")
    }
    refused = await read(api, link["id"], "image/png")

    assert kinds == {
        "*/*": "text/html; charset=utf-8",
        "application/json;q=0.9, text/html;q=0.5": JSON,
        "text/html": "text/html; charset=utf-8",
    }
    assert refused.status_code == 406


async def test_a_link_shows_the_path_up_to_the_message_it_names(api: Api, alice: str) -> None:
    conversation = await create_conversation(api, alice)
    stored = await add_messages(api, alice, conversation["id"], ["m0", "m1", "m2", "m3"])

    link = await share(api, alice, conversation["id"], upToMessageId=stored[1]["id"])

    assert (link["upToMessageId"], link["messageCount"]) == (stored[1]["id"], 2)
    assert contents(await shown(api, link["id"])) == ["m0", "m1"]


async def test_content_over_300_kb_is_served_from_the_content_bucket(api: Api, alice: str) -> None:
    large = "large " * 70_000
    conversation = await chat(api, alice, ["give me a lot", large])

    link = await share(api, alice, conversation["id"])

    assert contents(await shown(api, link["id"])) == ["give me a lot", large]


# --- frozen ---------------------------------------------------------------------------------


async def test_a_snapshot_stays_as_it_was_whatever_the_conversation_does_next(
    api: Api, alice: str
) -> None:
    conversation = await create_conversation(api, alice)
    cid = conversation["id"]
    stored = await add_messages(api, alice, cid, ["q1", "a1", "q2", "a2"])
    link = await share(api, alice, cid)
    before = await read(api, link["id"])

    # A write after sharing, an edit (a new branch from the second question), a regenerate
    # on it, a rename, feedback, tags and pins, and a switch back to the first branch.
    await add_messages(api, alice, cid, ["q3", "a3"])
    edited = await api.data(
        BRANCH,
        {
            "input": {
                "conversationId": cid,
                "parentId": stored[1]["id"],
                "role": "USER",
                "content": "q2, edited",
            }
        },
        user=alice,
    )
    await api.data(
        BRANCH,
        {"input": {"conversationId": cid, "role": "ASSISTANT", "content": "a2, edited"}},
        user=alice,
    )
    await api.data(RENAME, {"id": cid, "title": "Renamed"}, user=alice)
    await api.data(RATE, {"c": cid, "m": stored[3]["id"]}, user=alice)
    await api.data(TAG, {"id": cid}, user=alice)

    after = await read(api, link["id"])
    assert after.content == before.content
    assert contents(after.json()) == ["q1", "a1", "q2", "a2"]

    updated = (await api.data(UPDATE, {"id": link["id"]}, user=alice))["updateShareLink"]
    # The same link, on the branch active now (the edited one) and the title now.
    assert updated["shareLink"]["id"] == link["id"]
    assert updated["shareLink"]["path"] == link["path"]
    assert updated["shareLink"]["updatedAt"] > link["updatedAt"]
    body = await shown(api, link["id"])
    assert contents(body) == ["q1", "a1", "q2, edited", "a2, edited"]
    assert body["title"] == "Renamed"
    assert edited["addMessage"]["message"]["id"] not in (await read(api, link["id"])).text
    await api.data(SWITCH, {"c": cid, "leaf": stored[3]["id"]}, user=alice)
    assert contents(await shown(api, link["id"])) == ["q1", "a1", "q2, edited", "a2, edited"]
    await api.data(UPDATE, {"id": link["id"]}, user=alice)
    assert contents(await shown(api, link["id"])) == ["q1", "a1", "q2", "a2", "q3", "a3"]


async def test_a_branch_still_streaming_is_refused_until_it_is_finished(
    api: Api, alice: str
) -> None:
    conversation = await chat(api, alice, ["tell me"])
    started = await api.data(
        operation("StartMessage"), {"conversationId": conversation["id"]}, user=alice
    )
    message = started["startMessage"]["message"]
    earlier = conversation["id"]

    refused = await api.error(CREATE, {"conversationId": earlier}, user=alice)
    await api.data(
        operation("FinishMessage"),
        {
            "conversationId": earlier,
            "messageId": message["id"],
            "status": "STOPPED",
            "lastSeq": 0,
            "content": "Sure",
        },
        user=alice,
    )
    link = await share(api, alice, earlier)

    assert refused["extensions"]["code"] == "CONFLICT"
    assert message["id"] in refused["message"]
    assert contents(await shown(api, link["id"])) == ["tell me", "Sure"]


# --- bad input and limits -------------------------------------------------------------------


async def test_what_cannot_be_shared_is_refused(api: Api, alice: str, bob: str) -> None:
    mine = await chat(api, alice, ["q", "a"])
    other = await chat(api, alice, ["elsewhere"])
    theirs = await chat(api, bob, ["bob's"])
    empty = await create_conversation(api, alice)
    temporary = await create_conversation(api, alice, temporary=True)
    await add_messages(api, alice, temporary["id"], ["gone soon"])
    other_message = (await api.data(OF_CONVERSATION, {"id": other["id"]}, user=alice))[
        "conversation"
    ]["activeLeafId"]
    bobs_message = (await api.data(OF_CONVERSATION, {"id": theirs["id"]}, user=bob))[
        "conversation"
    ]["activeLeafId"]

    refusals = {
        "another user's conversation": {"conversationId": theirs["id"]},
        "a missing conversation": {"conversationId": new_id()},
        "a message of another conversation": {
            "conversationId": mine["id"],
            "upToMessageId": other_message,
        },
        "another user's message": {"conversationId": mine["id"], "upToMessageId": bobs_message},
        "a missing message": {"conversationId": mine["id"], "upToMessageId": new_id()},
        "not a message id": {"conversationId": mine["id"], "upToMessageId": "nope"},
        "no messages yet": {"conversationId": empty["id"]},
        "a temporary conversation": {"conversationId": temporary["id"]},
    }
    found = {
        name: (await api.error(CREATE, variables, user=alice))
        for name, variables in refusals.items()
    }

    codes = {name: error["extensions"]["code"] for name, error in found.items()}
    assert codes == {
        "another user's conversation": "NOT_FOUND",
        "a missing conversation": "NOT_FOUND",
        "a message of another conversation": "BAD_USER_INPUT",
        "another user's message": "BAD_USER_INPUT",
        "a missing message": "BAD_USER_INPUT",
        "not a message id": "BAD_USER_INPUT",
        "no messages yet": "BAD_USER_INPUT",
        "a temporary conversation": "BAD_USER_INPUT",
    }
    assert (
        found["another user's conversation"]["message"]
        == found["a missing conversation"]["message"]
    )
    assert found["another user's message"] == found["a missing message"]
    assert (await api.data(LINKS, user=alice))["shareLinks"]["totalCount"] == 0


async def test_at_most_max_share_links_per_user(make_api: AppFactory) -> None:
    async with make_api(limits={"max_share_links_per_user": 2}) as api:
        alice = new_user()
        conversation = await chat(api, alice, ["q"])
        first = await share(api, alice, conversation["id"])
        await share(api, alice, conversation["id"])

        refused = await api.error(CREATE, {"conversationId": conversation["id"]}, user=alice)
        await api.data(REVOKE, {"id": first["id"]}, user=alice)
        again = await share(api, alice, conversation["id"])

    assert refused["extensions"]["code"] == "BAD_USER_INPUT"
    assert "at most 2 share links" in refused["message"]
    assert again["id"] != first["id"]


# --- the owner's lists ----------------------------------------------------------------------


async def test_the_callers_links_newest_first_page_by_page_and_on_each_conversation(
    api: Api,
) -> None:
    user = new_user()
    first, second = await chat(api, user, ["q"]), await chat(api, user, ["r"])
    made = [await share(api, user, conversation["id"]) for conversation in (first, second, first)]

    pages, after = [], None
    while True:
        data = (await api.data(LINKS, {"first": 2, "after": after}, user=user))["shareLinks"]
        pages.append([edge["node"]["id"] for edge in data["edges"]])
        assert data["totalCount"] == 3
        if not data["pageInfo"]["hasNextPage"]:
            break
        after = data["pageInfo"]["endCursor"]
    on_first = (await api.data(OF_CONVERSATION, {"id": first["id"]}, user=user))["conversation"]
    node = (await api.data(NODE, {"id": made[1]["id"]}, user=user))["node"]

    assert pages == [[made[2]["id"], made[1]["id"]], [made[0]["id"]]]
    assert [link["id"] for link in on_first["shareLinks"]] == [made[2]["id"], made[0]["id"]]
    assert node == {"__typename": "ShareLink", "id": made[1]["id"], "title": "Tomatoes"}


async def test_each_link_change_is_in_the_change_log(api: Api, alice: str) -> None:
    conversation = await chat(api, alice, ["q"])
    since = (await api.data(SYNC, user=alice))["changes"]["syncToken"]
    link = await share(api, alice, conversation["id"])
    await add_messages(api, alice, conversation["id"], ["a"])
    await api.data(UPDATE, {"id": link["id"]}, user=alice)
    await api.data(REVOKE, {"id": link["id"]}, user=alice)

    changes = (await api.data(CHANGES, {"since": since}, user=alice))["changes"]["changes"]

    assert [change["kind"] for change in changes] == [
        "SHARE_LINK_CREATED",
        "MESSAGES_ADDED",
        "SHARE_LINK_UPDATED",
        "SHARE_LINK_REVOKED",
    ]
    links = [change for change in changes if change["kind"].startswith("SHARE_LINK")]
    assert {(c["conversationId"], c["shareLinkId"]) for c in links} == {
        (conversation["id"], link["id"])
    }
    # As they are now: revoked.
    assert [change["shareLink"] for change in links] == [None, None, None]


# --- revocation -----------------------------------------------------------------------------


async def test_revoking_answers_404_at_once(api: Api, alice: str) -> None:
    conversation = await chat(api, alice, ["q"])
    link = await share(api, alice, conversation["id"])
    assert not await gone(api, link["id"])

    revoked = await api.data(REVOKE, {"id": link["id"]}, user=alice)

    assert revoked["revokeShareLink"] == {"id": link["id"]}
    assert await gone(api, link["id"])
    assert (await api.data(OF_CONVERSATION, {"id": conversation["id"]}, user=alice))[
        "conversation"
    ]["shareLinks"] == []
    again = await api.error(REVOKE, {"id": link["id"]}, user=alice)
    assert again["extensions"]["code"] == "NOT_FOUND"


async def test_deleting_the_conversation_revokes_its_links_before_it_returns(
    api: Api, alice: str
) -> None:
    conversation = await chat(api, alice, ["q", "a"])
    links = [await share(api, alice, conversation["id"]) for _ in range(2)]

    await api.data(DELETE, {"id": conversation["id"]}, user=alice)

    for link in links:
        assert await gone(api, link["id"])
    assert (await api.data(LINKS, user=alice))["shareLinks"]["totalCount"] == 0


@dataclasses.dataclass
class TickingClock:
    """Real time that also moves a second at every reading: a call's 5 s budget is spent
    after a unit or two, so a delete takes several calls."""

    ticks: int = 0

    def __call__(self) -> datetime:
        self.ticks += 1
        return datetime.now(UTC) + timedelta(seconds=self.ticks)


@pytest_asyncio.fixture(scope="module")
async def ticking(make_api: AppFactory) -> AsyncIterator[Api]:
    async with make_api(clock=TickingClock()) as running:
        yield running


async def test_delete_all_my_data_revokes_every_link_at_its_first_call(ticking: Api) -> None:
    api, alice = ticking, new_user()
    links = []
    for _ in range(4):
        conversation = await chat(api, alice, ["q", "a"])
        links.append(await share(api, alice, conversation["id"]))

    first = (await api.data(DELETE_ALL, user=alice))["deleteAllMyData"]

    assert not first["done"], "the rest of the delete continues in later calls"
    for link in links:
        assert await gone(api, link["id"])
    while not (await api.data(DELETE_ALL, user=alice))["deleteAllMyData"]["done"]:
        pass
    # The account works again afterwards, links included.
    conversation = await chat(api, alice, ["again"])
    assert contents(await shown(api, (await share(api, alice, conversation["id"]))["id"])) == [
        "again"
    ]


async def test_deleting_a_project_with_its_conversations_revokes_their_links_at_once(
    ticking: Api,
) -> None:
    api, alice = ticking, new_user()
    project = await create_project(api, alice, "Garden")
    inside = []
    for _ in range(4):
        conversation = await chat(api, alice, ["q"], projectId=project["id"])
        inside.append(await share(api, alice, conversation["id"]))
    outside = await share(api, alice, (await chat(api, alice, ["kept"]))["id"])
    variables = {"id": project["id"], "deleteConversations": True}

    first = (await api.data(DELETE_PROJECT, variables, user=alice))["deleteProject"]

    assert not first["done"], "the rest of the delete continues in later calls"
    for link in inside:
        assert await gone(api, link["id"])
    assert not await gone(api, outside["id"])


async def test_a_project_deleted_without_its_conversations_leaves_their_links(
    api: Api, alice: str
) -> None:
    project = await create_project(api, alice, "Garden")
    conversation = await chat(api, alice, ["q"], projectId=project["id"])
    link = await share(api, alice, conversation["id"])

    deleted = await api.data(DELETE_PROJECT, {"id": project["id"]}, user=alice)

    assert deleted["deleteProject"]["done"]
    assert contents(await shown(api, link["id"])) == ["q"]


# --- one 404 --------------------------------------------------------------------------------


async def test_unknown_revoked_deleted_and_malformed_links_answer_the_same_404(
    api: Api, alice: str
) -> None:
    revoked = await share(api, alice, (await chat(api, alice, ["q"]))["id"])
    await api.data(REVOKE, {"id": revoked["id"]}, user=alice)
    doomed = await chat(api, alice, ["q"])
    deleted = await share(api, alice, doomed["id"])
    await api.data(DELETE, {"id": doomed["id"]}, user=alice)
    ids = {
        "unknown": new_link_id(),
        "revoked": revoked["id"],
        "deleted": deleted["id"],
        "malformed": "not-a-link",
        "a conversation's id": doomed["id"],
    }

    for accept in (JSON, BROWSER):
        answers = {}
        for name, link_id in ids.items():
            with api.counting() as counter:
                response = await read(api, link_id, accept)
            if name in ("malformed", "a conversation's id"):
                assert counter.operations == [], "an id of another shape is never looked up"
            headers = {k: v for k, v in response.headers.items() if k != "x-request-id"}
            answers[name] = (response.status_code, headers, response.content)
        assert len(set(map(repr, answers.values()))) == 1, answers
        status, headers, _ = answers["unknown"]
        assert status == 404
        for name, value in PUBLIC.items():
            assert headers[name] == value


# --- the per-address limit ------------------------------------------------------------------


async def test_each_client_address_has_share_reads_per_minute(make_api: AppFactory) -> None:
    limits = dataclasses.replace(SUITE_RATE_LIMITS, share_reads_per_minute=5)
    async with make_api(rate_limits=limits) as api:
        alice = new_user()
        link = await share(api, alice, (await chat(api, alice, ["q"]))["id"])
        near = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api.asgi, client=("203.0.113.7", 4000)),
            base_url="http://testserver",
        )
        far = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api.asgi, client=("198.51.100.9", 4000)),
            base_url="http://testserver",
        )
        async with near, far:
            # Unknown ids spend the budget as a real one does: guessing is as slow as reading.
            statuses = [
                (await near.get(f"/shared/{link_id}", headers={"Accept": JSON})).status_code
                for link_id in [link["id"], new_link_id(), "bad", link["id"], new_link_id()]
            ]
            refused = await near.get(f"/shared/{link['id']}", headers=api.headers(alice))
            elsewhere = await far.get(f"/shared/{link['id']}", headers={"Accept": JSON})

    assert statuses == [200, 404, 404, 200, 404]
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 12
    assert refused.headers["x-robots-tag"] == "noindex, nofollow"
    assert "Try again in" in refused.text
    assert elsewhere.status_code == 200


@pytest.mark.parametrize(
    ("first", "second", "shared"),
    [
        ("203.0.113.7", "203.0.113.8", False),
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::9", True),
        ("2001:db8:1:2::1", "2001:db8:1:3::1", False),
        ("::ffff:203.0.113.7", "203.0.113.7", True),
    ],
)
def test_an_ipv6_client_is_one_address_for_its_whole_64(
    first: str, second: str, shared: bool
) -> None:
    assert (address_key(first) == address_key(second)) is shared


# --- isolation ------------------------------------------------------------------------------


async def test_another_users_link_is_not_found_but_anyone_may_fork_a_live_one(
    api: Api, alice: str, bob: str
) -> None:
    conversation = await chat(api, alice, ["q", "a"])
    link = await share(api, alice, conversation["id"])
    refusals = [
        await api.error(REVOKE, {"id": link["id"]}, user=bob),
        await api.error(UPDATE, {"id": link["id"]}, user=bob),
    ]
    unknown = await api.error(REVOKE, {"id": new_link_id()}, user=bob)

    assert [error["extensions"]["code"] for error in refusals] == ["NOT_FOUND"] * 2
    assert all(error["message"] == unknown["message"] for error in refusals)
    assert (await api.data(NODE, {"id": link["id"]}, user=bob))["node"] is None
    assert (await api.data(LINKS, user=bob))["shareLinks"]["edges"] == []
    assert not await gone(api, link["id"])

    fork = (await api.data(FORK, {"shareId": link["id"]}, user=bob))["forkSharedConversation"]
    forked = fork["conversation"]
    assert forked["id"] != conversation["id"]
    assert (forked["title"], forked["messageCount"]) == ("Tomatoes", 2)
    opened = await api.data(MESSAGES, {"id": forked["id"]}, user=bob)
    copied = [edge["node"] for edge in opened["conversation"]["messages"]["edges"]]
    assert [(m["role"], m["content"]) for m in copied] == [("USER", "q"), ("ASSISTANT", "a")]
    originals = await api.data(MESSAGES, {"id": conversation["id"]}, user=alice)
    original_ids = {e["node"]["id"] for e in originals["conversation"]["messages"]["edges"]}
    assert not original_ids & {message["id"] for message in copied}
    # The fork is bob's alone, and alice's conversation is as it was.
    assert (await api.data(NODE, {"id": forked["id"]}, user=alice))["node"] is None
    assert contents(await shown(api, link["id"])) == ["q", "a"]

    await api.data(REVOKE, {"id": link["id"]}, user=alice)
    dead = await api.error(FORK, {"shareId": link["id"]}, user=bob)
    assert dead["extensions"]["code"] == "NOT_FOUND"
    malformed = await api.error(FORK, {"shareId": "not-a-link"}, user=bob)
    assert malformed["extensions"]["code"] == "BAD_USER_INPUT"
