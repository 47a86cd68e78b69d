"""The cold-start benchmark's pieces: one fresh child against the suite's moto, and its summary."""

from __future__ import annotations

import sys

import pytest

from benchmarks.coldstart import PHASES, _environment, run_child, summarize
from tests.conftest import REGION
from tests.tokens import FakeUserPool


@pytest.fixture
def environment(dynamodb_endpoint: str, table_name: str, user_pool: FakeUserPool) -> dict[str, str]:
    return _environment(
        moto_url=dynamodb_endpoint,
        table=table_name,
        pool_id=user_pool.pool_id,
        client_id=user_pool.client_id,
        jwks_url=user_pool.jwks_url,
        token=user_pool.minter.access_token(sub="coldstart"),
        region=REGION,
    )


def test_a_child_times_every_phase_of_a_cold_start_as_deployed(
    environment: dict[str, str],
) -> None:
    timings = run_child(python=sys.executable, paths=[], environment=environment, mode="deployed")

    assert set(timings) == set(PHASES)
    assert all(value > 0 for value in timings.values())


def test_the_summary_gives_median_min_and_max_per_phase_and_in_total() -> None:
    samples = [
        {"import": 400.0, "init": 60.0, "first": 30.0, "second": 10.0},
        {"import": 500.0, "init": 70.0, "first": 40.0, "second": 20.0},
        {"import": 450.0, "init": 80.0, "first": 35.0, "second": 15.0},
    ]

    summary = summarize(samples)

    assert summary["import"] == {"median": 450.0, "min": 400.0, "max": 500.0}
    assert summary["total"] == {"median": 580.0, "min": 500.0, "max": 630.0}
