"""The default DynamoDB engine (and the Cognito IdP): moto on loopback, in its own process.

`python -m benchmarks.moto_engine` prints `READY <url>` and serves until SIGTERM.
"""

from __future__ import annotations

import signal
import threading

from graphql_api.local.moto_server import LockedMotoServer


def main() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with LockedMotoServer() as server:
        print(f"READY {server.url}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()
