"""Property tests over HTTP: no input produces a 500, and whatever is accepted reads back valid.

"Valid" is checked by sending the stored values back through the API: a title the API
stored must be a title the API accepts, or clients that round-trip data would break.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.api.harness import Api, create_conversation, new_user

EXPECTED_CODES = {"BAD_USER_INPUT", "NOT_FOUND", "CONFLICT"}
CREATE = """
mutation($i: CreateConversationInput!) {
  createConversation(input: $i) { conversation { id title modelId version } }
}
"""
RENAME = """
mutation($i: RenameConversationInput!) {
  renameConversation(input: $i) { conversation { id title version } }
}
"""
ADD = """
mutation($i: AddMessageInput!) {
  addMessage(input: $i) { message { id role content modelId isError errorMessage } }
}
"""
PAGE = """
query($id: ID!, $first: Int, $after: String, $last: Int, $before: String) {
  conversation(id: $id) {
    messages(first: $first, after: $after, last: $last, before: $before) { edges { cursor } }
  }
}
"""

texts = st.text(
    alphabet=st.characters(codec="utf-8"),
    max_size=260,
) | st.sampled_from(["", " ", "\x00", "\u202e", "a" * 201, "\n title \t"])
ids = (
    st.uuids().map(str)
    | st.text(max_size=40)
    | st.sampled_from(["CONV#x", "00000000-0000-0000-0000-00000000000g"])
)
maybe = st.none() | texts
PROPERTY_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def checked(body: dict[str, Any]) -> dict[str, Any] | None:
    """The data of a success, None for an expected refusal; anything else fails the test."""
    errors = body.get("errors")
    if not errors:
        data: dict[str, Any] = body["data"]
        return data
    codes = {error["extensions"]["code"] for error in errors}
    assert codes <= EXPECTED_CODES, body
    return None


@PROPERTY_SETTINGS
@given(title=texts, model_id=maybe, conversation_id=st.none() | ids)
async def test_create_never_fails_unexpectedly_and_stores_what_it_accepts(
    api: Api, title: str, model_id: str | None, conversation_id: str | None
) -> None:
    user = new_user()
    fields: dict[str, Any] = {"title": title, "modelId": model_id}
    if conversation_id is not None:
        fields["id"] = conversation_id
    data = checked(await api.run(CREATE, {"i": fields}, user=user))
    if data is None:
        return
    stored = data["createConversation"]["conversation"]
    renamed = checked(
        await api.run(RENAME, {"i": {"id": stored["id"], "title": stored["title"]}}, user=user)
    )
    assert renamed is not None, "a stored title must be accepted when sent back"


@PROPERTY_SETTINGS
@given(
    role=st.sampled_from(["USER", "ASSISTANT", "SYSTEM"]),
    content=texts,
    model_id=maybe,
    is_error=st.booleans(),
    error_message=maybe,
    message_id=st.none() | ids,
)
async def test_add_message_never_fails_unexpectedly_and_stores_what_it_accepts(
    api: Api,
    role: str,
    content: str,
    model_id: str | None,
    is_error: bool,
    error_message: str | None,
    message_id: str | None,
) -> None:
    user = new_user()
    conversation = await create_conversation(api, user)
    fields: dict[str, Any] = {
        "conversationId": conversation["id"],
        "role": role,
        "content": content,
        "modelId": model_id,
        "isError": is_error,
        "errorMessage": error_message,
    }
    if message_id is not None:
        fields["id"] = message_id
    data = checked(await api.run(ADD, {"i": fields}, user=user))
    if data is None:
        return
    stored = data["addMessage"]["message"]
    assert stored["content"] == content
    replay = {**fields, "id": stored["id"]}
    again = checked(await api.run(ADD, {"i": replay}, user=user))
    assert again is not None
    assert again["addMessage"]["message"] == stored


@PROPERTY_SETTINGS
@given(
    first=st.none() | st.integers(-5, 500),
    last=st.none() | st.integers(-5, 500),
    after=st.none() | st.text(max_size=80),
    before=st.none() | st.text(max_size=80),
)
async def test_page_arguments_never_fail_unexpectedly(
    api: Api, first: int | None, last: int | None, after: str | None, before: str | None
) -> None:
    user = new_user()
    conversation = await create_conversation(api, user)
    variables = {
        "id": conversation["id"],
        "first": first,
        "last": last,
        "after": after,
        "before": before,
    }
    checked(await api.run(PAGE, variables, user=user))
