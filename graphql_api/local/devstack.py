"""The embedded dev stack behind `chat-history-api dev`: DynamoDB and Cognito on moto, one process.

moto serves both on loopback. The user pool, app client and dev user are new at every start;
so is the table unless DYNAMODB_ENDPOINT_URL names an engine that outlives the process. A
small state file (per port) tells `chat-history-api dev-token` where the running stack's
Cognito is, so it can sign other dev users in.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import signal
import socket
import sys
import threading
import urllib.parse
import urllib.request
import webbrowser
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Final, TextIO, TypeAlias

import aioboto3  # type: ignore[import-untyped]
import botocore.session
import uvicorn
from botocore.exceptions import BotoCoreError, ClientError

from ..observability.logs import logging_config
from ..settings import CognitoSettings, ContentSettings, DynamoDBSettings, Settings
from ..storage.client import ChatTable, open_table
from ..storage.conversations import count_conversations, create_conversation
from ..storage.messages import add_messages
from ..storage.records import NewMessage, Role
from ..storage.table import create_table
from .cognito import DevCognito
from .moto_server import LockedMotoServer

DEV_USER: Final = "dev"
# moto accepts any credentials; fixed fake ones keep a real AWS account out of play.
LOCAL_CREDENTIALS: Final = ("testing", "testing")
# Only what the dev stack cannot invent; the environment may override each.
DEV_DEFAULTS: Final = {
    "CHAT_TABLE_NAME": "chat-history-dev",
    "AWS_REGION": "us-east-1",
    # Readable request lines, each GraphQL response's DynamoDB cost, and /metrics; a fixed
    # key for the user hash (nothing here is secret) so startup does not warn about it.
    "LOG_FORMAT": "console",
    "LOG_USER_HASH_KEY": "dev-stack",
    "COST_EXTENSION_ENABLED": "true",
    "METRICS_ENABLED": "true",
}
# Large message content lives here, on the dev stack's moto, unless CONTENT_BUCKET says.
DEV_CONTENT_BUCKET: Final = "chat-history-dev-content"
# Seeding moto's id generator makes the pool, client and dev user's `sub` the same at every
# start, so the dev user finds its data again in a table that outlives the process.
_MOTO_SEED: Final = 20_240_501

# The README's first query ("A first try"; a test holds the two together). The token is in
# the headers editor already, so the comment does not ask for one.
SAMPLE_QUERY: Final = """\
# Your conversations, newest first: press Run (Ctrl-Enter).
# The token is in the Headers tab below.
query RecentConversations {
  conversations(first: 10) {
    totalCount
    edges {
      node {
        id
        title
        messageCount
        lastMessage { role content }
        messages(last: 3) { edges { node { role content createdAt } } }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

CURL_QUERY: Final = "{ conversations(first: 10) { edges { node { id title } } } }"

_Sample: TypeAlias = tuple[str, str, tuple[tuple[Role, str], ...]]
_SAMPLE_CONVERSATIONS: Final[tuple[_Sample, ...]] = (
    (
        "Three days in Lisbon",
        "gpt-4o-mini",
        (
            ("user", "I have three days in Lisbon in May. What should I not miss?"),
            (
                "assistant",
                "Day 1: Alfama and the castle, then fado in the evening. Day 2: Belém "
                "(the monastery, the tower, pastéis de nata). Day 3: a day trip to Sintra.",
            ),
            ("user", "Is Sintra doable without a car?"),
            (
                "assistant",
                "Yes: trains leave Rossio station about every 20 minutes and take 40 minutes; "
                "from Sintra station the 434 bus loops past the palaces.",
            ),
        ),
    ),
    (
        "Why is my Swift view not updating?",
        "claude-sonnet-4",
        (
            ("user", "My SwiftUI list does not refresh when I append to the array. Why?"),
            (
                "assistant",
                "The array probably lives in a plain class. Mark the model @Observable (or "
                "ObservableObject with @Published) so SwiftUI sees the change.",
            ),
        ),
    ),
)


class DevStackError(Exception):
    """The dev stack cannot start or be reached; `str()` is one line for the terminal."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class DevState:
    """What `dev-token` needs to reach a running dev stack's Cognito."""

    moto_url: str
    region: str
    pool_id: str
    client_id: str
    graphql_url: str
    pid: int

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(dataclasses.asdict(self), indent=2) + "\n")
        temporary.replace(path)

    @classmethod
    def read(cls, path: Path) -> DevState:
        try:
            return cls(**json.loads(path.read_text()))
        except FileNotFoundError:
            raise DevStackError(
                "no dev server is running on this port (start one with `chat-history-api dev`)"
            ) from None
        except (ValueError, TypeError) as exc:
            raise DevStackError(f"unreadable dev stack state in {path}: {exc}") from None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DevOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    open_browser: bool = True
    state_dir: Path | None = None
    # How to run this program again, as the user started it (cli.invocation): the banner
    # prints the dev-token command with it.
    command: str = "chat-history-api"


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """The per-user cache directory (XDG on Linux, ~/Library/Caches on macOS)."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "chat-history-api"
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "chat-history-api"


def state_path(state_dir: Path, port: int) -> Path:
    return state_dir / f"dev-{port}.json"


def dynamodb_settings(
    environ: Mapping[str, str], *, moto_url: str | None = None
) -> DynamoDBSettings:
    """The environment's DynamoDB settings with dev defaults; moto's endpoint unless the
    environment names an engine of its own."""
    settings = DynamoDBSettings.from_env({**DEV_DEFAULTS, **environ})
    if settings.endpoint_url is None and moto_url is not None:
        return dataclasses.replace(settings, endpoint_url=moto_url)
    return settings


def dev_settings(environ: Mapping[str, str], cognito: DevCognito, *, moto_url: str) -> Settings:
    """The whole service's settings: the environment's, the dev pool, GraphiQL on, and large
    message content in a bucket on moto unless the environment names one."""
    content = ContentSettings.from_env(environ)
    if content.bucket is None:
        content = ContentSettings(bucket=DEV_CONTENT_BUCKET, endpoint_url=moto_url)
    return Settings.from_env(
        {**DEV_DEFAULTS, **environ},
        dynamodb=dynamodb_settings(environ, moto_url=moto_url),
        content=content,
        cognito=CognitoSettings(
            user_pool_id=cognito.pool_id,
            region=cognito.region,
            app_client_ids=(cognito.client_id,),
            jwks_url_override=cognito.jwks_url,
        ),
        graphiql_enabled=True,
        introspection_enabled=True,
    )


def aws_credentials(*, persistent: bool) -> tuple[str, str] | None:
    """moto's fake keys, or for an engine of the user's choosing their own if they have any."""
    if persistent and botocore.session.get_session().get_credentials() is not None:
        return None
    return LOCAL_CREDENTIALS


def subject_of(token: str) -> str:
    """The `sub` claim of a token this process just obtained (so no verification is needed)."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return str(claims["sub"])


async def prepare_bucket(settings: Settings, *, credentials: tuple[str, str] | None) -> None:
    """Create the dev stack's own content bucket; a bucket the environment names is left be."""
    content = settings.content
    if content.bucket != DEV_CONTENT_BUCKET:
        return
    session = aioboto3.Session(
        aws_access_key_id=credentials[0] if credentials else LOCAL_CREDENTIALS[0],
        aws_secret_access_key=credentials[1] if credentials else LOCAL_CREDENTIALS[1],
        region_name=settings.dynamodb.region,
    )
    async with session.client("s3", endpoint_url=content.endpoint_url) as s3:
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            await s3.create_bucket(Bucket=DEV_CONTENT_BUCKET)


async def prepare_table(
    settings: DynamoDBSettings, *, credentials: tuple[str, str] | None, user_id: str
) -> int:
    """Create the table if missing and seed the user's sample data if they have none.

    Returns how many conversations were seeded.
    """
    async with open_table(
        settings, credentials=credentials, max_pool_connections=4, deadline=30.0
    ) as table:
        await create_table(table.client, table_name=table.name)
        if await count_conversations(table, user_id=user_id) > 0:
            return 0
        return await seed_sample_data(table, user_id=user_id)


async def seed_sample_data(table: ChatTable, *, user_id: str) -> int:
    for title, model_id, turns in _SAMPLE_CONVERSATIONS:
        conversation = await create_conversation(
            table, user_id=user_id, title=title, model_id=model_id
        )
        await add_messages(
            table,
            user_id=user_id,
            conversation_id=conversation.id,
            messages=[
                NewMessage(role=role, content=content, model_id=_model(role, model_id))
                for role, content in turns
            ],
        )
    return len(_SAMPLE_CONVERSATIONS)


def _model(role: Role, model_id: str) -> str | None:
    return model_id if role == "assistant" else None


def seed_moto(moto_url: str) -> None:
    url = f"{moto_url}/moto-api/seed?a={_MOTO_SEED}"
    request = urllib.request.Request(url, method="POST")  # noqa: S310 - our loopback server
    with urllib.request.urlopen(request, timeout=5):  # noqa: S310
        pass


def listen(host: str, port: int) -> socket.socket:
    """Bind before anything else starts, so a busy port fails fast with a clear message."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise DevStackError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def graphiql_url(graphql_url: str) -> str:
    """GraphiQL with the sample query in the editor (the page reads `?q=`)."""
    # %20 for spaces and %2B for "+", which any decoder reads back the same.
    return f"{graphql_url}?q={urllib.parse.quote(SAMPLE_QUERY, safe='')}"


def can_open_browser(environ: Mapping[str, str]) -> bool:
    """False in CI and on a Linux box without a display, where a text browser could take over."""
    if environ.get("CI"):
        return False
    if sys.platform.startswith("linux"):
        return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))
    return True


@dataclasses.dataclass(frozen=True, kw_only=True)
class DevStack:
    """The prepared stack: what the app is built from and what the banner reports."""

    settings: Settings
    credentials: tuple[str, str] | None
    persistent: bool
    moto_url: str
    graphql_url: str
    token: str
    seeded: int

    @property
    def port(self) -> int:
        return int(self.graphql_url.rsplit(":", 1)[1].split("/", 1)[0])

    def state(self) -> DevState:
        cognito = self.settings.cognito
        return DevState(
            moto_url=self.moto_url,
            region=cognito.region,
            pool_id=cognito.user_pool_id,
            client_id=cognito.app_client_ids[0],
            graphql_url=self.graphql_url,
            pid=os.getpid(),
        )


def banner(stack: DevStack, *, command: str) -> str:
    """What `dev` prints once it serves: the token once, and a dev-token line that runs as
    printed (`command` is how the user started this program)."""
    dynamodb, cognito = stack.settings.dynamodb, stack.settings.cognito
    if stack.persistent:
        data = (
            f"table {dynamodb.table_name!r} on {dynamodb.endpoint_url}: it outlives "
            "this process (the local Cognito does not, but the dev user keeps the same id)"
        )
    else:
        data = f"in memory (moto on {dynamodb.endpoint_url}): gone at exit"
    seeded = f"{stack.seeded} sample conversations" if stack.seeded else "your existing data"
    return "\n".join(
        [
            "",
            "chat-history-api dev stack is up",
            f"  GraphiQL:  {graphiql_url(stack.graphql_url)}",
            f"  Data:      {data}",
            f"  Cognito:   local pool {cognito.user_pool_id}, "
            f"app client {cognito.app_client_ids[0]}",
            f"  Signed in: user {DEV_USER!r} ({seeded}); its token, valid for an hour, is in",
            "             GraphiQL's headers and below. A new one (or one for another user):",
            f"             {command} dev-token --user {DEV_USER}{_port_option(stack.port)}",
            "",
            "Try it from a terminal:",
            f"  TOKEN={stack.token}",
            f'  curl -s {stack.graphql_url} -H "Authorization: Bearer $TOKEN" \\',
            "    -H 'Content-Type: application/json' \\",
            f"    -d '{json.dumps({'query': CURL_QUERY})}'",
            "",
        ]
    )


def _port_option(port: int) -> str:
    return "" if port == DevOptions.port else f" --port {port}"


def run(options: DevOptions, environ: Mapping[str, str], *, out: TextIO = sys.stdout) -> None:
    """Start everything, serve until interrupted, and clean up; DevStackError if it cannot."""
    persistent = dynamodb_settings(environ).endpoint_url is not None
    state_dir = options.state_dir or default_state_dir(environ)
    with (
        listen(options.host, options.port) as sock,
        _sigterm_interrupts(),
        _moto(persistent=persistent) as moto_url,
        DevCognito.create(
            endpoint_url=moto_url, region=dynamodb_settings(environ).region
        ) as cognito,
    ):
        stack = prepare(
            dev_settings(environ, cognito, moto_url=moto_url),
            cognito,
            persistent=persistent,
            moto_url=moto_url,
            sock=sock,
        )
        path = state_path(state_dir, stack.port)

        def started() -> None:
            stack.state().write(path)
            print(banner(stack, command=options.command), file=out, flush=True)
            if options.open_browser and can_open_browser(environ):
                webbrowser.open(graphiql_url(stack.graphql_url))

        try:
            _serve(stack, sock, on_started=started)
        finally:
            path.unlink(missing_ok=True)
            print(_farewell(persistent), file=out, flush=True)


def prepare(
    settings: Settings,
    cognito: DevCognito,
    *,
    persistent: bool,
    moto_url: str,
    sock: socket.socket,
) -> DevStack:
    """Sign the dev user in, and create and seed the table."""
    credentials = aws_credentials(persistent=persistent)
    token = cognito.token_for(DEV_USER)
    seeded = asyncio.run(
        prepare_table(settings.dynamodb, credentials=credentials, user_id=subject_of(token))
    )
    asyncio.run(prepare_bucket(settings, credentials=credentials))
    host, port = sock.getsockname()[:2]
    url_host = f"[{host}]" if ":" in host else host
    return DevStack(
        settings=settings,
        credentials=credentials,
        persistent=persistent,
        moto_url=moto_url,
        graphql_url=f"http://{url_host}:{port}/graphql",
        token=token,
        seeded=seeded,
    )


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """Make SIGTERM unwind like Ctrl-C, so the state file goes and moto stops either way.

    uvicorn shuts down gracefully on both, then re-raises the signal to the handler it found.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def _moto(*, persistent: bool) -> Iterator[str]:
    with LockedMotoServer() as moto:
        if persistent:
            seed_moto(moto.url)
        yield moto.url


def _farewell(persistent: bool) -> str:
    if persistent:
        return "dev stack stopped; the table and its data remain."
    return "dev stack stopped; its in-memory data is gone."


def _serve(stack: DevStack, sock: socket.socket, *, on_started: Callable[[], None]) -> None:
    # Imported here: the app pulls in the whole GraphQL layer, which `dev-token` never needs.
    from ..app import create_app

    app = create_app(
        stack.settings,
        aws_credentials=stack.credentials,
        graphiql_headers={"Authorization": f"Bearer {stack.token}"},
        graphiql_query=SAMPLE_QUERY,
    )
    config = uvicorn.Config(
        app,
        log_config=logging_config(stack.settings.observability),
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = _AnnouncingServer(config, on_started=on_started)
    asyncio.run(server.serve(sockets=[sock]))


class _AnnouncingServer(uvicorn.Server):
    """Calls `on_started` once the app's lifespan has started and the socket accepts."""

    def __init__(self, config: uvicorn.Config, *, on_started: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            self._on_started()


def mint_token(state: DevState, username: str) -> str:
    """A token for `username` from the running stack's Cognito, creating the user if needed."""
    gone = DevStackError(
        f"the dev server at {state.graphql_url} is not answering; "
        "is `chat-history-api dev` still running?"
    )
    if not _accepts_connections(state.moto_url):
        # Checked first: botocore would spend seconds retrying a refused connection.
        raise gone
    try:
        with DevCognito(
            endpoint_url=state.moto_url,
            region=state.region,
            pool_id=state.pool_id,
            client_id=state.client_id,
        ) as cognito:
            cognito.ensure_user(username)
            return cognito.token_for(username)
    except (BotoCoreError, ClientError):
        raise gone from None


def _accepts_connections(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=2):
            return True
    except OSError:
        return False
