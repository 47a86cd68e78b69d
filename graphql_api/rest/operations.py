"""The seed's six routes and the three of a streamed answer: each an Operation (described as
data) with its handler.

Handlers turn the declared inputs into graphql_api.domain calls and records into JSON; every
rule (ids, titles, roles, sizes, page sizes, cursors) is the domain's, shared with GraphQL.
"""

from __future__ import annotations

from typing import TypeVar

from starlette.responses import Response

from graphql_api.domain import rules
from graphql_api.domain.chat import FinishDraft, MessageDraft, StartDraft
from graphql_api.domain.paging import PageArgs
from graphql_api.errors import NotFoundError
from graphql_api.storage.records import UNSET

from . import bodies, render
from .endpoint import CONVERSATION_ID, LIMIT, PAGE, Call, Operation, Param, page_window, renamed
from .errors import PREFIX, json_response
from .projects import PROJECT_OPERATIONS
from .shares import SHARE_LINK_OPERATIONS

_A = TypeVar("_A")
_B = TypeVar("_B")

MESSAGE_ID = Param(
    name="messageId",
    type="string",
    location="path",
    format="uuid",
    description="The streamed message (its id as startMessage answered it).",
)
# The wire names of how a stream ends, to the domain's.
_FINISHES = {name: name.lower() for name in bodies.FINISH_NAMES}


async def list_conversations(call: Call) -> Response:
    chat = call.chat
    window = page_window(call, chat.conversation_window)
    page = await chat.list_conversations(window)
    next_cursor = (
        chat.cursors.conversation(page.items[-1].position) if page.has_next and page.items else None
    )
    return json_response(
        {
            "conversations": [render.conversation(record) for record in page.items],
            "nextCursor": next_cursor,
        }
    )


async def create_conversation(call: Call) -> Response:
    body = call.body
    record = await call.chat.create_conversation(
        title=body["title"],
        model_id=body.get("modelId"),
        conversation_id=body.get("id"),
        project_id=body.get("projectId"),
    )
    location = f"{call.url_path.rstrip('/')}/{record.id}"
    return json_response(render.conversation(record), 201, headers={"Location": location})


async def get_conversation(call: Call) -> Response:
    chat = call.chat
    conversation_id = rules.uuid_id(call.path["id"], field="id")
    with renamed({"last": "limit"}):
        window = chat.message_window(
            conversation_id,
            PageArgs(last=call.query.get("limit"), before=call.query.get("before")),
        )
    # Both reads at once, as GraphQL's prefetch does. Storage filters messages on the owner,
    # so for another user's conversation the page is empty and the answer is the 404 below.
    record, page = await chat.open_conversation(conversation_id, window)
    if record is None:
        raise NotFoundError("conversation not found")
    older = (
        chat.cursors.message(conversation_id, page.items[0].position)
        if page.has_previous and page.items
        else None
    )
    return json_response(
        {
            **render.conversation(record),
            "messages": [render.message(message) for message in page.items],
            "olderCursor": older,
        }
    )


async def update_conversation(call: Call) -> Response:
    body = call.body
    record = await call.chat.update_conversation(
        conversation_id=call.path["id"],
        title=body.get("title", UNSET),
        model_id=body.get("modelId", UNSET),
        expected_version=body.get("expectedVersion"),
        project_id=body.get("projectId", UNSET),
    )
    return json_response(render.conversation(record))


async def delete_conversation(call: Call) -> Response:
    await call.chat.delete_conversation(conversation_id=call.path["id"])
    return Response(status_code=204)


async def add_message(call: Call) -> Response:
    body = call.body
    draft = MessageDraft(
        id=body.get("id"),
        role=body["role"],
        content=body["content"],
        model_id=body.get("modelId"),
        is_error=body.get("isError", False),
        error_message=body.get("errorMessage"),
    )
    with renamed({"conversationId": "id"}):
        added = await call.chat.add_message(conversation_id=call.path["id"], message=draft)
    (record,) = added.messages
    return json_response(render.message(record), 201)


async def start_message(call: Call) -> Response:
    body = call.body
    draft = StartDraft(
        id=body.get("id"),
        parent_id=body.get("parentId"),
        role=body.get("role", "assistant"),
        model_id=body.get("modelId"),
    )
    with renamed({"conversationId": "id"}):
        added = await call.chat.start_message(conversation_id=call.path["id"], draft=draft)
    (record,) = added.messages
    return json_response(render.message(record), 201)


async def append_message(call: Call) -> Response:
    with renamed({"conversationId": "id"}):
        appended = await call.chat.append_message(
            conversation_id=call.path["id"],
            message_id=call.path["messageId"],
            seq=call.body["seq"],
            delta=call.body["delta"],
        )
    return json_response(
        {"messageId": appended.message_id, "seq": appended.seq, "length": appended.length}
    )


