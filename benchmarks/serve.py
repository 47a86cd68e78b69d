"""One server under test: `python -m benchmarks.serve graphql|rest|floor`, 1 uvicorn worker.

Settings come from the environment exactly as the service reads them; BENCH_LOCAL_CREDENTIALS=1
gives the DynamoDB client moto's fake keys; the floor answers the file BENCH_FLOOR_BODY names.
Every variant listens on loopback with the same uvicorn settings, and prints
`READY <base url>` once it accepts requests.
With `--profile PATH` it samples itself with pyinstrument from then on, and when its stdin
closes it stops serving and saves the session to PATH.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette

from benchmarks.children import loopback_listener
from benchmarks.floor import create_floor_app
from benchmarks.gcstats import GcStatsRoute, GcWatch
from benchmarks.rest_baseline import create_rest_app
from graphql_api.settings import Settings

LOCAL_CREDENTIALS = ("testing", "testing")


def build(variant: str) -> Starlette:
    if variant == "floor":
        return create_floor_app(Path(os.environ["BENCH_FLOOR_BODY"]).read_bytes())
    settings = Settings.from_env(os.environ)
    credentials = LOCAL_CREDENTIALS if os.environ.get("BENCH_LOCAL_CREDENTIALS") == "1" else None
    if variant == "rest":
        return create_rest_app(settings, aws_credentials=credentials)
    from graphql_api.app import create_app

    return create_app(settings, aws_credentials=credentials)


async def serve(variant: str, profile: Path | None) -> None:
    listener = loopback_listener()
    # A route of the harness's own in front of the app: the GC pauses of this process.
    app = GcStatsRoute(build(variant), GcWatch().install())
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", workers=1)
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        if serving.done():
            await serving
            raise SystemExit(f"the {variant} server stopped during startup")
        await asyncio.sleep(0.05)
    # Which HTTP parser and event loop uvicorn picked (httptools/uvloop only when installed).
    http = getattr(config, "http_protocol_class", type(None)).__name__
    loop = type(asyncio.get_running_loop()).__module__
    print(f"READY http://127.0.0.1:{listener.getsockname()[1]} {http} {loop}", flush=True)
    if profile is None:
        await serving
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    server.should_exit = True
    await serving
    session = profiler.stop()
    session.save(str(profile))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=("graphql", "rest", "floor"))
    parser.add_argument("--profile", type=Path, help="sample with pyinstrument, save here")
    args = parser.parse_args()
    asyncio.run(serve(args.variant, args.profile))


if __name__ == "__main__":
    main()
