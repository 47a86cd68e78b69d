"""cfn-lint finds no error, and no warning but one CDK writes itself, in any template of
any synthesis (the defaults, every context value set, and shared rate limits)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.conftest import Synthesis

# The regions the templates are checked against: resource types and properties differ
# between regions, and the stacks are region-agnostic.
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]
# W3005: CDK adds a DependsOn on a function's role beside the GetAtt that already implies it.
TOLERATED = frozenset({"W3005"})


def _lint(path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    matches = lint(path.read_text(), config=ManualArgs(regions=REGIONS))
    return [
        f"{match.rule.id} {match.message} ({path.name}:{match.linenumber})"
        for match in matches
        if match.rule.id not in TOLERATED and match.rule.severity in {"error", "warning"}
    ]


@pytest.mark.parametrize("which", ["synthesis", "variant", "limited"])
def test_every_template_lints_clean(which: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesis = request.getfixturevalue(which)
    templates = sorted(synthesized.outdir.glob("*.template.json"))
    assert [path.name for path in templates] == [
        "ChatHistoryContainer.template.json",
        "ChatHistoryServerless.template.json",
    ]

    problems = [problem for path in templates for problem in _lint(path)]

    assert problems == []
