"""The soak's clients: what they send, how each answer is judged, and the ledger of writes.

Each request ends one of five ways (`Outcome`):
  ok           2xx without errors: served, and for a write acknowledged
  refused      429 or 503 with a whole number of seconds in Retry-After: nothing was done
  unavailable  2xx whose every error is SERVICE_UNAVAILABLE: admitted, but DynamoDB did not
               answer within the request's deadline; a write may or may not have landed
  error        any other answer: another status, another error, a refusal without
               Retry-After. Never expected.
  failed       no answer at all: a client timeout (TIMEOUT_SECONDS, so generous that one is a
               real failure), a refused or reset connection. Never expected.

Every write names its own ids (conversations, messages, streamed messages: the API takes
client-chosen UUIDs) and every delta a text of its own, so the ledger knows, item by item,
what the table must hold afterwards and what it must not (tests/soak/verify.py). The
clients behave as the API asks of an app:
- after a refusal, wait Retry-After plus a jitter; a refused write is not sent again with its
  ids: the client goes on with a new operation and new ids (only a stream sends its refused
  step again, with a new text, as a streaming client must);
- after an unavailable answer, send the same write again with the same ids (and the same
  delta), which the API makes safe: so the ledger learns what landed, and "exactly once" is
  checked across those retries too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import ssl
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, Literal

import httpx

TIMEOUT_SECONDS: Final = 30.0
# A client adds up to this much to Retry-After, so refused clients do not return in step.
JITTER_SECONDS: Final = 0.5
# An unavailable answer has no Retry-After (it is a GraphQL error, not an HTTP refusal).
UNAVAILABLE_PAUSE_SECONDS: Final = 1
# Sends of one write (the same one again after an unavailable answer, or a stream's step
# again after a refusal) before the client gives up on it.
ATTEMPTS: Final = 5
# Problems described in full; beyond these, only counted.
PROBLEMS_KEPT: Final = 20
# How a request with no answer is counted among the problems: this, then the exception's name.
NO_ANSWER: Final = "no answer: "
SERVICE_UNAVAILABLE: Final = "SERVICE_UNAVAILABLE"

HOME = """query Home { conversations(first: 20) {
  edges { node { id title messageCount lastMessage { content } } } } }"""
OPEN = """query Open($id: ID!) { conversation(id: $id) {
  title messageCount messages(last: 20) { edges { node { id role content status } } } } }"""
CREATE = """mutation Create($i: CreateConversationInput!) {
  createConversation(input: $i) { conversation { id } } }"""
ADD = """mutation Add($i: AddMessageInput!) { addMessage(input: $i) {
  message { id } conversation { messageCount } } }"""
ADD_TWO = (
    """mutation AddTwo($i: AddMessagesInput!) { addMessages(input: $i) { messages { id } } }"""
)
RENAME = """mutation Rename($i: RenameConversationInput!) {
  renameConversation(input: $i) { conversation { version } } }"""
START = """mutation Start($i: StartMessageInput!) { startMessage(input: $i) { message { id } } }"""
APPEND = """mutation Append($i: AppendMessageInput!) { appendMessage(input: $i) { seq length } }"""
FINISH = """mutation Finish($i: FinishMessageInput!) {
  finishMessage(input: $i) { message { status } } }"""

Outcome = Literal["ok", "refused", "unavailable", "error", "failed"]


@dataclasses.dataclass(frozen=True, slots=True)
class Sample:
    # Who sent it: a scenario's role ("client", "normal", "abuser", "probe", ...).
    group: str
    kind: str
    # When it was sent, in seconds on the recorder's clock.
    at: float
    latency: float
    # None: no answer (a failure).
    status: int | None
    outcome: Outcome


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    outcome: Outcome
    # Seconds to wait before the next request: Retry-After, or UNAVAILABLE_PAUSE_SECONDS.
    retry_after: int = 0


class Recorder:
    """Every request's sample, and what went wrong, on one clock: seconds since `origin`."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.samples: list[Sample] = []
        self.problems: Counter[str] = Counter()
        self.described: list[str] = []

    def now(self) -> float:
        return time.monotonic() - self.origin

    def problem(self, kind: str, detail: str) -> None:
        self.problems[kind] += 1
        if len(self.described) < PROBLEMS_KEPT:
            self.described.append(f"{kind}: {detail}")


