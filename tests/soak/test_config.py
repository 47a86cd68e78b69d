"""Where a soak's report goes: a full run publishes it, a short one never does."""

from __future__ import annotations

import pytest

from tests.soak.config import PUBLISHED_REPORT, SHORT_REPORTS, ShortRunError, SoakConfig


def test_a_full_run_publishes_its_report_and_plots_beside_it() -> None:
    config = SoakConfig.from_env({})
    assert (config.seconds, config.short) == (60.0, False)
    assert config.report == PUBLISHED_REPORT
    assert config.plots == PUBLISHED_REPORT.parent / "soak"


def test_a_short_run_writes_to_the_test_artifacts_by_default() -> None:
    config = SoakConfig.from_env({"SOAK_SECONDS": "10"})
    assert config.short
    assert config.report == SHORT_REPORTS / "soak.md"


def test_a_short_run_refuses_to_write_the_published_report() -> None:
    with pytest.raises(ShortRunError):
        SoakConfig.from_env({"SOAK_SECONDS": "10", "SOAK_REPORT_DIR": str(PUBLISHED_REPORT.parent)})


def test_a_run_needs_some_seconds() -> None:
    with pytest.raises(ValueError, match="SOAK_SECONDS"):
        SoakConfig.from_env({"SOAK_SECONDS": "0"})
