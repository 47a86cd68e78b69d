"""What one run measures and how long it may take: the full run, or BENCH_QUICK=1 for smoke runs.

This is the one place the harness reads its environment. A full run writes the published
results, docs/benchmarks/ (or BENCH_OUTPUT_DIR); a quick run writes only BENCH_OUTPUT_DIR, or
a temporary directory's bench-quick/, and never the published results: its figures are not
results.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Committed: only a full run may write here.
PUBLISHED = REPO_ROOT / "docs" / "benchmarks"


class QuickRunError(ValueError):
    """A quick run asked to write where the published results are."""


def refuse_published(path: Path) -> Path:
    """`path`, unless it is inside the published results: a quick run's output must not be."""
    if path.resolve().is_relative_to(PUBLISHED.resolve()):
        raise QuickRunError(
            f"{path}: a quick run (BENCH_QUICK) does not write the published results in "
            f"{PUBLISHED}; set BENCH_OUTPUT_DIR to another directory"
        )
    return path


# The benchmarks measure the service's work, one user sending thousands of requests a minute:
# far past the production budgets (RATE_LIMIT_*), which would turn a run into 429s.
UNLIMITED_RATES: Mapping[str, str] = {
    f"RATE_LIMIT_{kind}_{what}": "100000000"
    for kind in ("READS", "WRITES", "APPENDS")
    for what in ("PER_MINUTE", "BURST")
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class Budget:
    """One load run stops at whichever limit comes first; warm-up requests are not measured."""

    max_requests: int
    max_seconds: float
    warmup: int


@dataclasses.dataclass(frozen=True, kw_only=True)
class BenchConfig:
    quick: bool
    output_dir: Path
    # None: start moto (LockedMotoServer) in a subprocess; else any DynamoDB endpoint.
    dynamodb_endpoint_url: str | None
    region: str
    # Scale sweep: messages in the opened conversation, and conversations of one user.
    history_sizes: tuple[int, ...]
    conversation_counts: tuple[int, ...]
    # Branches of the opened conversation in the branchy scale point.
    branches: int
    headline_history: int
    delete_history: int
    # Concurrency levels of the load runs.
    concurrency: tuple[int, ...]
    budget_moto_c1: Budget
    budget_moto_c16: Budget
    budget_canned_c1: Budget
    budget_canned_c16: Budget
    # Exact DynamoDB counts: this many operations each, counted one at a time.
    count_repeats: int
    # Bound on the whole run, whatever happens.
    deadline_seconds: float
    profile: bool
    # The request layers against the floor (benchmarks/layers.py): requests per stack and round.
    layer_requests: int
    layer_rounds: int
    # Fresh processes per variant of the cold-start benchmark (benchmarks.coldstart).
    coldstart_runs: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BenchConfig:
        quick = environ.get("BENCH_QUICK", "").strip().lower() in {"1", "true", "yes"}
        endpoint = environ.get("DYNAMODB_ENDPOINT_URL", "").strip() or None
        output = Path(environ.get("BENCH_OUTPUT_DIR", "") or PUBLISHED)
        profile = environ.get("BENCH_PROFILE", "1").strip().lower() not in {"0", "false", "no"}
        if quick:
            return cls(
                quick=True,
                output_dir=refuse_published(
                    Path(
                        environ.get("BENCH_OUTPUT_DIR", "")
                        or Path(tempfile.gettempdir()) / "bench-quick"
                    )
                ),
                dynamodb_endpoint_url=endpoint,
                region=environ.get("AWS_REGION", "us-east-1"),
                history_sizes=(10, 200),
                conversation_counts=(10, 100),
                branches=3,
                headline_history=120,
                delete_history=100,
                concurrency=(1, 16),
                budget_moto_c1=Budget(max_requests=10, max_seconds=0.5, warmup=1),
                budget_moto_c16=Budget(max_requests=32, max_seconds=0.5, warmup=0),
                budget_canned_c1=Budget(max_requests=40, max_seconds=0.5, warmup=3),
                budget_canned_c16=Budget(max_requests=200, max_seconds=0.5, warmup=16),
                count_repeats=1,
                deadline_seconds=300.0,
                profile=profile and environ.get("BENCH_PROFILE") is not None,
                layer_requests=200,
                layer_rounds=3,
                coldstart_runs=2,
            )
        return cls(
            quick=False,
            output_dir=output,
            dynamodb_endpoint_url=endpoint,
            region=environ.get("AWS_REGION", "us-east-1"),
            history_sizes=(10, 1_000, 100_000),
            conversation_counts=(10, 10_000),
            branches=10,
            headline_history=200,
            delete_history=1_000,
            concurrency=(1, 16),
            budget_moto_c1=Budget(max_requests=200, max_seconds=1.5, warmup=2),
            budget_moto_c16=Budget(max_requests=400, max_seconds=1.5, warmup=0),
            budget_canned_c1=Budget(max_requests=600, max_seconds=1.2, warmup=20),
            budget_canned_c16=Budget(max_requests=3000, max_seconds=2.0, warmup=64),
            count_repeats=2,
            deadline_seconds=1200.0,
            profile=profile,
            layer_requests=2000,
            layer_rounds=7,
            coldstart_runs=7,
        )


def config_from_environment() -> BenchConfig:
    return BenchConfig.from_env(os.environ)
