"""The live-streaming benchmark's figures and its report; the run itself is `make bench`
(or `BENCH_QUICK=1 python -m benchmarks.streaming_live` as a smoke run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from benchmarks.config import PUBLISHED, BenchConfig, QuickRunError
from benchmarks.streaming_live import Counts, report, summary


def test_the_summary_is_nearest_rank_p50_p95_and_the_max() -> None:
    values = [float(n) for n in range(100, 0, -1)]

    assert summary(values) == {"n": 100, "p50": 50.0, "p95": 95.0, "max": 100.0}


def test_a_full_run_measures_the_issues_counts_and_a_quick_one_writes_elsewhere(
    tmp_path: Path,
) -> None:
    full = BenchConfig.from_env({})
    quick = BenchConfig.from_env({"BENCH_QUICK": "1", "BENCH_OUTPUT_DIR": str(tmp_path)})

    assert Counts.of(full) == Counts(deltas=1_000, subscriptions=500)
    assert Counts.of(quick).deltas < 1_000
    assert (full.output_dir, quick.output_dir) == (PUBLISHED, tmp_path)
    with pytest.raises(QuickRunError):
        BenchConfig.from_env({"BENCH_QUICK": "1", "BENCH_OUTPUT_DIR": str(PUBLISHED)})


def results(*, quick: bool) -> dict[str, Any]:
    return {
        "quick": quick,
        "code": "abc1234",
        "nproc": 2,
        "loadavg": [1.5, 1.0, 0.5],
        "latency": {
            "deltas": 1000,
            "delivered_ms": {"n": 1000, "p50": 3.25, "p95": 7.5, "max": 41.0},
            "append_ms": {"n": 1000, "p50": 4.0, "p95": 8.0, "max": 50.0},
        },
        "memory": [
            {
                "subscriptions": 500,
                "per_connection": 1,
                "connections": 500,
                "rss_before_mb": 100.0,
                "rss_after_mb": 130.0,
                "kb_per_subscription": 61.44,
                "redis_subscribed_clients": [500],
            }
        ],
    }


def test_the_report_gives_each_figure_and_says_when_it_is_a_smoke_run() -> None:
    text = report(results(quick=False))

    assert (
        "| from sending appendMessage to B until the event on A's socket | 3.2 | 7.5 | 41.0 |"
        in text
    )
    assert "| 500 | 1 | 100.0 MB | 130.0 MB | 61.4 KB | 500 |" in text
    assert "1,000 deltas" in text
    assert "Quick run" not in text
    assert "Quick run" in report(results(quick=True))
