"""The fast path's own pieces, held to botocore's: the signature, the model it relies on."""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import botocore.auth
import botocore.session
import pytest
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.model import Shape

from graphql_api.storage.fast_path import (
    FAST_OPERATIONS,
    SigV4,
    Target,
    amz_date,
    may_hold_blobs,
)

BODY = b'{"TableName": "chat", "Key": {"PK": {"S": "USER#1"}, "SK": {"S": "PROFILE"}}}'
HEADERS = {
    "X-Amz-Target": "DynamoDB_20120810.GetItem",
    "Content-Type": "application/x-amz-json-1.0",
    "User-Agent": "aiobotocore/2.25.1 md/Botocore#1.40.61",
}
WHEN = datetime(2026, 3, 9, 23, 59, 58, tzinfo=UTC)


def botocore_signed(
    monkeypatch: pytest.MonkeyPatch,
    *,
    url: str,
    headers: dict[str, str],
    credentials: Credentials,
    region: str,
    when: datetime,
) -> dict[str, str]:
    """The headers botocore's own SigV4 signer adds to the same request at the same moment."""
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
    request = AWSRequest(method="POST", url=url, data=BODY, headers=dict(headers))
    botocore.auth.SigV4Auth(credentials, "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


def fast_signed(
    *,
    url: str,
    headers: dict[str, str],
    credentials: Credentials,
    region: str,
    when: datetime,
    signer: SigV4 | None = None,
) -> dict[str, str]:
    return (signer or SigV4()).sign(
        target=Target.of(url),
        headers=headers,
        body=BODY,
        credentials=credentials.get_frozen_credentials(),
        region=region,
        service="dynamodb",
        amz_date=amz_date(calendar.timegm(when.utctimetuple())),
    )


SIGNED_CASES = {
    "aws endpoint, session token": (
        "https://dynamodb.eu-west-1.amazonaws.com",
        Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token/+=="),
        "eu-west-1",
        {},
    ),
    "local engine on a port, no token": (
        "http://127.0.0.1:8001",
        Credentials("testing", "testing"),
        "us-east-1",
        {},
    ),
    "explicit default port, upper-case host": (
        "https://DynamoDB.us-east-1.amazonaws.com:443",
        Credentials("AKID", "secret"),
        "us-east-1",
        {},
    ),
    "headers added by before-call handlers": (
        "https://dynamodb.us-east-1.amazonaws.com",
        Credentials("AKID", "secret"),
        "us-east-1",
        # The trace header is never signed; others are, with their whitespace folded.
        {"X-Amzn-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793", "X-Custom": "  a   b "},
    ),
    "endpoint behind a path": (
        "https://proxy.example.com/dynamodb/",
        Credentials("AKID", "secret"),
        "us-east-1",
        {},
    ),
}


@pytest.mark.parametrize("case", SIGNED_CASES.keys())
def test_the_signature_is_botocores_to_the_byte(monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    endpoint, credentials, region, extra = SIGNED_CASES[case]
    url = Target.of(endpoint).url
    headers = {**HEADERS, **extra}

    ours = fast_signed(url=url, headers=headers, credentials=credentials, region=region, when=WHEN)
    theirs = botocore_signed(
        monkeypatch, url=url, headers=headers, credentials=credentials, region=region, when=WHEN
    )

    assert ours == theirs


def test_the_kept_signing_key_is_renewed_with_the_date(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = SigV4()
    credentials = Credentials("AKID", "secret")
    url = "https://dynamodb.us-east-1.amazonaws.com/"
    for when in (WHEN, WHEN.replace(day=10, hour=0, minute=0, second=1), WHEN):
        ours = fast_signed(
            url=url,
            headers=HEADERS,
            credentials=credentials,
            region="us-east-1",
            when=when,
            signer=signer,
        )
        theirs = botocore_signed(
            monkeypatch,
            url=url,
            headers=HEADERS,
            credentials=credentials,
            region="us-east-1",
            when=when,
        )
        assert ours["Authorization"] == theirs["Authorization"]


def test_the_kept_signing_key_is_renewed_with_the_credentials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signer = SigV4()
    url = "https://dynamodb.us-east-1.amazonaws.com/"
    # Rotated credentials (a refreshed role session) sign with their own key at once.
    for credentials in (Credentials("AKID", "first", "t1"), Credentials("AKID", "second", "t2")):
        ours = fast_signed(
            url=url,
            headers=HEADERS,
            credentials=credentials,
            region="us-east-1",
            when=WHEN,
            signer=signer,
        )
        theirs = botocore_signed(
            monkeypatch,
            url=url,
            headers=HEADERS,
            credentials=credentials,
            region="us-east-1",
            when=WHEN,
        )
        assert ours == theirs


def test_the_request_url_is_botocores() -> None:
    assert Target.of("http://127.0.0.1:8001").url == "http://127.0.0.1:8001/"
    assert Target.of("https://proxy.example.com/dynamodb/").url == (
        "https://proxy.example.com/dynamodb/"
    )


def _shapes(shape: Shape, path: str, seen: frozenset[str]) -> Iterator[tuple[str, str, Shape]]:
    """(path, the enclosing shape's name, shape) of every shape under `shape`."""
    if shape.name in seen:
        return
    children: dict[str, Any] = {}
    if shape.type_name == "structure":
        children = dict(shape.members)  # type: ignore[attr-defined]
    elif shape.type_name == "list":
        children = {"[]": shape.member}  # type: ignore[attr-defined]
    elif shape.type_name == "map":
        children = {"{}": shape.value}  # type: ignore[attr-defined]
    for name, child in children.items():
        yield f"{path}.{name}", shape.name, child
        yield from _shapes(child, f"{path}.{name}", seen | {shape.name})


@pytest.mark.parametrize("operation", sorted(FAST_OPERATIONS))
def test_botocores_parsing_would_change_nothing_but_blobs_in_attribute_values(
    operation: str,
) -> None:
    """What the fast path may skip: in these outputs (and inputs), botocore turns no JSON value
    into another type except blobs, which only attribute values (B, BS) hold."""
    model = botocore.session.get_session().get_service_model("dynamodb")
    operation_model = model.operation_model(operation)
    assert model.protocol == "json"
    blobs = set()
    for root in (operation_model.input_shape, operation_model.output_shape):
        assert root is not None
        for path, parent, shape in _shapes(root, operation, frozenset()):
            assert shape.type_name != "timestamp", path
            if shape.type_name == "blob":
                blobs.add((parent, path.rsplit(".", 1)[-1]))
    assert blobs <= {("AttributeValue", "B"), ("BinarySetAttributeValue", "[]")}


def test_an_answer_that_may_hold_a_blob_is_noticed() -> None:
    assert may_hold_blobs(b'{"Item": {"data": {"B": "AAEC"}}}')
    assert may_hold_blobs(b'{"Item":{"set":{"BS":["AAEC"]}}}')
    assert not may_hold_blobs(b'{"Item": {"on": {"BOOL": true}, "text": {"S": "B"}}}')
    assert not may_hold_blobs(b'{"Item": {"text": {"S": "say \\"B\\": \\"BS\\":"}}}')
    # An attribute named B is a false alarm: it only costs botocore's slower parse.
    assert may_hold_blobs(b'{"Item": {"B": {"S": "text"}}}')
