"""Real RS256 keys, a real JWKS endpoint and a JWT minter, for tests at any level.

Nothing here is a mock: keys come from `cryptography`, tokens are signed without python-jose
(so the code under test is not checking its own homework), and the JWKS is served over real
HTTP from a thread, so sync tests, async tests and a server in a subprocess can all fetch it.

The quickest start is `FakeUserPool`, a key, a JWKS server and a minter for one pool:

    with FakeUserPool() as pool:
        cognito = CognitoSettings(
            user_pool_id=pool.pool_id,
            region=pool.region,
            app_client_ids=(pool.client_id,),
            jwks_url_override=pool.jwks_url,
        )
        token = pool.minter.access_token(sub="alice", scopes=("chat/read",))
        headers = {"Authorization": f"Bearer {token}"}

The parts, for tests that need control:

- `SigningKey.generate()` is an RSA key with a random kid; `public_jwk()` is its JWKS entry.
- `JwksServer(keys=[...])` serves `{"keys": [...]}` at `.url` and counts fetches
  (`fetch_count`). Change it while it runs: `publish(key)`, `withdraw(kid)`, `rotate_to(key)`,
  `add_raw_jwk({...})` for entries that are not RSA signing keys, `fail(status=500)`,
  `respond(status=200, body=b"not json")`, `hang()` (requests get no answer until
  `recover()` or `stop()`; `held` counts those waiting), `hold()` (requests are counted and
  wait until `release()`, then get the usual answer) and `stop()` (connection refused).
  `wait_for_fetches(n)` blocks until the endpoint has been asked n times in all, so a test
  can act while a fetch is known to be in flight.
- `TokenMinter(issuer=..., client_id=..., key=...)` mints Cognito-shaped tokens:
  `access_token(...)` and `id_token(...)` take `lifetime` (negative: already expired),
  `issued_at`, `extra` (override or add any claim, e.g. {"nbf": ...} or {"iss": ...}),
  `omit` (drop claims), `key` (sign with another key) and `header` (merge into the JOSE
  header; a None value drops the field). `sign(claims, ...)` signs any claim set.
- Attacks: `unsigned(claims)` (alg none), `hs256(claims, secret=key.public_pem())` (the
  CVE-2024-33663 key confusion), `tamper_payload(token, changes)` (new claims, old signature)
  and `tamper_signature(token)`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

TEST_REGION = "us-east-1"
TEST_POOL_ID = "us-east-1_TestPool1"
TEST_ISSUER = f"https://cognito-idp.{TEST_REGION}.amazonaws.com/{TEST_POOL_ID}"
TEST_CLIENT_ID = "testclient0123456789abcdef"

JWKS_PATH = "/.well-known/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url_json(value: Mapping[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclasses.dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, *, kid: str | None = None, bits: int = 2048) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(kid=kid or f"test-{uuid.uuid4().hex[:12]}", private_key=private_key)

    def public_jwk(self) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _uint(numbers.n),
            "e": _uint(numbers.e),
        }

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign_rs256(self, signing_input: bytes) -> bytes:
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


# --- tokens ---------------------------------------------------------------------------------


def _header(base: Mapping[str, Any], changes: Mapping[str, Any] | None) -> dict[str, Any]:
    header = {**base, **(changes or {})}
    return {name: value for name, value in header.items() if value is not None}


def encode_rs256(
    claims: Mapping[str, Any], *, key: SigningKey, header: Mapping[str, Any] | None = None
) -> str:
    """An RS256 JWS over `claims`; `header` is merged into {alg, kid, typ} (None drops a field)."""
    full_header = _header({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, header)
    signing_input = f"{_b64url_json(full_header)}.{_b64url_json(claims)}"
    return f"{signing_input}.{b64url(key.sign_rs256(signing_input.encode()))}"


def unsigned(claims: Mapping[str, Any], *, header: Mapping[str, Any] | None = None) -> str:
    """An `alg: none` token with an empty signature."""
    full_header = _header({"alg": "none", "typ": "JWT"}, header)
    return f"{_b64url_json(full_header)}.{_b64url_json(claims)}."


def hs256(
    claims: Mapping[str, Any], *, secret: bytes, header: Mapping[str, Any] | None = None
) -> str:
    """An HS256 token; with `secret=key.public_pem()` it is the RS/HS key-confusion attack."""
    full_header = _header({"alg": "HS256", "typ": "JWT"}, header)
    signing_input = f"{_b64url_json(full_header)}.{_b64url_json(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def claims_of(token: str) -> dict[str, Any]:
    """The payload, unverified (for assertions and tampering)."""
    payload: dict[str, Any] = json.loads(_b64url_decode(token.split(".")[1]))
    return payload


def tamper_payload(token: str, changes: Mapping[str, Any]) -> str:
    """The same header and signature over claims with `changes` applied."""
    header, _, signature = token.split(".")
    return f"{header}.{_b64url_json({**claims_of(token), **changes})}.{signature}"


def tamper_signature(token: str) -> str:
    """The same header and claims with one bit of the signature flipped."""
    header, payload, signature = token.split(".")
    raw = bytearray(_b64url_decode(signature))
    raw[len(raw) // 2] ^= 0x01
    return f"{header}.{payload}.{b64url(bytes(raw))}"


class TokenMinter:
    """Cognito-shaped tokens for one issuer and app client, signed by `key` unless told."""

    def __init__(
        self,
        *,
        issuer: str = TEST_ISSUER,
        client_id: str = TEST_CLIENT_ID,
        key: SigningKey,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.key = key
        self._clock = clock

    def access_token(
        self,
        *,
        sub: str = "user-1",
        username: str | None = None,
        client_id: str | None = None,
        scopes: Collection[str] = ("aws.cognito.signin.user.admin",),
        groups: Collection[str] = (),
        lifetime: float = 3600,
        issued_at: float | None = None,
        extra: Mapping[str, Any] | None = None,
        omit: Collection[str] = (),
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        claims = {
            **self._common(sub=sub, groups=groups, lifetime=lifetime, issued_at=issued_at),
            "token_use": "access",
            "client_id": client_id or self.client_id,
            "username": username or sub,
            "scope": " ".join(scopes),
        }
        return self._finish(claims, extra=extra, omit=omit, key=key, header=header)

    def id_token(
        self,
        *,
        sub: str = "user-1",
        username: str | None = None,
        audience: str | None = None,
        groups: Collection[str] = (),
        lifetime: float = 3600,
        issued_at: float | None = None,
        extra: Mapping[str, Any] | None = None,
        omit: Collection[str] = (),
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        claims = {
            **self._common(sub=sub, groups=groups, lifetime=lifetime, issued_at=issued_at),
            "token_use": "id",
            "aud": audience or self.client_id,
            "cognito:username": username or sub,
        }
        return self._finish(claims, extra=extra, omit=omit, key=key, header=header)

    def token(self, token_use: Literal["id", "access"], **kwargs: Any) -> str:
        """`id_token` or `access_token` by name, for tests parametrized over both."""
        mint = self.id_token if token_use == "id" else self.access_token
        return mint(**kwargs)

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        key: SigningKey | None = None,
        header: Mapping[str, Any] | None = None,
    ) -> str:
        return encode_rs256(claims, key=key or self.key, header=header)

    def _common(
        self, *, sub: str, groups: Collection[str], lifetime: float, issued_at: float | None
    ) -> dict[str, Any]:
        iat = int(self._clock() if issued_at is None else issued_at)
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "iat": iat,
            "auth_time": iat,
            "exp": int(iat + lifetime),
            "jti": str(uuid.uuid4()),
        }
        if groups:
            claims["cognito:groups"] = list(groups)
        return claims

    def _finish(
        self,
        claims: dict[str, Any],
        *,
        extra: Mapping[str, Any] | None,
        omit: Collection[str],
        key: SigningKey | None,
        header: Mapping[str, Any] | None,
    ) -> str:
        claims.update(extra or {})
        for name in omit:
            claims.pop(name, None)
        return self.sign(claims, key=key, header=header)


# --- the JWKS endpoint ----------------------------------------------------------------------


class JwksServer:
    """A JWKS on http://127.0.0.1:<free port>, served from its own thread."""

    def __init__(self, *, keys: Iterable[SigningKey] = ()) -> None:
        self._lock = threading.Lock()
        self._asked = threading.Condition(self._lock)
        self._keys: dict[str, dict[str, Any]] = {key.kid: key.public_jwk() for key in keys}
        self._raw: list[Any] = []
        self._override: tuple[int, bytes] | None = None
        self._fetch_count = 0
        self._hanging = False
        self._held = 0
        self._released = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the JWKS server was never started")
        return f"http://127.0.0.1:{self._port}{JWKS_PATH}"

    @property
    def fetch_count(self) -> int:
        with self._lock:
            return self._fetch_count

    @property
    def held(self) -> int:
        """Fetches `hang()` holds unanswered right now: one the client gave up on is still
        held, so a count above zero after a failure means the client's own timeout ended it."""
        with self._lock:
            return self._held

    def publish(self, *keys: SigningKey) -> None:
        with self._lock:
            self._keys.update({key.kid: key.public_jwk() for key in keys})

    def withdraw(self, kid: str) -> None:
        with self._lock:
            self._keys.pop(kid, None)

    def rotate_to(self, *keys: SigningKey) -> None:
        """Serve exactly `keys` (and no raw entries) from now on."""
        with self._lock:
            self._keys = {key.kid: key.public_jwk() for key in keys}
            self._raw = []

    def add_raw_jwk(self, entry: Any) -> None:
        """Serve `entry` as-is in the key list (an EC key, an encryption key, junk)."""
        with self._lock:
            self._raw.append(entry)

    def respond(self, *, status: int, body: bytes) -> None:
        """Answer every fetch with `body` instead of the JWKS, until `recover()`."""
        with self._lock:
            self._override = (status, body)

    def fail(self, *, status: int = 500) -> None:
        self.respond(status=status, body=b'{"message": "internal error"}')

    def hang(self) -> None:
        """Accept requests and never answer them, until `recover()` or `stop()`."""
        with self._lock:
            self._hanging = True
            self._released.clear()

    def hold(self) -> None:
        """Count each fetch and keep it waiting, until `release()` lets it have its answer."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    def wait_for_fetches(self, count: int, *, timeout: float = 10.0) -> None:
        """Block until the endpoint has been asked `count` times in all; `timeout` only guards
        against a test that waits for a fetch that never comes."""
        with self._asked:
            if not self._asked.wait_for(lambda: self._fetch_count >= count, timeout):
                raise TimeoutError(f"asked {self._fetch_count} times, not {count}")

    def recover(self) -> None:
        with self._lock:
            self._override = None
            self._hanging = False
            self._released.set()
        self._gate.set()

    def start(self) -> JwksServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port or 0), self._handler())
        self._port = self._server.server_address[1]
        # A short poll keeps stop() (which waits for the loop to notice) fast.
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="jwks-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: from now on fetches get connection refused."""
        self._released.set()
        self._gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> JwksServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _answer(self) -> tuple[int, bytes] | None:
        """What to send for one fetch; None means hang."""
        with self._asked:
            self._fetch_count += 1
            self._asked.notify_all()
            if self._hanging:
                self._held += 1
                return None
        # Bounded like a hang, so a forgotten hold cannot keep a thread forever.
        self._gate.wait(timeout=60)
        with self._lock:
            if self._override is not None:
                return self._override
            document = {"keys": [*self._keys.values(), *self._raw]}
            return 200, json.dumps(document).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                answer = jwks._answer()
                if answer is None:
                    # Hold the connection without a byte of response; a bounded wait so a
                    # forgotten server cannot keep a thread forever.
                    jwks._released.wait(timeout=60)
                    with jwks._lock:
                        jwks._held -= 1
                    self.close_connection = True
                    return
                status, body = answer
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Access lines would drown the test output."""

        return Handler


# --- all of it for one pool -----------------------------------------------------------------


class FakeUserPool:
    """One key, a JWKS server publishing it and a minter: a user pool as the verifier sees it."""

    def __init__(
        self,
        *,
        pool_id: str = TEST_POOL_ID,
        client_id: str = TEST_CLIENT_ID,
        key: SigningKey | None = None,
    ) -> None:
        self.pool_id = pool_id
        self.client_id = client_id
        self.region = pool_id.partition("_")[0]
        self.issuer = f"https://cognito-idp.{self.region}.amazonaws.com/{pool_id}"
        self.key = key or SigningKey.generate()
        self.server = JwksServer(keys=[self.key])
        self.minter = TokenMinter(issuer=self.issuer, client_id=client_id, key=self.key)

    @property
    def jwks_url(self) -> str:
        return self.server.url

    def __enter__(self) -> FakeUserPool:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.stop()