async def finish_message(call: Call) -> Response:
    body = call.body
    draft = FinishDraft(
        # An unknown name is refused by the rule, which names the three.
        status=_FINISHES.get(body["status"], ""),
        last_seq=body["lastSeq"],
        content=body.get("content"),
        error_message=body.get("errorMessage"),
    )
    with renamed({"conversationId": "id"}):
        finished = await call.chat.finish_message(
            conversation_id=call.path["id"], message_id=call.path["messageId"], draft=draft
        )
    return json_response(render.message(finished.message))


_ONE = f"{PREFIX}/{{id}}"
_STREAMED = f"{_ONE}/messages/{{messageId}}"

OPERATIONS = (
    Operation(
        method="GET",
        path=PREFIX,
        operation_id="listConversations",
        summary="The caller's conversations, most recently updated first.",
        handler=list_conversations,
        params=PAGE,
        status=200,
        response=bodies.CONVERSATION_PAGE,
        errors=(400,),
    ),
    Operation(
        method="POST",
        path=PREFIX,
        operation_id="createConversation",
        summary="Create a conversation.",
        description=(
            "Idempotent with a client-chosen `id`: the same id again answers 201 with the "
            "conversation as stored (its title unchanged). An id another user holds is 409; a "
            "`projectId` not of the caller's projects is 404."
        ),
        handler=create_conversation,
        body=bodies.NEW_CONVERSATION,
        status=201,
        response=bodies.CONVERSATION,
        errors=(400, 404, 409),
        headers={"Location": "The conversation's path."},
    ),
    Operation(
        method="GET",
        path=_ONE,
        operation_id="getConversation",
        summary="A conversation with its newest messages; `before` pages back to older ones.",
        handler=get_conversation,
        params=(
            CONVERSATION_ID,
            LIMIT,
            Param(
                name="before",
                type="string",
                description="`olderCursor` of a previous answer; absent for the newest.",
            ),
        ),
        status=200,
        response=bodies.CONVERSATION_WITH_MESSAGES,
        errors=(400, 404),
    ),
    Operation(
        method="PUT",
        path=_ONE,
        operation_id="updateConversation",
        summary="Rename a conversation, change its model, move it to a project: one write.",
        handler=update_conversation,
        params=(CONVERSATION_ID,),
        body=bodies.CONVERSATION_CHANGES,
        status=200,
        response=bodies.CONVERSATION,
        errors=(400, 404, 409),
    ),
    Operation(
        method="DELETE",
        path=_ONE,
        operation_id="deleteConversation",
        summary="Delete a conversation and all its messages.",
        handler=delete_conversation,
        params=(CONVERSATION_ID,),
        status=204,
        response=None,
        errors=(400, 404),
    ),
    Operation(
        method="POST",
        path=f"{_ONE}/messages",
        operation_id="addMessage",
        summary="Add a message to a conversation.",
        description=(
            "Idempotent with a client-chosen `id`: a retry answers 201 with the message as "
            "stored, and stores nothing more. The same id with other content is 409."
        ),
        handler=add_message,
        params=(CONVERSATION_ID,),
        body=bodies.NEW_MESSAGE,
        status=201,
        response=bodies.MESSAGE,
        errors=(400, 404, 409),
    ),
    Operation(
        method="POST",
        path=f"{_ONE}/messages/stream",
        operation_id="startMessage",
        summary="Start an answer that streams: an empty message, STREAMING.",
        description=(
            "Then POST its deltas, then finish it. Idempotent with a client-chosen `id`: a "
            "retry answers 201 with the message as it is now. At most MAX_STREAMING_MESSAGES "
            "messages stream per user at once: beyond, 409."
        ),
        handler=start_message,
        params=(CONVERSATION_ID,),
        body=bodies.NEW_STREAM,
        status=201,
        response=bodies.MESSAGE,
        errors=(400, 404, 409),
    ),
    Operation(
        method="POST",
        path=f"{_STREAMED}/deltas",
        operation_id="appendMessage",
        summary="Store the next delta of a streaming message.",
        description=(
            "Answered once stored: an acknowledged delta is never lost. Send seq N + 1 once N "
            "is answered; a stored seq again is answered as the first time and stores nothing. "
            "409 for a seq past the next (with `expectedSeq`) and for a finished message; 400 "
            "when the text would pass MAX_CONTENT_BYTES."
        ),
        handler=append_message,
        params=(CONVERSATION_ID, MESSAGE_ID),
        body=bodies.NEW_DELTA,
        status=200,
        response=bodies.APPENDED,
        errors=(400, 404, 409),
    ),
    Operation(
        method="POST",
        path=f"{_STREAMED}/finish",
        operation_id="finishMessage",
        summary="End a streaming message: COMPLETE, STOPPED (a user's stop) or FAILED.",
        description=(
            "The stored deltas become its content, unless `content` replaces them. The same "
            "finish again answers the message as stored; another status is 409."
        ),
        handler=finish_message,
        params=(CONVERSATION_ID, MESSAGE_ID),
        body=bodies.FINISH,
        status=200,
        response=bodies.MESSAGE,
        errors=(400, 404, 409),
    ),
    *PROJECT_OPERATIONS,
    *SHARE_LINK_OPERATIONS,
)
