"""Input rules, each failure naming the field."""

from __future__ import annotations

import pytest

from graphql_api.gql import validation
from graphql_api.gql.errors import UserInputError


def test_a_title_is_trimmed() -> None:
    assert validation.title("  Plans \t") == "Plans"


@pytest.mark.parametrize("title", ["", " \n ", "x" * 201, "a\x00b", "tab\there", "\x7f"])
def test_a_bad_title_is_refused(title: str) -> None:
    with pytest.raises(UserInputError) as caught:
        validation.title(title)
    assert caught.value.field == "title"


def test_limits_are_inclusive() -> None:
    assert validation.title("x" * 200) == "x" * 200
    assert validation.model_id("m" * 128) == "m" * 128
    assert validation.error_message("e" * 4096) == "e" * 4096
    assert validation.content("€", max_bytes=3) == "€"


def test_content_is_measured_in_utf8_bytes() -> None:
    with pytest.raises(UserInputError) as caught:
        validation.content("€€", max_bytes=5, field="messages[2].content")
    assert caught.value.field == "messages[2].content"


@pytest.mark.parametrize("text", ["\ud800", "ok\udfff"])
def test_lone_surrogates_are_refused_not_crashed_on(text: str) -> None:
    with pytest.raises(UserInputError):
        validation.content(text, max_bytes=100)
    with pytest.raises(UserInputError):
        validation.title(text)


def test_an_id_must_be_a_hyphenated_uuid_and_is_lowercased() -> None:
    value = "12345678-ABCD-1234-abcd-123456789ABC"
    assert validation.uuid_id(value, field="id") == value.lower()
    for bad in ("12345678123412341234123456789abc", "urn:uuid:" + value, "{" + value + "}", ""):
        with pytest.raises(UserInputError):
            validation.uuid_id(bad, field="id")


def test_expected_version_must_be_positive() -> None:
    assert validation.expected_version(None) is None
    with pytest.raises(UserInputError):
        validation.expected_version(0)
