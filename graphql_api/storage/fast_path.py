"""DynamoDB's data-plane calls without botocore's generic serializing, signing and parsing.

aioboto3 stays the client: its credentials, endpoint resolution, aiohttp session (one pool,
the configured timeouts), "standard" retry handler, events and exception classes all still
apply. For the operations storage calls on items (FAST_OPERATIONS), three steps of botocore's
pipeline are done here instead, because they were most of the storage layer's CPU:

- serializing: storage already speaks DynamoDB's JSON (wire-form attribute values), so the
  body is `orjson.dumps` of the parameters. botocore's validator still checks them first when
  the client's config asks for it (the default).
- signing: SigV4 for a JSON POST, computed directly; the signing key is derived once a day per
  credentials (botocore derives it for every request). tests/unit/test_fast_path.py holds it
  to botocore's own signer, byte for byte.
- parsing: a successful answer is `orjson.loads` of its body plus the ResponseMetadata botocore
  adds. botocore's parser walks the output shape only to base64-decode blobs (B, BS), which
  storage never writes; an answer that may hold one, and every error answer, still goes
  through botocore's own parser.

The retry loop is botocore's (endpoint `_send_request`), step for step: the same retries
context, the same `needs-retry` event deciding with the client's retry handler (attempts,
quota, jittered backoff, DynamoDB's CRC32 check), the same RetryAttempts.

Events: provide-client-params, before-parameter-build, before-endpoint-resolution,
before-call, needs-retry, after-call and after-call-error fire as they always did, with the
same payloads, so capacity accounting and the tests' request counters see every call.
request-created, choose-signer, before-sign, before-send, response-received and before-parse
do not fire on the fast path: the handlers botocore registers there do what this module does
(sign, rebuild the User-Agent, add the amz-sdk-* retry headers), and nothing of ours listens.
With OTEL_ENABLED the DynamoDB spans are the same (they wrap the whole call), but the X-Ray
trace header the instrumentation adds while botocore prepares a request is not sent: DynamoDB
does not continue traces, so nothing reads it.

This leans on aiobotocore's private steps (`_convert_to_request_dict`, `_make_request`, the
endpoint's retry helpers), which is why aioboto3 is pinned; tests/unit/test_fast_path.py
fails if a call no longer takes the fast path.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote, urlsplit

import orjson
from aiobotocore.endpoint import convert_to_response_dict
from botocore.awsrequest import prepare_request_dict
from botocore.exceptions import NoCredentialsError, ParamValidationError
from botocore.utils import lowercase_dict, normalize_url_path
from botocore.validate import ParamValidator

__all__ = [
    "FAST_OPERATIONS",
    "FastPath",
    "FastPathClient",
    "enable_fast_path",
    "fast_path_of",
    "install_fast_path",
]

# The item operations storage calls, whose inputs and outputs hold no timestamps and no blobs
# outside attribute values (tests/unit/test_fast_path.py walks the model to keep it so).
FAST_OPERATIONS: Final = frozenset(
    {
        "GetItem",
        "BatchGetItem",
        "Query",
        "PutItem",
        "DeleteItem",
        "UpdateItem",
        "BatchWriteItem",
        "TransactWriteItems",
    }
)
# In a call's request context once its request was built here (its Target), so the same call
# is sent here too.
_FAST_KEY: Final = "chat_fast_path"
# botocore's SIGNED_HEADERS_BLACKLIST: headers a proxy or the HTTP layer may change.
_UNSIGNED_HEADERS: Final = frozenset(
    {"expect", "transfer-encoding", "user-agent", "x-amzn-trace-id"}
)
# A member named B or BS: an answer holding one may carry a blob value, which only botocore's
# parser decodes. (Inside a JSON string a quote is escaped, so text never matches.) One regular
# expression scans an answer four times faster than two substring searches, which are slow
# on JSON because their needles start and end with its commonest character.
_BLOB_MEMBER: Final = re.compile(rb'"BS?":')
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def _blob(value: Any) -> str:
    # What botocore's JSON serializer does with a blob parameter.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """Where a request goes, as the signature names it."""

    url: str
    host: str  # lowercase, without userinfo or a default port
    path: str  # normalized and quoted

    @classmethod
    def of(cls, endpoint_url: str) -> Target:
        scratch: dict[str, Any] = {"url_path": "/", "query_string": "", "headers": {}}
        prepare_request_dict(scratch, endpoint_url=endpoint_url)
        url: str = scratch["url"]
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None and parts.port != _DEFAULT_PORTS.get(parts.scheme):
            host = f"{host}:{parts.port}"
        return cls(url=url, host=host, path=quote(normalize_url_path(parts.path), safe="/~"))


@dataclasses.dataclass(frozen=True, slots=True)
class SignedRequest:
    """What aiobotocore's HTTP session sends (it reads these attributes only)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream_output: bool = False


