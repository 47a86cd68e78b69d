"""Where a profiled server's time went: a pyinstrument session folded into a few tables.

The server samples its main thread for the whole load run (async_mode="disabled": every
sample counts, whichever task runs). Time spent waiting in the selector is idle and left out,
so the percentages are of the time the server was busy.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from pyinstrument.frame import Frame
from pyinstrument.session import Session

# Inclusive time under these frames (file path fragment, function name or "" for any).
CHECKPOINTS: tuple[tuple[str, str, str], ...] = (
    ("token verification (jose, RSA)", "/graphql_api/auth/verifier.py", "verify"),
    ("GraphQL validation (graphql-core rules)", "/graphql/validation/", ""),
    ("GraphQL parse", "/graphql/language/parser.py", ""),
    ("strawberry extensions", "/strawberry/extensions/", ""),
    ("botocore: serialize request", "/botocore/serialize.py", ""),
    ("botocore: parse response", "/botocore/parsers.py", ""),
    ("botocore: sign request", "/botocore/auth.py", ""),
    ("botocore: event hooks/handlers", "/botocore/hooks.py", "emit"),
    ("aiohttp client (DynamoDB HTTP)", "/aiohttp/client", ""),
    ("storage: item mapping", "/graphql_api/storage/records.py", ""),
    ("storage: item decoding and building", "/graphql_api/storage/items.py", ""),
    (
        "storage: DynamoDB fast path (HTTP under it included)",
        "/graphql_api/storage/fast_path.py",
        "",
    ),
    ("JSON encode/decode", "/json/", ""),
)
_SITE = re.compile(r"/site-packages/([^/]+)/")
_STDLIB = re.compile(r"/lib/python3\.\d+/([^/]+?)(?:\.py)?(?:/|$)")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Summary:
    label: str
    busy_seconds: float
    idle_seconds: float
    by_package: list[tuple[str, float]]
    top_functions: list[tuple[str, float]]
    checkpoints: list[tuple[str, float]]


def _frames(frame: Frame) -> Iterator[Frame]:
    stack = [frame]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def _self_time(frame: Frame) -> float:
    # pyinstrument files a frame's own samples under a synthetic "[self]" child.
    real = sum(child.time for child in frame.children if not child.is_synthetic_leaf)
    return max(0.0, frame.time - real)


def package_of(path: str | None) -> str:
    path = path or ""
    if "/graphql_api/" in path:
        return "graphql_api." + path.rsplit("/graphql_api/", 1)[1].split("/")[0].removesuffix(".py")
    if "/benchmarks/" in path:
        return "benchmarks"
    site = _SITE.search(path)
    if site:
        return site.group(1).removesuffix(".py")
    stdlib = _STDLIB.search(path)
    if stdlib:
        return f"stdlib {stdlib.group(1)}"
    return "other"


def _is_idle(frame: Frame) -> bool:
    # The event loop waiting in epoll: nothing to do, or waiting on DynamoDB or a client.
    return frame.function in ("epoll.poll", "select.epoll.poll")


def _owner(frame: Frame) -> Frame:
    """Built-ins and generated code (dataclass methods) count for the Python code calling them."""
    current: Frame | None = frame
    while current is not None and (current.file_path or "<").startswith("<"):
        current = current.parent
    return current or frame


def _inclusive(root: Frame, fragment: str, function: str) -> float:
    """Time under frames matching; a match nested in another match is not counted twice."""
    total = 0.0
    stack = [root]
    while stack:
        frame = stack.pop()
        path = frame.file_path or ""
        if fragment in path and (not function or frame.function == function):
            total += frame.time
            continue
        stack.extend(frame.children)
    return total


def summarize(label: str, session_path: Path, top: int = 15) -> Summary:
    session = Session.load(str(session_path))
    root = session.root_frame()
    if root is None:
        return Summary(
            label=label,
            busy_seconds=0.0,
            idle_seconds=0.0,
            by_package=[],
            top_functions=[],
            checkpoints=[],
        )
    idle = 0.0
    packages: dict[str, float] = defaultdict(float)
    functions: dict[str, float] = defaultdict(float)
    for frame in _frames(root):
        if frame.is_synthetic_leaf:
            continue
        own = _self_time(frame)
        if _is_idle(frame):
            idle += own
            continue
        packages[package_of(_owner(frame).file_path)] += own
        where = (frame.file_path or "?").split("/site-packages/")[-1].split("/work/main/")[-1]
        functions[f"{frame.function} ({where}:{frame.line_no})"] += own
    busy = max(root.time - idle, 1e-9)
    return Summary(
        label=label,
        busy_seconds=busy,
        idle_seconds=idle,
        by_package=sorted(packages.items(), key=lambda kv: -kv[1])[:top],
        top_functions=sorted(functions.items(), key=lambda kv: -kv[1])[:top],
        checkpoints=[
            (name, _inclusive(root, fragment, function)) for name, fragment, function in CHECKPOINTS
        ],
    )


def render(summary: Summary, ops: int) -> list[str]:
    busy = summary.busy_seconds

    def row(name: str, seconds: float) -> str:
        per_op = seconds * 1000 / ops if ops else 0.0
        return f"| {name} | {100 * seconds / busy:.1f}% | {per_op:.2f} |"

    return [
        f"### {summary.label}",
        "",
        f"{ops} operations; busy {busy:.2f} s of {busy + summary.idle_seconds:.2f} s sampled "
        f"({busy * 1000 / max(ops, 1):.2f} ms per operation, with the profiler's overhead).",
        "",
        "| self time by package | share of busy | ms/op |",
        "|---|---|---|",
        *(row(name, seconds) for name, seconds in summary.by_package[:10]),
        "",
        "| inclusive time under | share of busy | ms/op |",
        "|---|---|---|",
        *(row(name, seconds) for name, seconds in summary.checkpoints if seconds > 0),
        "",
        "| top functions by self time | share of busy | ms/op |",
        "|---|---|---|",
        *(row(f"`{name}`", seconds) for name, seconds in summary.top_functions[:12]),
        "",
    ]


def render_text(session_path: Path) -> str:
    """pyinstrument's own call tree of the session, as text."""
    from pyinstrument.renderers import ConsoleRenderer

    session = Session.load(str(session_path))
    return ConsoleRenderer(unicode=True, color=False, show_all=False).render(session)