@dataclasses.dataclass
class Stream:
    conversation_id: str
    # The acknowledged deltas' texts, in seq order (seq n is deltas[n - 1]).
    deltas: list[str] = dataclasses.field(default_factory=list)
    finished: bool = False
    # A step stayed unavailable through every send: what is stored after the acknowledged
    # deltas is not known, only that the message is there once.
    unsettled: bool = False


@dataclasses.dataclass
class Ledger:
    """What the service acknowledged and what it refused, by the ids the clients chose."""

    # conversation id -> owner (sub)
    conversations: dict[str, str] = dataclasses.field(default_factory=dict)
    refused_conversations: dict[str, str] = dataclasses.field(default_factory=dict)
    # message id -> (conversation id, content), added whole
    messages: dict[str, tuple[str, str]] = dataclasses.field(default_factory=dict)
    # message id -> its stream, started
    streams: dict[str, Stream] = dataclasses.field(default_factory=dict)
    # message id -> conversation id, of adds and starts refused
    refused_messages: dict[str, str] = dataclasses.field(default_factory=dict)
    # conversation id -> titles acknowledged / refused / with no clear answer
    titles: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    refused_titles: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    unsettled_titles: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    # Writes with no clear answer in the end (unavailable through every send, an error, a
    # failure): message id -> conversation id, stored at most once; conversations, not
    # checked (a conversation's key is unique by itself).
    unsettled_messages: dict[str, str] = dataclasses.field(default_factory=dict)
    unsettled_writes: int = 0
    refused_deltas: int = 0

    def owned(self, conversation_id: str, owner: str, reply: Reply) -> None:
        if reply.outcome == "ok":
            self.conversations[conversation_id] = owner
        elif reply.outcome == "refused":
            self.refused_conversations[conversation_id] = owner
        else:
            self.unsettled_writes += 1

    def added(self, conversation_id: str, sent: Sequence[tuple[str, str]], reply: Reply) -> None:
        for message_id, content in sent:
            if reply.outcome == "ok":
                self.messages[message_id] = (conversation_id, content)
            elif reply.outcome == "refused":
                self.refused_messages[message_id] = conversation_id
            else:
                self.unsettled_messages[message_id] = conversation_id
        if reply.outcome not in ("ok", "refused"):
            self.unsettled_writes += 1

    def started(self, conversation_id: str, message_id: str, reply: Reply) -> Stream | None:
        """The stream `reply` acknowledged, or None (its id refused, or unsettled)."""
        if reply.outcome == "ok":
            stream = self.streams[message_id] = Stream(conversation_id)
            return stream
        self.added(conversation_id, [(message_id, "")], reply)
        return None

    def renamed(self, conversation_id: str, title: str, reply: Reply) -> None:
        if reply.outcome == "ok":
            self.titles.setdefault(conversation_id, set()).add(title)
        elif reply.outcome == "refused":
            self.refused_titles.setdefault(conversation_id, set()).add(title)
        else:
            self.unsettled_titles.setdefault(conversation_id, set()).add(title)
            self.unsettled_writes += 1


@dataclasses.dataclass
class User:
    sub: str
    token: str
    # The conversations it owns, acknowledged (seeded, or created during the run).
    conversations: list[str] = dataclasses.field(default_factory=list)


