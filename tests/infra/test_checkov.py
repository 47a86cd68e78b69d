"""checkov, a maintained IaC scanner, passes both templates of every synthesis but for the
checks infra/checkov.yaml skips, each with its reason.

checkov lives in a virtualenv of its own (`make checkov`, from requirements/checkov.txt):
missing, these tests skip locally and fail in CI, where `make test` installs it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.layout import REPO_ROOT
from tests.infra.conftest import Synthesis

CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
CONFIG = REPO_ROOT / "infra" / "checkov.yaml"
# Bounds one scan of two templates (~15 s here): a hung scanner fails the test.
SCAN_SECONDS = 300
# What plain HTTP (allowPlainHttp, a trial) costs, as checkov sees it: no HTTPS, no TLS 1.2.
PLAIN_HTTP_FAILURES = {"CKV_AWS_2", "CKV_AWS_103"}


@pytest.fixture(scope="module")
def checkov() -> Path:
    if CHECKOV.is_file():
        return CHECKOV
    problem = f"checkov is not installed in {CHECKOV.parent.parent}: run `make checkov`"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def scan(checkov: Path, synthesis: Synthesis) -> dict[str, Any]:
    """checkov's JSON report of both templates, under infra/checkov.yaml."""
    templates = [synthesis.outdir / f"{shape.name}.template.json" for shape in synthesis.both]
    completed = subprocess.run(  # noqa: S603 - our own binary and arguments
        [
            str(checkov),
            *("--config-file", str(CONFIG)),
            *(argument for template in templates for argument in ("--file", str(template))),
            *("--output", "json", "--quiet", "--compact"),
        ],
        capture_output=True,
        text=True,
        timeout=SCAN_SECONDS,
        check=False,
    )
    # 0: no failed check, 1: some (the report names them); anything else is checkov failing.
    assert completed.returncode in (0, 1), completed.stderr
    report: dict[str, Any] = json.loads(completed.stdout)
    summary = report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] == sum(len(shape.resources) for shape in synthesis.both)
    assert summary["passed"] > 0, summary
    return report


def failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{check['check_id']} {check['resource']} ({Path(check['file_path']).name}): "
        f"{check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]


@pytest.mark.parametrize("which", ["synthesis", "limited"])
def test_both_templates_pass_every_check_not_skipped(
    which: str, checkov: Path, request: pytest.FixtureRequest
) -> None:
    synthesis: Synthesis = request.getfixturevalue(which)

    report = scan(checkov, synthesis)

    assert failures(report) == []


def test_plain_http_fails_exactly_the_https_checks(checkov: Path, variant: Synthesis) -> None:
    report = scan(checkov, variant)

    failed = {check["check_id"] for check in report["results"]["failed_checks"]}
    assert failed == PLAIN_HTTP_FAILURES, failures(report)


def test_every_skipped_check_says_why() -> None:
    entries = [
        line.strip() for line in CONFIG.read_text().splitlines() if re.match(r"\s*- CKV", line)
    ]

    assert entries
    for entry in entries:
        check, _, reason = entry.removeprefix("- ").partition("#")
        assert re.fullmatch(r"CKV2?_AWS_\d+\s+", check), entry
        assert len(reason.split()) >= 5, f"{check.strip()}: a reason of a few words"
