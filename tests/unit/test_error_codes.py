"""Every error code a client can see is a member of errors.Code: no module spells one out.

A code written as a string drifts from the enum unnoticed (a typo is a code no client knows),
so this walks the syntax tree of every module of graphql_api and fails on any string constant
equal to a Code value outside errors.py: it guards the code written tomorrow too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import graphql_api
from graphql_api.errors import Code

PACKAGE = Path(graphql_api.__file__).parent
CODES = frozenset(code.value for code in Code)
# Where the codes are defined.
DEFINITIONS = "errors.py"


def spelled_out(source: str) -> list[tuple[int, str]]:
    """(line, code) of each string constant in `source` that is a code."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in CODES
    ]


def modules() -> list[str]:
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py"))


def test_the_walk_finds_a_code_wherever_it_is_written() -> None:
    source = 'X = "NOT_FOUND"\ndef f():\n    return {"code": "CONFLICT", "x": "NOT FOUND"}\n'
    assert spelled_out(source) == [(1, "NOT_FOUND"), (3, "CONFLICT")]


def test_no_module_spells_out_a_code() -> None:
    assert DEFINITIONS in modules()
    found = [
        f"{module}:{line}: {code!r} (use Code.{code})"
        for module in modules()
        if module != DEFINITIONS
        for line, code in spelled_out((PACKAGE / module).read_text(encoding="utf-8"))
    ]
    assert found == []