class Session:
    """One app instance of one user, with its own HTTP client: one request at a time (the
    abuser's, many at once)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        user: User,
        *,
        group: str,
        recorder: Recorder,
        ledger: Ledger,
        rng: random.Random,
        resend: bool = True,
    ) -> None:
        self.http = http
        self.user = user
        self.group = group
        self.recorder = recorder
        self.ledger = ledger
        self.rng = rng
        # Whether an unavailable write is sent again (an app's way; a flooding script's not).
        self.resend = resend

    async def call(self, kind: str, query: str, variables: dict[str, Any]) -> Reply:
        recorder = self.recorder
        at = recorder.now()
        started = time.perf_counter()
        try:
            response = await self.http.post(
                "/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.user.token}"},
            )
        except httpx.HTTPError as exc:
            latency = time.perf_counter() - started
            recorder.samples.append(Sample(self.group, kind, at, latency, None, "failed"))
            recorder.problem(
                f"{NO_ANSWER}{type(exc).__name__}", f"{self.group} {kind} after {latency:.1f}s"
            )
            return Reply("failed")
        latency = time.perf_counter() - started
        reply = self._judge(kind, response)
        recorder.samples.append(
            Sample(self.group, kind, at, latency, response.status_code, reply.outcome)
        )
        return reply

    def _judge(self, kind: str, response: httpx.Response) -> Reply:
        status = response.status_code
        if status in (429, 503):
            retry_after = response.headers.get("retry-after", "")
            if not retry_after.isdigit() or int(retry_after) < 1:
                self.recorder.problem(f"{status} without Retry-After", f"{self.group} {kind}")
                return Reply("error")
            return Reply("refused", retry_after=int(retry_after))
        try:
            body = response.json()
        except ValueError:
            body = None
        errors = body.get("errors") if isinstance(body, dict) else None
        if 200 <= status < 300 and errors and _codes(errors) == [SERVICE_UNAVAILABLE]:
            return Reply("unavailable", retry_after=UNAVAILABLE_PAUSE_SECONDS)
        if not 200 <= status < 300 or not isinstance(body, dict) or errors:
            self.recorder.problem(
                f"HTTP {status} {','.join(_codes(errors or []))}".strip(),
                f"{self.group} {kind}: {response.text[:200]}",
            )
            return Reply("error")
        return Reply("ok")

    async def write(self, kind: str, query: str, variables: dict[str, Any]) -> Reply:
        """A write, sent again as it was while its answer is unavailable (ATTEMPTS at most).
        Unavailable once and then refused, its fate is unknown: unavailable."""
        reply = await self.call(kind, query, variables)
        uncertain = False
        for _ in range(ATTEMPTS - 1):
            if reply.outcome != "unavailable" or not self.resend:
                break
            uncertain = True
            await self.back_off(reply, time.monotonic() + reply.retry_after + 1)
            reply = await self.call(kind, query, variables)
        if uncertain and reply.outcome == "refused":
            return Reply("unavailable", retry_after=reply.retry_after)
        return reply

    async def back_off(self, reply: Reply, stop_at: float) -> None:
        """Wait as a refusal asks (plus jitter), no later than `stop_at`."""
        pause = reply.retry_after + self.rng.uniform(0, JITTER_SECONDS)
        await asyncio.sleep(max(0.0, min(pause, stop_at - time.monotonic())))

    def conversation(self) -> str:
        return self.rng.choice(self.user.conversations)

    # --- operations: each one or more requests, its ids in the ledger --------------------

    async def home(self) -> Reply:
        return await self.call("home", HOME, {})

    async def open(self) -> Reply:
        return await self.call("open", OPEN, {"id": self.conversation()})

    async def create(self) -> Reply:
        conversation_id = str(uuid.uuid4())
        variables = {"i": {"id": conversation_id, "title": f"soak {conversation_id[:8]}"}}
        reply = await self.write("createConversation", CREATE, variables)
        self.ledger.owned(conversation_id, self.user.sub, reply)
        if reply.outcome == "ok":
            self.user.conversations.append(conversation_id)
        return reply

    async def add(self) -> Reply:
        conversation_id = self.conversation()
        message_id = str(uuid.uuid4())
        message = {
            "conversationId": conversation_id,
            "id": message_id,
            "role": "USER",
            "content": f"message {message_id}",
        }
        reply = await self.write("addMessage", ADD, {"i": message})
        self.ledger.added(conversation_id, [(message_id, message["content"])], reply)
        return reply

    async def add_pair(self) -> Reply:
        conversation_id = self.conversation()
        pair = [
            {"id": str(uuid.uuid4()), "role": role, "content": f"{role.lower()} {uuid.uuid4()}"}
            for role in ("USER", "ASSISTANT")
        ]
        variables = {"i": {"conversationId": conversation_id, "messages": pair}}
        reply = await self.write("addMessages", ADD_TWO, variables)
        self.ledger.added(conversation_id, [(m["id"], m["content"]) for m in pair], reply)
        return reply

    async def rename(self) -> Reply:
        conversation_id = self.conversation()
        title = f"renamed {uuid.uuid4()}"
        variables = {"i": {"id": conversation_id, "title": title}}
        reply = await self.write("renameConversation", RENAME, variables)
        self.ledger.renamed(conversation_id, title, reply)
        return reply

    async def stream(self, stop_at: float) -> Reply:
        """startMessage, 2 to 4 appendMessage, finishMessage: an answer streamed. Past
        `stop_at` it appends no more, and finishes what it has."""
        conversation_id = self.conversation()
        message_id = str(uuid.uuid4())
        start = {"conversationId": conversation_id, "id": message_id, "role": "ASSISTANT"}
        reply = await self.write("startMessage", START, {"i": start})
        stream = self.ledger.started(conversation_id, message_id, reply)
        if stream is None:
            return reply
        for seq in range(1, self.rng.randint(2, 4) + 1):
            if time.monotonic() >= stop_at:
                break

            async def append(attempt: int, seq: int = seq) -> Reply:
                text = f"<{seq}.{attempt}>"
                delta = {"conversationId": conversation_id, "messageId": message_id}
                sent = await self.write(
                    "appendMessage", APPEND, {"i": {**delta, "seq": seq, "delta": text}}
                )
                if sent.outcome == "ok":
                    stream.deltas.append(text)
                elif sent.outcome == "refused":
                    self.ledger.refused_deltas += 1
                return sent

            reply = await self._step(append, stop_at)
            if reply.outcome == "refused":
                break
            if reply.outcome != "ok":
                stream.unsettled = True
                return reply

        async def finish(attempt: int) -> Reply:
            variables = {
                "conversationId": conversation_id,
                "messageId": message_id,
                # An answer stopped before its first delta is STOPPED: COMPLETE needs text.
                "status": "COMPLETE" if stream.deltas else "STOPPED",
                "lastSeq": len(stream.deltas),
            }
            return await self.write("finishMessage", FINISH, {"i": variables})

        reply = await self._step(finish, stop_at)
        if reply.outcome == "ok":
            stream.finished = True
        elif reply.outcome != "refused":
            stream.unsettled = True
        return reply

    async def _step(self, send: Callable[[int], Awaitable[Reply]], stop_at: float) -> Reply:
        """One step of a stream, sent again after each refusal (ATTEMPTS at most)."""
        reply = Reply("refused")
        for attempt in range(1, ATTEMPTS + 1):
            reply = await send(attempt)
            if reply.outcome != "refused":
                return reply
            # A stream under way is finished even past the load's end: wait the full time.
            await self.back_off(reply, max(stop_at, time.monotonic() + reply.retry_after + 1))
        return reply


def _codes(errors: Sequence[Any]) -> list[str]:
    return sorted(
        {
            str((error.get("extensions") or {}).get("code"))
            for error in errors
            if isinstance(error, dict)
        }
    )


# What a client does next, and how often: reads most, writes of every kind, and answers
# streamed. A stream is 4 to 6 requests, so appends are about a fifth of all requests.
MIX: Final[tuple[tuple[str, float], ...]] = (
    ("home", 0.36),
    ("open", 0.32),
    ("add", 0.12),
    ("add_pair", 0.05),
    ("rename", 0.03),
    ("create", 0.04),
    ("stream", 0.08),
)
# What the probe after a burst sends: one request each, reads and writes.
SINGLES: Final = ("home", "open", "add")


async def run_one(session: Session, name: str, stop_at: float) -> Reply:
    if name == "stream":
        return await session.stream(stop_at)
    operation: Callable[[], Awaitable[Reply]] = getattr(session, name)
    return await operation()


def pick(rng: random.Random) -> str:
    roll = rng.random()
    for name, share in MIX:
        if roll < share:
            return name
        roll -= share
    return MIX[-1][0]


async def closed_loop(session: Session, *, stop_at: float, max_requests: int) -> None:
    """One client sending its next request as soon as the last is answered, until `stop_at`."""
    recorder = session.recorder
    while time.monotonic() < stop_at and len(recorder.samples) < max_requests:
        reply = await run_one(session, pick(session.rng), stop_at)
        if reply.outcome in ("refused", "unavailable"):
            await session.back_off(reply, stop_at)


async def paced(session: Session, *, think_seconds: float, stop_at: float) -> None:
    """A person's use: an operation, then a pause of `think_seconds` on average."""
    while time.monotonic() < stop_at:
        reply = await run_one(session, pick(session.rng), stop_at)
        if reply.outcome in ("refused", "unavailable"):
            await session.back_off(reply, stop_at)
        pause = session.rng.expovariate(1 / think_seconds)
        await asyncio.sleep(max(0.0, min(pause, stop_at - time.monotonic())))


