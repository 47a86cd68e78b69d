from __future__ import annotations

import pytest

from graphql_api.auth import MAX_TOKEN_BYTES, AuthenticationError, bearer_token

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "value",
    [f"Bearer {JWT}", f"bearer {JWT}", f"BEARER {JWT}", f"  Bearer   {JWT}  "],
)
def test_the_token_is_taken_from_one_bearer_header(value: str) -> None:
    assert bearer_token([value]) == JWT


def test_a_token_of_exactly_the_size_limit_is_accepted() -> None:
    token = "a.b." + "c" * (MAX_TOKEN_BYTES - 4)

    assert bearer_token([f"Bearer {token}"]) == token


@pytest.mark.parametrize(
    ("values", "message"),
    [
        pytest.param([], "missing bearer token", id="no header"),
        pytest.param([""], "missing bearer token", id="empty header"),
        pytest.param(["Bearer"], "missing bearer token", id="scheme only"),
        pytest.param(["Bearer    "], "missing bearer token", id="scheme and spaces"),
        pytest.param(
            [f"Bearer {JWT}", f"Bearer {JWT}"], "multiple Authorization headers", id="two headers"
        ),
        pytest.param(["Basic dXNlcjpwYXNz"], "unsupported authorization scheme", id="basic"),
        pytest.param([JWT], "unsupported authorization scheme", id="no scheme"),
        pytest.param([f"Token {JWT}"], "unsupported authorization scheme", id="other scheme"),
        pytest.param(["Bearer abc"], "malformed bearer token", id="one segment"),
        pytest.param(["Bearer a.b"], "malformed bearer token", id="two segments"),
        pytest.param(["Bearer a.b.c.d"], "malformed bearer token", id="four segments"),
        pytest.param([f"Bearer {JWT} extra"], "malformed bearer token", id="trailing word"),
        pytest.param([f"Bearer {JWT}, Bearer {JWT}"], "malformed bearer token", id="joined"),
        pytest.param(["Bearer a+b/c.d.e"], "malformed bearer token", id="not base64url"),
        pytest.param(
            ["Bearer a.b." + "c" * (MAX_TOKEN_BYTES - 3)], "token too large", id="over 16 KB"
        ),
    ],
)
def test_a_bad_authorization_header_is_refused(values: list[str], message: str) -> None:
    with pytest.raises(AuthenticationError) as caught:
        bearer_token(values)

    assert caught.value.message == message
    assert str(caught.value) == message


def test_the_message_never_echoes_the_token() -> None:
    secret_looking = "Bearer " + "s3cr3t." * 3

    with pytest.raises(AuthenticationError) as caught:
        bearer_token([secret_looking])

    assert "s3cr3t" not in str(caught.value)
