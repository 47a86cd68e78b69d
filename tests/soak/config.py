"""How long one soak run loads the service and where its report goes: the one place the soak
reads its environment.

A full run (SOAK_SECONDS unset, or FULL_SECONDS and more) writes the published report,
docs/soak.md with its plots in docs/soak/. A shorter one (`make soak-short`, CI) writes only
SOAK_REPORT_DIR, or test-artifacts/soak-short/ (ignored by git, as the browser test's
screenshots are), and never the published report: its figures are not results.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Committed: only a full run may write here.
PUBLISHED_REPORT = REPO_ROOT / "docs" / "soak.md"
SHORT_REPORTS = REPO_ROOT / "test-artifacts" / "soak-short"
# The service's and the flood's logs of the last run, to read when it fails.
LOGS = REPO_ROOT / "test-artifacts" / "soak-logs"
# The "at least 60 s" of load per scenario.
FULL_SECONDS = 60.0
REPORT_NAME = "soak.md"


class ShortRunError(ValueError):
    """A short run asked to write where the published report is."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class SoakConfig:
    # Each scenario's load lasts this long.
    seconds: float
    report: Path

    @property
    def short(self) -> bool:
        return self.seconds < FULL_SECONDS

    @property
    def plots(self) -> Path:
        """The report's PNGs, in the folder named after it (docs/soak.md: docs/soak/)."""
        return self.report.with_suffix("")

    @property
    def warm_up_seconds(self) -> float:
        """Load before a scenario's measured part, so a fresh process's first requests (the
        JWKS fetch, the document cache) and its memory's first growth are not measured."""
        return min(10.0, self.seconds / 6)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> SoakConfig:
        seconds = float(environ.get("SOAK_SECONDS", "") or FULL_SECONDS)
        if seconds <= 0:
            raise ValueError(f"SOAK_SECONDS must be positive, not {seconds}")
        chosen = environ.get("SOAK_REPORT_DIR", "")
        if seconds >= FULL_SECONDS:
            directory = Path(chosen) if chosen else PUBLISHED_REPORT.parent
            return cls(seconds=seconds, report=directory / REPORT_NAME)
        directory = Path(chosen) if chosen else SHORT_REPORTS
        report = directory / REPORT_NAME
        if report.resolve() == PUBLISHED_REPORT.resolve():
            raise ShortRunError(
                f"{directory}: a short soak (SOAK_SECONDS={seconds:g}) does not write the "
                f"published report; set SOAK_REPORT_DIR to another directory"
            )
        return cls(seconds=seconds, report=report)