@dataclasses.dataclass(slots=True)
class _SigningKey:
    secret: str
    scope: str  # date/region/service/aws4_request
    key: bytes


class SigV4:
    """SigV4 for a JSON POST to "/", keeping the day's signing key."""

    def __init__(self) -> None:
        self._key: _SigningKey | None = None

    def _signing_key(self, secret: str, scope: str) -> bytes:
        cached = self._key
        if cached is not None and cached.secret == secret and cached.scope == scope:
            return cached.key
        key = ("AWS4" + secret).encode()
        for part in scope.split("/"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        self._key = _SigningKey(secret=secret, scope=scope, key=key)
        return key

    def sign(
        self,
        *,
        target: Target,
        headers: Mapping[str, str],
        body: bytes,
        credentials: Any,
        region: str,
        service: str,
        amz_date: str,
    ) -> dict[str, str]:
        """`headers` plus X-Amz-Date, X-Amz-Security-Token and Authorization."""
        signed = dict(headers)
        signed["X-Amz-Date"] = amz_date
        if credentials.token:
            signed["X-Amz-Security-Token"] = credentials.token
        canonical: dict[str, list[str]] = {"host": [target.host]}
        for name, value in signed.items():
            lowered = name.lower()
            if lowered not in _UNSIGNED_HEADERS:
                canonical.setdefault(lowered, []).append(" ".join(value.split()))
        names = sorted(canonical)
        signed_names = ";".join(names)
        lines = "".join(f"{name}:{','.join(canonical[name])}\n" for name in names)
        # botocore leaves the payload unsigned only where a handler asks it to (S3's).
        payload_hash = hashlib.sha256(body).hexdigest()
        request = f"POST\n{target.path}\n\n{lines}\n{signed_names}\n{payload_hash}"
        scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
        to_sign = (
            f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(request.encode()).hexdigest()}"
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_key, scope), to_sign.encode(), hashlib.sha256
        ).hexdigest()
        signed["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed_names}, Signature={signature}"
        )
        return signed


def amz_date(now: float | None = None) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))


def may_hold_blobs(body: bytes) -> bool:
    return _BLOB_MEMBER.search(body) is not None


