"""The shape of every REST body: field names as the GraphQL schema spells them (camelCase),
timestamps as GraphQL's DateTime, roles as the Swift client spells them, and the statuses of
streamed messages as GraphQL's enums name them."""

from __future__ import annotations

from graphql_api.domain.rules import (
    ERROR_MESSAGE_MAX_BYTES,
    MODEL_ID_MAX_CHARS,
    PROJECT_INSTRUCTIONS_MAX_CHARS,
    PROJECT_NAME_MAX_CHARS,
    TITLE_MAX_CHARS,
)
from graphql_api.errors import Code
from graphql_api.settings import InputLimits, StreamingSettings
from graphql_api.storage.records import FINISH_STATUSES, MESSAGE_STATUSES, ROLES

from .schema import ArrayOf, Prop, Ref, Shape

_DATE_TIME = "ISO-8601 in UTC with microseconds, e.g. 2025-01-31T12:00:00.000000Z."
_CLIENT_ID = "A client-chosen UUID; retrying with it {}."
_MODEL_ID = f"At most {MODEL_ID_MAX_CHARS} characters; no control characters."
_EXPECTED_VERSION = "Refuse with CONFLICT (409) unless the conversation is at this version."
_PROJECT_ID = "The project it is in; null when in none."
_PROJECT_NAME = f"Trimmed; 1 to {PROJECT_NAME_MAX_CHARS} characters; one line."
_INSTRUCTIONS = (
    f"At most {PROJECT_INSTRUCTIONS_MAX_CHARS} characters; line breaks and tabs allowed. Blank "
    "is none."
)


def _uuid(description: str | None = None, *, optional: bool = False) -> Prop:
    return Prop(
        type="string",
        format="uuid",
        description=description,
        required=not optional,
        nullable=optional,
    )


def _moment() -> Prop:
    return Prop(type="string", format="date-time", description=_DATE_TIME)


# The wire form of a message's status: GraphQL's MessageStatus and FinishStatus values.
STATUS_NAMES = tuple(status.upper() for status in MESSAGE_STATUSES)
FINISH_NAMES = tuple(status.upper() for status in FINISH_STATUSES)


MESSAGE = Shape(
    name="Message",
    description="A message as stored.",
    props={
        "id": _uuid(),
        "conversationId": _uuid(),
        "role": Prop(type="string", enum=ROLES),
        "content": Prop(type="string"),
        "createdAt": _moment(),
        "modelId": Prop(type="string", nullable=True),
        "isError": Prop(type="boolean"),
        "errorMessage": Prop(type="string", nullable=True),
        "status": Prop(
            type="string",
            enum=STATUS_NAMES,
            description=(
                "COMPLETE for every message not streamed. STREAMING while deltas are appended "
                "(`content` is the text so far); INTERRUPTED once STREAM_LEASE_SECONDS pass with "
                "no append (the text kept); STOPPED or FAILED as the finish ended it."
            ),
        ),
        "streamSeq": Prop(
            type="integer",
            nullable=True,
            description="While STREAMING or INTERRUPTED: the last acknowledged seq; else null.",
        ),
    },
)

_CONVERSATION_PROPS = {
    "id": _uuid(),
    "title": Prop(type="string"),
    "modelId": Prop(type="string", nullable=True),
    "createdAt": _moment(),
    "updatedAt": _moment(),
    "messageCount": Prop(type="integer"),
    "version": Prop(
        type="integer",
        description="Increases with every change; pass it as expectedVersion to detect races.",
    ),
    "lastMessage": Prop(
        type=Ref(MESSAGE.name),
        required=False,
        # Absent rather than null: see Prop's check on nullable shapes.
    ),
    "projectId": Prop(type="string", format="uuid", nullable=True, description=_PROJECT_ID),
}

CONVERSATION = Shape(
    name="Conversation",
    description="A conversation; `lastMessage` is absent until it has a message.",
    props=_CONVERSATION_PROPS,
)

CONVERSATION_PAGE = Shape(
    name="ConversationPage",
    description="One page of the caller's conversations, most recently updated first.",
    props={
        "conversations": Prop(type=ArrayOf(CONVERSATION.name)),
        "nextCursor": Prop(
            type="string",
            nullable=True,
            description="Pass as `cursor` for the next page; null on the last page.",
        ),
    },
)

CONVERSATION_WITH_MESSAGES = Shape(
    name="ConversationWithMessages",
    description="A conversation and a page of its messages, oldest first.",
    props={
        **_CONVERSATION_PROPS,
        "messages": Prop(
            type=ArrayOf(MESSAGE.name),
            description="In chronological order: the newest `limit`, or those before `before`.",
        ),
        "olderCursor": Prop(
            type="string",
            nullable=True,
            description="Pass as `before` for the messages before these; null at the first.",
        ),
    },
)

