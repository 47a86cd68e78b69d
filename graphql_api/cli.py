"""`chat-history-api`: dev, dev-token, serve, create-table, migrate, export-schema,
export-openapi, export-operations, and (transfer_cli.py) import, export, delete-user-data.

A command that cannot start says why in one line on stderr and exits non-zero, without a
traceback: 2 for configuration (as argparse does for bad options), 1 for anything else.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias

import uvicorn
from botocore.exceptions import BotoCoreError

from .errors import ChatError
from .observability.logs import logging_config
from .settings import DynamoDBSettings, Settings, SettingsError
from .storage.client import open_table
from .storage.migrations import Backfill, backfill_grouping
from .storage.table import create_table
from .transfer_cli import add_commands as add_transfer_commands

if TYPE_CHECKING:
    from starlette.applications import Starlette

_PROGRAM: Final = "chat-history-api"
EXIT_FAILURE: Final = 1
EXIT_CONFIGURATION: Final = 2
DEFAULT_SCHEMA_PATH: Final = Path("schema/schema.graphql")
DEFAULT_OPENAPI_PATH: Final = Path("schema/openapi.json")
_APP_FACTORY: Final = "graphql_api.cli:app_from_environment"
# A new on-demand table is usually ACTIVE within a minute; its index can take longer.
CREATE_TABLE_WAIT: Final = 600.0


class CommandError(Exception):
    """A command cannot go on; `str()` is the one line the user sees."""


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    try:
        return command(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIGURATION
    except (CommandError, ChatError) as exc:
        print(f"{args.command_name}: {_reason(exc)}", file=sys.stderr)
        return EXIT_FAILURE


def _reason(exc: Exception) -> str:
    # "DynamoDB is unreachable" alone does not say whether the endpoint or the credentials are
    # missing; botocore's own one-line message does.
    if isinstance(exc.__cause__, BotoCoreError):
        return f"{exc} ({exc.__cause__})"
    return str(exc)


def app_from_environment() -> Starlette:
    """The uvicorn factory each `serve --workers N` worker calls to build its own app."""
    # The app is imported where it is served, so that create-table, dev-token and --help do
    # not load the whole GraphQL layer.
    from .app import create_app

    return create_app(Settings.from_env(os.environ))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chat-history-api",
        description="GraphQL API for AI chat apps' conversation history (DynamoDB + Cognito).",
    )
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")
    _add_dev(commands)
    _add_dev_token(commands)
    _add_serve(commands)
    _add_create_table(commands)
    _add_migrate(commands)
    _add_export_schema(commands)
    _add_export_openapi(commands)
    _add_export_operations(commands)
    add_transfer_commands(commands)
    return parser


_Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def _command(
    commands: _Commands, name: str, handler: Callable[[argparse.Namespace], int], help_text: str
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(command=handler, command_name=name)
    return parser


def _add_dev(commands: _Commands) -> None:
    parser = _command(
        commands,
        "dev",
        _dev,
        "Run the API with an embedded DynamoDB and Cognito (moto) and open GraphiQL.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--no-browser", action="store_true", help="do not open GraphiQL")
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)


def _add_dev_token(commands: _Commands) -> None:
    parser = _command(
        commands, "dev-token", _dev_token, "Print a bearer token from the running dev stack."
    )
    parser.add_argument("--user", default="dev", help="dev user, created if new")
    parser.add_argument("--port", type=int, default=8000, help="port of the dev server")
    parser.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)


def _add_serve(commands: _Commands) -> None:
    parser = _command(
        commands, "serve", _serve, "Serve the API in production; settings from the environment."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=_positive_int, default=1, help="worker processes")
    parser.add_argument(
        "--log-level", choices=["debug", "info", "warning"], help="overrides LOG_LEVEL"
    )
    parser.add_argument(
        "--timeout-keep-alive",
        type=_positive_int,
        default=5,
        help="seconds an idle connection stays open; behind a load balancer, longer than its "
        "idle timeout (else it may reuse a connection just as we close it: a 502)",
    )


def _add_create_table(commands: _Commands) -> None:
    _command(
        commands,
        "create-table",
        _create_table,
        "Create the DynamoDB table unless it exists, add any index it lacks, and wait until "
        "it is ACTIVE.",
    )


def _add_migrate(commands: _Commands) -> None:
    _command(
        commands,
        "migrate",
        _migrate,
        "Give items written by an earlier version what this one reads (GSI2 keys on every "
        "conversation). Resumable: run it again until it updates nothing.",
    )


def _add_export_schema(commands: _Commands) -> None:
    parser = _command(commands, "export-schema", _export_schema, "Write the GraphQL SDL.")
    parser.add_argument("--output", type=Path, default=DEFAULT_SCHEMA_PATH)


def _add_export_openapi(commands: _Commands) -> None:
    parser = _command(
        commands,
        "export-openapi",
        _export_openapi,
        "Write the REST routes' OpenAPI 3.1 document (default page sizes).",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OPENAPI_PATH)


def _add_export_operations(commands: _Commands) -> None:
    parser = _command(
        commands,
        "export-operations",
        _export_operations,
        "Write the trusted documents' manifest of schema/operations/ (Apollo's format, an id "
        "map, and the copy the service loads).",
    )
    parser.add_argument(
        "--output-dir", type=Path, help="write the manifest and the map here instead (to compare)"
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _dev(args: argparse.Namespace) -> int:
    with _local_extra():
        from .local import devstack
    options = devstack.DevOptions(
        host=args.host,
        port=args.port,
        open_browser=not args.no_browser,
        state_dir=args.state_dir,
        command=invocation(
            sys.argv[0], executable=sys.executable, cwd=Path.cwd(), path=os.environ.get("PATH")
        ),
    )
    try:
        devstack.run(options, os.environ)
    except devstack.DevStackError as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt:
        pass  # Ctrl-C or SIGTERM: the stack has shut down cleanly.
    return 0


def invocation(argv0: str, *, executable: str, cwd: Path, path: str | None) -> str:
    """How to run this program again from `cwd`, as it was started: by its name when `path`
    (PATH) finds this same script, else by its path (`.venv/bin/chat-history-api` from the
    clone, where nothing is on PATH); `python -m graphql_api.cli` when started so."""
    script = _absolute(argv0, cwd)
    if script.name == _PROGRAM:
        found = shutil.which(_PROGRAM, path=path)
        if found is not None and os.path.samefile(found, script):
            return _PROGRAM
        return _runnable(script, cwd)
    return shlex.join([_runnable(_absolute(executable, cwd), cwd), "-m", __spec__.name])


def _absolute(program: str, cwd: Path) -> Path:
    # Symbolic links are kept: a virtualenv's python is one, and only through it is it the
    # virtualenv's.
    return Path(os.path.normpath(cwd / program))


def _runnable(program: Path, cwd: Path) -> str:
    """`program` as a shell runs it from `cwd`: relative below it (with ./ when it has no
    directory part, so that PATH is not searched), absolute elsewhere."""
    if not program.is_relative_to(cwd):
        return shlex.quote(str(program))
    relative = str(program.relative_to(cwd))
    return shlex.quote(relative if os.sep in relative else f".{os.sep}{relative}")


def _dev_token(args: argparse.Namespace) -> int:
    with _local_extra():
        from .local import devstack
    state_dir = args.state_dir or devstack.default_state_dir(os.environ)
    try:
        state = devstack.DevState.read(devstack.state_path(state_dir, args.port))
        print(devstack.mint_token(state, args.user))
    except devstack.DevStackError as exc:
        raise CommandError(str(exc)) from None
    return 0


@contextmanager
def _local_extra() -> Iterator[None]:
    """The dev stack needs moto, which production installs (the Docker image) leave out."""
    try:
        yield
    except ModuleNotFoundError as exc:
        raise CommandError(
            f"the dev stack needs {exc.name!r}: pip install 'chat-history-api[local]'"
        ) from None


def _serve(args: argparse.Namespace) -> int:
    settings = Settings.from_env(os.environ)
    if args.workers == 1:
        from .app import create_app

        target: str | Starlette = create_app(settings)
    else:
        # Each worker process imports the factory and reads the same (already checked)
        # environment; uvicorn cannot hand an app object to other processes.
        target = _APP_FACTORY
    observability = settings.observability
    if args.log_level:
        observability = dataclasses.replace(observability, log_level=args.log_level.upper())
    uvicorn.run(
        target,
        factory=args.workers > 1,
        workers=args.workers,
        host=args.host,
        port=args.port,
        # Our lines for uvicorn's too (the dict reaches every worker); its access log is off:
        # the app writes one line per request, without the query string uvicorn's would carry.
        log_config=logging_config(observability),
        log_level=observability.log_level.lower(),
        access_log=False,
        # Let in-flight requests finish on SIGTERM, within a container's usual 30 s stop.
        timeout_graceful_shutdown=20,
        timeout_keep_alive=args.timeout_keep_alive,
    )
    return 0


def _create_table(args: argparse.Namespace) -> int:
    # Only the DynamoDB section: this runs from CI jobs and shells with no COGNITO_* variables.
    settings = DynamoDBSettings.from_env(os.environ)
    try:
        created = asyncio.run(_create(settings))
    except TimeoutError:
        raise CommandError(
            f"table {settings.table_name!r} is not ACTIVE after {CREATE_TABLE_WAIT:.0f} s"
        ) from None
    state = "created" if created else "already exists"
    print(f"table {settings.table_name!r} {state}; it is ACTIVE")
    return 0


async def _create(settings: DynamoDBSettings) -> bool:
    async with open_table(settings, max_pool_connections=2) as table:
        return await create_table(
            table.client, table_name=table.name, wait_seconds=CREATE_TABLE_WAIT
        )


def _migrate(args: argparse.Namespace) -> int:
    settings = DynamoDBSettings.from_env(os.environ)
    done = asyncio.run(_backfill(settings))
    print(
        f"table {settings.table_name!r}: {done.updated:,} conversations given GSI2 keys, "
        f"{done.skipped:,} changed meanwhile"
        + (" (run migrate again for them)" if done.skipped else "")
    )
    return 0


async def _backfill(settings: DynamoDBSettings) -> Backfill:
    def report(done: Backfill) -> None:
        print(f"scanned {done.scanned:,} items, updated {done.updated:,}", file=sys.stderr)

    async with open_table(settings, max_pool_connections=8) as table:
        return await backfill_grouping(table, progress=report)


def _export_schema(args: argparse.Namespace) -> int:
    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(schema_sdl(), encoding="utf-8")
    print(f"wrote {output}")
    return 0


def schema_sdl() -> str:
    from .gql.schema import sdl

    return sdl()


def _export_openapi(args: argparse.Namespace) -> int:
    from .rest.openapi import export_openapi

    output: Path = args.output
    output.parent.mkdir(parents=True, exist_ok=True)
    export_openapi(output)
    print(f"wrote {output}")
    return 0


def _export_operations(args: argparse.Namespace) -> int:
    from .gql import trusted

    try:
        documents = trusted.from_operations()
    except trusted.ManifestError as exc:
        raise CommandError(str(exc)) from None
    output: Path | None = args.output_dir
    if output is None:
        written = trusted.write_manifests(documents)
    else:
        written = trusted.write_manifests(
            documents,
            manifest=output / trusted.MANIFEST_PATH.name,
            documents_map_path=output / trusted.DOCUMENTS_MAP_PATH.name,
            packaged=None,
        )
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
