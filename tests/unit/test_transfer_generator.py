"""The synthetic export generator, and that reading stays in bounded memory at size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.gen_export import write
from tests.transfer_checks import assert_well_formed, imported, read_all, refused

ROOT = Path(__file__).resolve().parents[2]


def test_the_generator_writes_a_readable_export_the_same_for_a_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    conversations, _ = write(first, size=300_000, part_size=None, seed=3)
    write(second, size=300_000, part_size=None, seed=3)
    assert first.read_bytes() == second.read_bytes()
    results = read_all(first)
    assert refused(results) == []
    assert len(imported(results)) == conversations
    for conversation in imported(results):
        assert_well_formed(conversation)
    assert any(c.notes.skipped["tool message"] for c in imported(results))


def test_split_parts_and_zips_hold_the_same_conversations(tmp_path: Path) -> None:
    write(tmp_path / "one.json", size=400_000, part_size=None, seed=4)
    write(tmp_path / "parts", size=400_000, part_size=100_000, seed=4)
    write(tmp_path / "parts.zip", size=400_000, part_size=100_000, seed=4)
    parts = sorted(path.name for path in (tmp_path / "parts").iterdir())
    assert parts[:2] == ["conversations-000.json", "conversations-001.json"]
    from_parts = imported(read_all(tmp_path / "parts"))
    assert from_parts == imported(read_all(tmp_path / "parts.zip"))
    # Parts end on conversation boundaries, so the split holds a few more than the whole.
    whole = imported(read_all(tmp_path / "one.json"))
    assert from_parts[: len(whole) - 1] == whole[: len(whole) - 1]


def test_reading_a_40_mb_export_grows_memory_by_a_few_mb_not_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "conversations.json"
    write(path, size=40 * 1024 * 1024, part_size=None, seed=5)
    completed = subprocess.run(  # noqa: S603 - our own module, on a file we wrote
        [sys.executable, "-m", "benchmarks.read_export", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures = json.loads(completed.stdout)
    assert figures["refused"] == 0
    assert figures["conversations"] > 1000
    # json.load would hold the whole document: about five times the file's size.
    assert figures["peak_rss_mb"] - figures["rss_before_mb"] < 20