NEW_CONVERSATION = Shape(
    name="NewConversation",
    description="A conversation to create. Other fields (a whole ConversationDTO) are ignored.",
    props={
        "id": _uuid(_CLIENT_ID.format("creates one conversation"), optional=True),
        "title": Prop(
            type="string",
            description=f"Trimmed; 1 to {TITLE_MAX_CHARS} characters; no control characters.",
        ),
        "modelId": Prop(type="string", nullable=True, required=False, description=_MODEL_ID),
        "projectId": _uuid(
            "Start it in this project (the caller's: else 404). Absent or null: in none.",
            optional=True,
        ),
    },
)

CONVERSATION_CHANGES = Shape(
    name="ConversationChanges",
    description="What to change: any of title, modelId and projectId, in one write.",
    props={
        "title": Prop(
            type="string",
            required=False,
            description=f"Trimmed; 1 to {TITLE_MAX_CHARS} characters. Absent keeps the title.",
        ),
        "modelId": Prop(
            type="string",
            nullable=True,
            required=False,
            description=f"null clears the model; absent keeps it. {_MODEL_ID}",
        ),
        "expectedVersion": Prop(
            type="integer", nullable=True, required=False, description=_EXPECTED_VERSION
        ),
        "projectId": _uuid(
            "Move it into this project (the caller's: else 404); null: out of any; absent "
            "leaves it. Its messages are not touched.",
            optional=True,
        ),
    },
)

PROJECT = Shape(
    name="Project",
    description="A named place for conversations, with its own instructions.",
    props={
        "id": _uuid(),
        "name": Prop(type="string"),
        "instructions": Prop(type="string", nullable=True),
        "createdAt": _moment(),
        "updatedAt": Prop(
            type="string",
            format="date-time",
            description=f"When its name or instructions last changed. {_DATE_TIME}",
        ),
        "version": Prop(
            type="integer",
            description=(
                "Increases with every change of its name or instructions; pass it as "
                "expectedVersion to detect races."
            ),
        ),
        "conversationCount": Prop(
            type="integer", description="Its conversations, archived or not."
        ),
    },
)

PROJECT_PAGE = Shape(
    name="ProjectPage",
    description="One page of the caller's projects, most recently updated first.",
    props={
        "projects": Prop(type=ArrayOf(PROJECT.name)),
        "nextCursor": Prop(
            type="string",
            nullable=True,
            description="Pass as `cursor` for the next page; null on the last page.",
        ),
    },
)

NEW_PROJECT = Shape(
    name="NewProject",
    description="A project to create.",
    props={
        "id": _uuid(
            "A client-chosen UUID; retrying with it creates one project. Unique among the "
            "caller's conversations and projects (else 409)."
        ),
        "name": Prop(type="string", description=_PROJECT_NAME),
        "instructions": Prop(
            type="string", nullable=True, required=False, description=_INSTRUCTIONS
        ),
    },
)

PROJECT_CHANGES = Shape(
    name="ProjectChanges",
    description="What to change: name, instructions or both.",
    props={
        "name": Prop(
            type="string", required=False, description=f"{_PROJECT_NAME} Absent keeps it."
        ),
        "instructions": Prop(
            type="string",
            nullable=True,
            required=False,
            description=f"null clears them; absent keeps them. {_INSTRUCTIONS}",
        ),
        "expectedVersion": Prop(
            type="integer",
            nullable=True,
            required=False,
            description="Refuse with CONFLICT (409) unless the project is at this version.",
        ),
    },
)

PROJECT_DELETION = Shape(
    name="ProjectDeletion",
    description=(
        "How far deleting a project got. Each call does a bounded amount: call again until "
        "`done` (from the first call on, the project is gone for every reader)."
    ),
    props={
        "done": Prop(type="boolean", description="The project is gone; its id is now 404."),
        "conversationsRemaining": Prop(
            type="integer", description="Conversations still in the project, archived or not."
        ),
    },
)

NEW_MESSAGE = Shape(
    name="NewMessage",
    description="A message to add. Other fields are ignored.",
    props={
        "id": _uuid(_CLIENT_ID.format("adds the message once"), optional=True),
        "role": Prop(type="string", enum=ROLES),
        "content": Prop(
            type="string",
            description=(
                "Not empty; at most MAX_CONTENT_BYTES bytes of UTF-8 "
                f"({InputLimits().max_content_bytes} unless the service sets otherwise)."
            ),
        ),
        "modelId": Prop(type="string", nullable=True, required=False, description=_MODEL_ID),
        "isError": Prop(type="boolean", required=False, default=False),
        "errorMessage": Prop(
            type="string",
            nullable=True,
            required=False,
            description=f"At most {ERROR_MESSAGE_MAX_BYTES} bytes of UTF-8.",
        ),
    },
)

