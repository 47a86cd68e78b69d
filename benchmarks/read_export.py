"""Throughput and peak memory of reading an export, in this process, start to end.

    python -m benchmarks.gen_export --size-mb 200 --out /tmp/conversations.json
    python -m benchmarks.read_export /tmp/conversations.json
    python -m benchmarks.read_export /tmp/conversations.json --naive   # json.load, to compare

Run each measurement in a fresh process: the peak resident size (VmHWM) only ever grows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from graphql_api.transfer import ExportReader, ImportedConversation, RefusedConversation

from .procstat import peak_rss_megabytes, rss_megabytes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--format", default="auto")
    parser.add_argument("--naive", action="store_true", help="json.load the file whole instead")
    args = parser.parse_args(argv)
    figures = _naive(args.paths[0]) if args.naive else _stream(args.paths, args.format)
    figures["machine"] = _machine()
    print(json.dumps(figures, indent=2))
    return 0


def _stream(paths: list[Path], format: str) -> dict[str, Any]:
    reader = ExportReader(paths, format=format)  # type: ignore[arg-type]
    before = rss_megabytes(os.getpid())
    conversations = messages = refused = 0
    started, cpu = time.perf_counter(), time.process_time()
    for result in reader:
        if isinstance(result, RefusedConversation):
            refused += 1
            continue
        if not isinstance(result, ImportedConversation):
            continue  # a project: no messages
        conversations += 1
        messages += len(result.messages)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    megabytes = reader.total_bytes / 1024 / 1024
    return {
        "reader": f"ExportReader ({reader.format})",
        "megabytes": round(megabytes, 1),
        "conversations": conversations,
        "messages": messages,
        "refused": refused,
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "megabytes_per_second": round(megabytes / seconds, 1),
        "messages_per_second": round(messages / seconds),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _naive(path: Path) -> dict[str, Any]:
    before = rss_megabytes(os.getpid())
    started = time.perf_counter()
    with path.open("rb") as stream:
        conversations = json.load(stream)
    seconds = time.perf_counter() - started
    return {
        "reader": "json.load",
        "megabytes": round(path.stat().st_size / 1024 / 1024, 1),
        "conversations": len(conversations),
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before, 1),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _peak_rss_mb() -> float:
    return peak_rss_megabytes(os.getpid())


def _machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), "
        f"Python {sys.version.split()[0]}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