@dataclasses.dataclass
class Flood:
    offered: int = 0
    # Sends skipped because every connection was waiting for an answer.
    skipped: int = 0


async def flood(sessions: Sequence[Session], *, rate: float, stop_at: float) -> Flood:
    """addMessage at `rate` a second, whatever the answers say (Retry-After is ignored): a
    script in a retry loop, one request at a time on each of its sessions' connections."""
    tally = Flood()
    idle = list(sessions)
    pending: set[asyncio.Task[None]] = set()

    async def send(session: Session) -> None:
        try:
            await session.add()
        finally:
            idle.append(session)

    next_at = time.monotonic()
    while next_at < stop_at:
        if idle:
            task = asyncio.create_task(send(idle.pop()))
            pending.add(task)
            task.add_done_callback(pending.discard)
            tally.offered += 1
        else:
            tally.skipped += 1
        next_at += 1 / rate
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*pending)
    return tally


async def probe(sessions: Sequence[Session], *, count: int) -> None:
    """`count` requests one after another (reads and writes, each user in turn): what the
    service does for the first clients after a burst."""
    for n in range(count):
        session = sessions[n % len(sessions)]
        await run_one(session, SINGLES[n % len(SINGLES)], time.monotonic())


# The service closes a connection idle for 5 s (`serve --timeout-keep-alive`); a client that
# kept one as long could send on it just as it closes. Clients let theirs go first.
KEEPALIVE_SECONDS: Final = 2.0


def client(base: str, *, tls: ssl.SSLContext) -> httpx.AsyncClient:
    """One app instance's HTTP client: one connection of its own, as 160 phones would have
    (and httpcore's pool costs time per request that grows with the connections it holds,
    which a shared pool of 160 would add to every latency). `tls` is never used on
    loopback's plain HTTP, but httpx builds a context for every client unless given one,
    which costs more than the client itself."""
    return httpx.AsyncClient(
        base_url=base,
        timeout=TIMEOUT_SECONDS,
        limits=httpx.Limits(
            max_connections=1, max_keepalive_connections=1, keepalive_expiry=KEEPALIVE_SECONDS
        ),
        verify=tls,
    )
