"""The share link routes, on the same domain calls as GraphQL's shareLinks, createShareLink,
updateShareLink, revokeShareLink and forkSharedConversation. Reading a link is the public
route's (graphql_api.shared), which takes no token."""

from __future__ import annotations

from starlette.responses import Response

from graphql_api.domain import rules
from graphql_api.errors import NotFoundError
from graphql_api.storage.records import ShareLinkRecord

from . import bodies, render
from .endpoint import CONVERSATION_ID, PAGE, Call, Operation, Param, both, page_window, renamed
from .errors import PREFIX, SHARE_LINKS_PREFIX, json_response

LINK_ID = Param(name="id", type="string", location="path", description="The caller's share link.")
SHARED_ID = Param(
    name="id",
    type="string",
    location="path",
    description="A live share link's id, anyone's: the last segment of its path.",
)


async def list_share_links(call: Call) -> Response:
    chat = call.chat
    window = page_window(call, chat.share_link_window)
    page = await chat.list_share_links(window)
    next_cursor = (
        chat.cursors.share_link(page.items[-1].position) if page.has_next and page.items else None
    )
    return json_response(
        {
            "shareLinks": [render.share_link(record) for record in page.items],
            "nextCursor": next_cursor,
        }
    )


async def conversation_share_links(call: Call) -> Response:
    chat = call.chat
    conversation_id = rules.uuid_id(call.path["id"], field="id")
    # Read together; another user's conversation (whose partition lists no link of the
    # caller's anyway) is 404, as it is everywhere.
    (conversation,), (links,) = await both(
        chat.get_conversations([conversation_id]), chat.share_links_of([conversation_id])
    )
    if conversation is None:
        raise NotFoundError("conversation not found")
    return json_response({"shareLinks": [render.share_link(record) for record in links]})


async def create_share_link(call: Call) -> Response:
    with renamed({"conversationId": "id"}):
        record = await call.chat.create_share_link(
            conversation_id=call.path["id"], up_to_message_id=call.body.get("upToMessageId")
        )
    return json_response(
        render.share_link(record),
        201,
        headers={"Location": f"{SHARE_LINKS_PREFIX}/{record.id}"},
    )


async def get_share_link(call: Call) -> Response:
    (record,) = await call.chat.get_nodes([rules.share_link_id(call.path["id"])])
    if not isinstance(record, ShareLinkRecord):
        raise NotFoundError("share link not found")
    return json_response(render.share_link(record))


async def update_share_link(call: Call) -> Response:
    record = await call.chat.update_share_link(
        link_id=call.path["id"], up_to_message_id=call.body.get("upToMessageId")
    )
    return json_response(render.share_link(record))


async def revoke_share_link(call: Call) -> Response:
    await call.chat.revoke_share_link(link_id=call.path["id"])
    return Response(status_code=204)


async def fork_shared_conversation(call: Call) -> Response:
    with renamed({"shareId": "id"}):
        record = await call.chat.fork_shared_conversation(share_id=call.path["id"])
    return json_response(
        render.conversation(record), 201, headers={"Location": f"{PREFIX}/{record.id}"}
    )


_OF_CONVERSATION = f"{PREFIX}/{{id}}/share-links"
_ONE = f"{SHARE_LINKS_PREFIX}/{{id}}"

SHARE_LINK_OPERATIONS = (
    Operation(
        method="GET",
        path=_OF_CONVERSATION,
        operation_id="listConversationShareLinks",
        summary="A conversation's share links, newest first.",
        handler=conversation_share_links,
        params=(CONVERSATION_ID,),
        status=200,
        response=bodies.SHARE_LINK_LIST,
        errors=(400, 404),
    ),
    Operation(
        method="POST",
        path=_OF_CONVERSATION,
        operation_id="createShareLink",
        summary="Share a branch of a conversation, read-only, frozen as it is now.",
        description=(
            "The link shows the path from the first message to `upToMessageId` (default: the "
            "active leaf) as it is now: later messages, edits, other branches, renames, "
            "feedback and tags never show. Anyone with `path` on this service reads it; "
            "it is never indexed. A message not in the conversation, a temporary "
            "conversation, a branch too large for one snapshot or past "
            "MAX_SHARE_LINKS_PER_USER links is 400; a message of the branch still streaming "
            "is 409."
        ),
        handler=create_share_link,
        params=(CONVERSATION_ID,),
        body=bodies.SNAPSHOT_CHOICE,
        status=201,
        response=bodies.SHARE_LINK,
        errors=(400, 404, 409),
        headers={"Location": "The link's path among the caller's links (/share-links/{id})."},
    ),
    Operation(
        method="GET",
        path=SHARE_LINKS_PREFIX,
        operation_id="listShareLinks",
        summary="The caller's share links, newest first.",
        handler=list_share_links,
        params=PAGE,
        status=200,
        response=bodies.SHARE_LINK_PAGE,
        errors=(400,),
    ),
    Operation(
        method="GET",
        path=_ONE,
        operation_id="getShareLink",
        summary="One of the caller's share links.",
        handler=get_share_link,
        params=(LINK_ID,),
        status=200,
        response=bodies.SHARE_LINK,
        errors=(400, 404),
    ),
    Operation(
        method="PATCH",
        path=_ONE,
        operation_id="updateShareLink",
        summary="Take a link's snapshot again: same id, same path.",
        description=(
            "The branch up to `upToMessageId` (default: the active leaf now) and the "
            "conversation's title, as they are now."
        ),
        handler=update_share_link,
        params=(LINK_ID,),
        body=bodies.SNAPSHOT_CHOICE,
        status=200,
        response=bodies.SHARE_LINK,
        errors=(400, 404, 409),
    ),
    Operation(
        method="DELETE",
        path=_ONE,
        operation_id="revokeShareLink",
        summary="Stop sharing: the link answers 404 from now on.",
        handler=revoke_share_link,
        params=(LINK_ID,),
        status=204,
        response=None,
        errors=(400, 404),
    ),
    Operation(
        method="POST",
        path=f"{_ONE}/forks",
        operation_id="forkSharedConversation",
        summary="Copy what a live link shows into a new conversation of the caller's.",
        description=(
            "Any signed-in user may fork any live link: the new conversation (new ids) is the "
            "caller's own. An id not of a link's shape is 400; a link that does not answer "
            "is 404."
        ),
        handler=fork_shared_conversation,
        params=(SHARED_ID,),
        body=bodies.FORK_REQUEST,
        status=201,
        response=bodies.CONVERSATION,
        errors=(400, 404),
        headers={"Location": "The new conversation's path."},
    ),
)
