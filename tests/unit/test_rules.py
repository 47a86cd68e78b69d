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


# --- streamed messages


def test_a_seq_counts_from_one_and_a_last_seq_from_zero() -> None:
    assert rules.seq(1) == 1
    assert rules.last_seq(0) == 0
    with pytest.raises(ValidationError) as caught:
        rules.seq(0)
    assert caught.value.field == "seq"
    with pytest.raises(ValidationError) as caught:
        rules.last_seq(-1)
    assert caught.value.field == "lastSeq"


@pytest.mark.parametrize("delta", ["", "€€", "\ud800"])
def test_a_delta_is_not_empty_and_within_its_bytes(delta: str) -> None:
    with pytest.raises(ValidationError) as caught:
        rules.delta(delta, max_bytes=5)
    assert caught.value.field == "delta"


def test_a_delta_at_its_limit_and_an_empty_final_content_are_taken() -> None:
    assert rules.delta("€a", max_bytes=4) == "€a"
    assert rules.final_content("", max_bytes=1) == ""
    assert rules.final_content(None, max_bytes=1) is None
    with pytest.raises(ValidationError) as caught:
        rules.final_content("ab", max_bytes=1)
    assert caught.value.field == "content"


def test_only_a_failed_finish_carries_an_error_message() -> None:
    assert rules.finish_status("stopped") == "stopped"
    assert rules.finish_error_message("failed", "overloaded") == "overloaded"
    assert rules.finish_error_message("complete", None) is None
    with pytest.raises(ValidationError) as caught:
        rules.finish_error_message("stopped", "why")
    assert caught.value.field == "errorMessage"
    with pytest.raises(ValidationError) as caught:
        rules.finish_status("interrupted")
    assert caught.value.field == "status"


def test_an_imported_message_may_be_empty_only_when_streamed_and_not_complete() -> None:
    assert rules.message_status("interrupted") == "interrupted"
    assert rules.imported_content("", status="stopped", max_bytes=10) == ""
    with pytest.raises(ValidationError) as caught:
        rules.imported_content("", status="complete", max_bytes=10, field="messages[0].content")
    assert caught.value.field == "messages[0].content"
    with pytest.raises(ValidationError) as caught:
        rules.message_status("paused", field="messages[0].status")
    assert caught.value.field == "messages[0].status"
