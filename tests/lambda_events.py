"""API Gateway HTTP API events, payload format 2.0, as API Gateway sends them to Lambda.

The shape follows AWS's documented example: header names lowercased, repeated headers joined
with commas, the body a string (base64 when `isBase64Encoded`), and the JWT authorizer's
verified claims under requestContext.authorizer.jwt.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext

API_ID = "a1b2c3d4e5"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


def http_api_event(
    *,
    method: str = "POST",
    path: str = "/graphql",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    query_string: str = "",
    base64_encoded: bool = False,
    claims: Mapping[str, Any] | None = None,
    content_length: bool = True,
) -> dict[str, Any]:
    all_headers = {
        "accept": "application/json",
        "host": DOMAIN,
        "user-agent": "ChatApp/1.0 CFNetwork/1568.100.1 Darwin/24.0.0",
        "x-amzn-trace-id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if body is not None and content_length:
        all_headers["content-length"] = str(len(body))
    all_headers.update({name.lower(): value for name, value in (headers or {}).items()})
    now = time.time()
    request_context: dict[str, Any] = {
        "accountId": "123456789012",
        "apiId": API_ID,
        "domainName": DOMAIN,
        "domainPrefix": API_ID,
        "http": {
            "method": method,
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": "203.0.113.7",
            "userAgent": all_headers["user-agent"],
        },
        "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
        "routeKey": "$default",
        "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "timeEpoch": int(now * 1000),
    }
    if claims is not None:
        # API Gateway passes every claim as a string.
        request_context["authorizer"] = {
            "jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": None}
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query_string,
        "headers": all_headers,
        "requestContext": request_context,
        "isBase64Encoded": base64_encoded,
    }
    if body is not None:
        event["body"] = base64.b64encode(body).decode() if base64_encoded else body.decode()
    return event


def graphql_event(
    query: str,
    variables: Mapping[str, Any] | None = None,
    *,
    token: str | None,
    claims: Mapping[str, Any] | None = None,
    base64_encoded: bool = False,
) -> dict[str, Any]:
    """A POST /graphql as a native app sends it, with its bearer token when given."""
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    return http_api_event(body=body, headers=headers, claims=claims, base64_encoded=base64_encoded)


class LambdaContext:
    """The context object Lambda passes beside the event (Mangum only carries it along)."""

    function_name = "ChatHistoryServerless-Service"
    function_version = "$LATEST"
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:123456789012:function:ChatHistoryServerless-Service"
    )
    memory_limit_in_mb = 1769
    log_group_name = "/aws/lambda/ChatHistoryServerless-Service"
    log_stream_name = "2026/11/01/[$LATEST]0123456789abcdef"
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def __init__(self, *, timeout_ms: int = 15_000) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