NEW_STREAM = Shape(
    name="NewStreamedMessage",
    description=(
        "An answer to start streaming: an empty message, STREAMING, after the newest message "
        "of the conversation (or on a new branch after `parentId`). Other fields are ignored."
    ),
    props={
        "id": _uuid(_CLIENT_ID.format("starts the message once"), optional=True),
        "parentId": _uuid(
            "The message it follows, as for an add; absent: the newest one.", optional=True
        ),
        "role": Prop(type="string", enum=ROLES, required=False, default="assistant"),
        "modelId": Prop(type="string", nullable=True, required=False, description=_MODEL_ID),
    },
)

NEW_DELTA = Shape(
    name="NewDelta",
    description="The next delta of a streaming message.",
    props={
        "seq": Prop(
            type="integer",
            description=(
                "1, 2, 3, ... per message; send N + 1 once N is answered. A stored seq again "
                "is answered as the first time; past the next is 409 with `expectedSeq`."
            ),
        ),
        "delta": Prop(
            type="string",
            description=(
                "Not empty; at most MAX_DELTA_BYTES bytes of UTF-8 "
                f"({StreamingSettings().max_delta_bytes} unless the service sets otherwise)."
            ),
        ),
    },
)

APPENDED = Shape(
    name="AppendedDelta",
    description="A stored delta.",
    props={
        "messageId": _uuid(),
        "seq": Prop(
            type="integer",
            description="The seq stored: with deltas sent in order, the highest contiguous one.",
        ),
        "length": Prop(
            type="integer",
            description="Characters (Unicode code points) of the message's text up to this seq.",
        ),
    },
)

FINISH = Shape(
    name="StreamFinish",
    description="How a streaming message ends; a user's stop is STOPPED.",
    props={
        "status": Prop(type="string", enum=FINISH_NAMES),
        "lastSeq": Prop(
            type="integer",
            description=(
                "The last seq sent (0 for none). Every stored delta is kept; a lastSeq past "
                "them is 409 with `expectedSeq`, unless `content` is given."
            ),
        ),
        "content": Prop(
            type="string",
            nullable=True,
            required=False,
            description="The full final text, the client's final word: it replaces the deltas.",
        ),
        "errorMessage": Prop(
            type="string",
            nullable=True,
            required=False,
            description=f"Only with FAILED; at most {ERROR_MESSAGE_MAX_BYTES} bytes of UTF-8.",
        ),
    },
)

# What a REST route can answer: the change feed's and the persisted documents' codes belong to
# GraphQL requests only.
REST_CODES: tuple[Code, ...] = (
    Code.UNAUTHENTICATED,
    Code.NOT_FOUND,
    Code.BAD_USER_INPUT,
    Code.BAD_REQUEST,
    Code.CONFLICT,
    Code.SERVICE_UNAVAILABLE,
    Code.INTERNAL_SERVER_ERROR,
    Code.RATE_LIMITED,
)

ERROR_DETAIL = Shape(
    name="ErrorDetail",
    description="What went wrong; `code` is GraphQL's `extensions.code` for the same fault.",
    props={
        "code": Prop(type="string", enum=tuple(code.value for code in REST_CODES)),
        "message": Prop(type="string", description="For people; may change between releases."),
        "field": Prop(
            type="string",
            required=False,
            description="The input at fault, as the request spelled it (BAD_USER_INPUT).",
        ),
        "retryable": Prop(
            type="boolean",
            required=False,
            description="true when the same request may succeed later (SERVICE_UNAVAILABLE).",
        ),
        "expectedSeq": Prop(
            type="integer",
            required=False,
            description="The seq a stream takes next, when a delta or a finish is out of step.",
        ),
        "retryAfter": Prop(
            type="integer",
            required=False,
            description=(
                "Seconds to wait before sending the request again, as Retry-After says: the "
                "caller's budget (RATE_LIMITED), or a service too busy to read it "
                "(SERVICE_UNAVAILABLE)."
            ),
        ),
    },
)

ERROR = Shape(
    name="Error",
    description="Every error response has this body.",
    props={"error": Prop(type=Ref(ERROR_DETAIL.name))},
)

SHAPES = (
    MESSAGE,
    CONVERSATION,
    CONVERSATION_PAGE,
    CONVERSATION_WITH_MESSAGES,
    NEW_CONVERSATION,
    CONVERSATION_CHANGES,
    PROJECT,
    PROJECT_PAGE,
    NEW_PROJECT,
    PROJECT_CHANGES,
    PROJECT_DELETION,
    NEW_MESSAGE,
    NEW_STREAM,
    NEW_DELTA,
    APPENDED,
    FINISH,
    ERROR,
    ERROR_DETAIL,
)