class FastPath:
    """The fast path of one client: what it can compute once, and the per-call steps."""

    def __init__(self, client: Any) -> None:
        self._endpoint = client._endpoint
        self._signer = client._request_signer
        metadata = client.meta.service_model.metadata
        self._target_prefix = str(metadata["targetPrefix"])
        self._content_type = f"application/x-amz-json-{metadata['jsonVersion']}"
        # botocore rebuilds it for every request, to list the SDK features each call used (for
        # AWS's usage statistics); who we are needs saying once.
        self._user_agent = str(client._user_agent_creator.to_string())
        self._validator = ParamValidator() if client.meta.config.parameter_validation else None
        self._sigv4 = SigV4()
        self._targets: dict[str, Target] = {}
        self.requests_sent = 0  # every attempt; tests make sure the fast path is taken

    def takes(self, operation_model: Any, context: Mapping[str, Any]) -> bool:
        """Only SigV4-signed item operations; anything unusual goes botocore's way."""
        if operation_model.name not in FAST_OPERATIONS:
            return False
        auth_type = context.get("auth_type") or self._signer.signature_version
        if auth_type not in ("v4", None):
            return False
        signing = context.get("signing") or {}
        return "identity_cache" not in signing and "request_credentials" not in signing

    def request_dict(
        self,
        api_params: Mapping[str, Any],
        operation_model: Any,
        endpoint_url: str,
        context: dict[str, Any],
        headers: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        """What botocore's serializer and prepare_request_dict make of these parameters."""
        if self._validator is not None:
            report = self._validator.validate(api_params, operation_model.input_shape)
            if report.has_errors():
                raise ParamValidationError(report=report.generate_report())
        request_headers = {
            "X-Amz-Target": f"{self._target_prefix}.{operation_model.name}",
            "Content-Type": self._content_type,
        }
        if headers:
            request_headers.update(headers)
        request_headers["User-Agent"] = self._user_agent
        target = self._targets.get(endpoint_url)
        if target is None:
            target = self._targets[endpoint_url] = Target.of(endpoint_url)
        context[_FAST_KEY] = target
        return {
            "url_path": "/",
            "query_string": "",
            "method": "POST",
            "headers": request_headers,
            "body": orjson.dumps(api_params, default=_blob),
            "url": target.url,
            "context": context,
        }

    async def send(self, operation_model: Any, request_dict: dict[str, Any]) -> tuple[Any, Any]:
        """botocore's endpoint `_send_request`, with this module's signing and parsing."""
        endpoint = self._endpoint
        context = request_dict["context"]
        attempts = 1
        endpoint._update_retries_context(context, attempts)
        response, exception = await self._attempt(operation_model, request_dict)
        while await endpoint._needs_retry(
            attempts, operation_model, request_dict, response, exception
        ):
            attempts += 1
            endpoint._update_retries_context(context, attempts, response)
            response, exception = await self._attempt(operation_model, request_dict)
        if response is not None and "ResponseMetadata" in response[1]:
            response[1]["ResponseMetadata"]["RetryAttempts"] = attempts - 1
        if exception is not None:
            raise exception
        assert response is not None
        return response

    async def _attempt(
        self, operation_model: Any, request_dict: dict[str, Any]
    ) -> tuple[tuple[Any, Any] | None, Exception | None]:
        request = await self._signed(request_dict)
        self.requests_sent += 1
        try:
            http_response = await self._endpoint.http_session.send(request)
        except Exception as exc:  # as botocore: the retry handler judges it
            return None, exc
        return (http_response, await self._parsed(http_response, operation_model)), None

    async def _signed(self, request_dict: dict[str, Any]) -> SignedRequest:
        signer = self._signer
        credentials = signer._credentials
        if credentials is None:
            raise NoCredentialsError()
        frozen = await credentials.get_frozen_credentials()
        context = request_dict["context"]
        signing = context.get("signing") or {}
        target: Target = context[_FAST_KEY]
        body: bytes = request_dict["body"]
        headers = self._sigv4.sign(
            target=target,
            headers=request_dict["headers"],
            body=body,
            credentials=frozen,
            region=signing.get("region") or signer._region_name,
            service=signing.get("signing_name") or signer._signing_name,
            amz_date=amz_date(),
        )
        # After signing, as botocore's request-created handler and request preparation add
        # them: neither is signed.
        retries = context.get("retries")
        if retries:
            headers["amz-sdk-invocation-id"] = retries["invocation-id"]
            headers["amz-sdk-request"] = "; ".join(
                f"{key}={retries[key]}" for key in ("ttl", "attempt", "max") if key in retries
            )
        headers["Content-Length"] = str(len(body))
        return SignedRequest(method="POST", url=target.url, headers=headers, body=body)

    async def _parsed(self, http_response: Any, operation_model: Any) -> Any:
        body: bytes = await http_response.content
        status: int = http_response.status_code
        if status >= 300 or may_hold_blobs(body):
            return await self._parsed_by_botocore(http_response, operation_model)
        try:
            parsed = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            # Cut short, or not DynamoDB's: botocore's parser has its own way with it (and the
            # retry handler's CRC32 check may send the request again).
            return await self._parsed_by_botocore(http_response, operation_model)
        headers = lowercase_dict(http_response.headers)
        metadata: dict[str, Any] = {}
        if "x-amzn-requestid" in headers:
            metadata["RequestId"] = headers["x-amzn-requestid"]
        metadata["HTTPStatusCode"] = status
        metadata["HTTPHeaders"] = headers
        parsed["ResponseMetadata"] = metadata
        return parsed

    async def _parsed_by_botocore(self, http_response: Any, operation_model: Any) -> Any:
        """botocore's own parsing (endpoint `_do_get_response`), error fields included."""
        endpoint = self._endpoint
        response_dict = await convert_to_response_dict(http_response, operation_model)
        protocol = operation_model.service_model.resolved_protocol
        parser = endpoint._response_parser_factory.create_parser(protocol)
        parsed = await parser.parse(response_dict, operation_model.output_shape)
        if http_response.status_code >= 300:
            await endpoint._add_modeled_error_fields(response_dict, parsed, operation_model, parser)
        return parsed


class FastPathClient:
    """Mixed in front of aiobotocore's generated client class (see `install_fast_path`)."""

    chat_fast_path: FastPath | None = None

    async def _convert_to_request_dict(
        self,
        api_params: Any,
        operation_model: Any,
        endpoint_url: str,
        context: dict[str, Any] | None = None,
        headers: Any = None,
        set_user_agent_header: bool = True,
    ) -> Any:
        fast = self.chat_fast_path
        if (
            fast is not None
            and context is not None
            and set_user_agent_header
            and fast.takes(operation_model, context)
        ):
            return fast.request_dict(api_params, operation_model, endpoint_url, context, headers)
        parent: Any = super()
        return await parent._convert_to_request_dict(
            api_params,
            operation_model,
            endpoint_url,
            context=context,
            headers=headers,
            set_user_agent_header=set_user_agent_header,
        )

    async def _make_request(
        self, operation_model: Any, request_dict: dict[str, Any], request_context: Any
    ) -> Any:
        fast = self.chat_fast_path
        parent: Any = super()
        if fast is None or not request_context.get(_FAST_KEY):
            return await parent._make_request(operation_model, request_dict, request_context)
        try:
            return await fast.send(operation_model, request_dict)
        except Exception as exc:
            # As aiobotocore's _make_request: a call that got no answer is reported too.
            events: Any = getattr(self, "meta").events  # noqa: B009 - the client's, untyped
            await events.emit(
                f"after-call-error.{operation_model.service_model.service_id.hyphenize()}"
                f".{operation_model.name}",
                exception=exc,
                context=request_context,
            )
            raise


def _add_fast_path_class(base_classes: list[type], **_: Any) -> None:
    base_classes.insert(0, FastPathClient)


def install_fast_path(session_events: Any) -> None:
    """Have the DynamoDB clients this session creates take the fast path.

    Registered on the session's `creating-client-class.dynamodb` event, botocore's hook for
    adding behaviour to a client class; the clients still need `enable_fast_path`.
    """
    session_events.register("creating-client-class.dynamodb", _add_fast_path_class)


def enable_fast_path(client: Any) -> FastPath:
    if not isinstance(client, FastPathClient):
        raise TypeError("the client was not created with install_fast_path")
    fast = FastPath(client)
    client.chat_fast_path = fast
    return fast


def fast_path_of(client: Any) -> FastPath | None:
    """The client's fast path, None when it sends every call botocore's whole way."""
    fast = getattr(client, "chat_fast_path", None)
    return fast if isinstance(fast, FastPath) else None
