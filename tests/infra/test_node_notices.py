"""`make synth` prints node's notices as text, where jsii alone prints them as bytes literals.

infra/node_notices.py leans on jsii's internals; these tests fence it: jsii's own sink still
misprints (when it stops, the module can go), the filter hands jsii every protocol line and
nothing else, and `python -m infra` run on a node that writes a notice prints it as text.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsii._kernel.providers import process

from infra.node_notices import Notices

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTICE = "!!  Node 20 is end-of-life  !!"


def console(stderr: str) -> bytes:
    """A line of jsii's protocol: output the node side wrote through `console`."""
    payload = {"stderr": base64.b64encode(stderr.encode()).decode()}
    return json.dumps(payload).encode() + b"\n"


STDERR = [console("from the protocol\n"), f"{NOTICE}\n".encode(), b"[1, 2]\n"]


def test_jsii_alone_prints_a_notice_as_a_bytes_literal(capsys: pytest.CaptureFixture[str]) -> None:
    process.stderr_sink(io.BytesIO(b"".join(STDERR)))

    printed = capsys.readouterr().err
    # aws/jsii#4065: once this fails, jsii prints text itself and infra/node_notices.py can go.
    assert f"b'{NOTICE}\\n'" in printed
    assert "from the protocol\n" in printed


def test_through_the_filter_jsii_reads_its_protocol_and_the_rest_is_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # jsii's sink calls only readline; its signature asks for a whole IO.
    jsii_sink: Callable[[Any], None] = process.stderr_sink
    jsii_sink(Notices(io.BytesIO(b"".join(STDERR))))

    printed = capsys.readouterr().err
    assert printed.splitlines() == ["from the protocol", NOTICE, "[1, 2]"]


def test_make_synth_prints_what_node_writes_on_stderr_as_text(tmp_path: Path) -> None:
    # A node that first writes a notice of its own, as node and jsii's runtime do.
    node = tmp_path / "node"
    node.write_text(f'#!/bin/sh\necho "{NOTICE}" >&2\nexec {shutil.which("node")} "$@"\n')
    node.chmod(0o755)

    result = subprocess.run(
        [sys.executable, "-m", "infra", "--help"],
        cwd=REPO_ROOT,
        env={**os.environ, "JSII_NODE": str(node)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    assert NOTICE in result.stderr.splitlines()
    assert not [line for line in result.stderr.splitlines() if line.startswith("b'")]
    assert "python -m infra" in result.stdout
