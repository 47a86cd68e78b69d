"""Input rules below every transport, each failure naming the field."""

from __future__ import annotations

import pytest

from graphql_api.domain import rules
from graphql_api.errors import ValidationError


def test_a_title_is_trimmed() -> None:
    assert rules.title("  Plans \t") == "Plans"


@pytest.mark.parametrize("title", ["", " \n ", "x" * 201, "a\x00b", "tab\there", "\x7f"])
def test_a_bad_title_is_refused(title: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rules.title(title)
    assert caught.value.field == "title"


def test_limits_are_inclusive() -> None:
    assert rules.title("x" * 200) == "x" * 200
    assert rules.model_id("m" * 128) == "m" * 128
    assert rules.error_message("e" * 4096) == "e" * 4096
    assert rules.content("€", max_bytes=3) == "€"


def test_content_is_measured_in_utf8_bytes() -> None:
    with pytest.raises(ValidationError) as caught:
        rules.content("€€", max_bytes=5, field="messages[2].content")
    assert caught.value.field == "messages[2].content"


@pytest.mark.parametrize("text", ["\ud800", "ok\udfff"])
def test_lone_surrogates_are_refused_not_crashed_on(text: str) -> None:
    with pytest.raises(ValidationError):
        rules.content(text, max_bytes=100)
    with pytest.raises(ValidationError):
        rules.title(text)


def test_an_id_must_be_a_hyphenated_uuid_and_is_lowercased() -> None:
    value = "12345678-ABCD-1234-abcd-123456789ABC"
    assert rules.uuid_id(value, field="id") == value.lower()
    for bad in ("12345678123412341234123456789abc", "urn:uuid:" + value, "{" + value + "}", ""):
        with pytest.raises(ValidationError):
            rules.uuid_id(bad, field="id")


def test_expected_version_must_be_positive() -> None:
    assert rules.expected_version(None) is None
    with pytest.raises(ValidationError):
        rules.expected_version(0)
