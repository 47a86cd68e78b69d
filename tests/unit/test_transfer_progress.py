"""The progress display and the closing summary, on a fake clock."""

from __future__ import annotations

import io

from graphql_api.transfer import Progress, RefusedConversation
from graphql_api.transfer.model import Origin
from tests.transfer_checks import FIXTURES, imported, read_all


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_plain_output_prints_a_line_at_most_every_interval_with_the_time_left() -> None:
    out, clock = io.StringIO(), FakeClock()
    done = [0]
    progress = Progress(
        out=out,
        action="import",
        total=1000,
        position=lambda: done[0],
        live=False,
        clock=clock,
        every=5,
    )
    conversations = imported(read_all(FIXTURES / "claude-conversations.json"))
    for step, conversation in enumerate(conversations, start=1):
        clock.now += 3
        done[0] = 250 * step
        progress.imported(conversation, new_messages=len(conversation.messages))
    lines = out.getvalue().splitlines()
    # Ticks at 3, 6, 9 and 12 s: lines at 6 s and 12 s only.
    assert lines == [
        "import: 50%, 2 conversations, 8 messages, 1 msg/s, 0:06 left",
        "import: 100%, 4 conversations, 12 messages, 1 msg/s, 0:00 left",
    ]


def test_a_terminal_gets_one_line_redrawn_in_place_with_a_bar() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(out=out, action="export", total=4, live=True, clock=clock)
    for _ in range(2):
        clock.now += 1
        progress.advance(conversations=1, messages=10)
    text = out.getvalue()
    assert text.count("\r") == 2
    assert "\n" not in text
    assert (
        "export  50% ████████████░░░░░░░░░░░░ 2 conversations, 20 messages, 10 msg/s, 0:02 left"
        in text
    )
    progress.close()
    assert out.getvalue().endswith("\nexported 2 conversations (20 messages) in 0:02\n")


def test_without_a_total_there_is_no_fraction_and_no_time_left() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(out=out, action="delete", live=False, clock=clock, every=1)
    clock.now += 2
    progress.advance(conversations=5)
    assert out.getvalue() == "delete: 5 conversations, 0 messages, 0 msg/s\n"


def test_the_summary_names_what_was_imported_skipped_refused_and_left_out() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(out=out, action="import", live=False, clock=clock)
    results = read_all(FIXTURES / "chatgpt-conversations.json")
    first, second, third, fourth = imported(results)
    progress.imported(first, new_messages=7)
    progress.imported(second, new_messages=2)  # resumed: 4 of its 6 were stored before
    progress.already_there(third)
    progress.already_there(fourth)
    for number in range(22):
        progress.refused(
            RefusedConversation(origin=Origin(file="c.json", index=number), reasons=("bad",))
        )
    clock.now += 75
    summary = progress.close()
    assert (summary.conversations, summary.messages, summary.already_there) == (2, 9, 2)
    assert summary.already_there_messages == 4 + 4 + 3
    lines = out.getvalue().splitlines()
    assert lines[:4] == [
        "imported 2 conversations (9 messages) in 1:15",
        "skipped as already there: 2 conversations, 11 messages",
        "refused 22 conversations:",
        "  c.json: conversation #0: bad",
    ]
    assert lines[23] == "  ... and 2 more"
    assert lines[24] == (
        "left out (not shown as messages by the source): 2 tool message, "
        "1 hidden system message, 1 tool call, 1 custom instructions, 1 reasoning, "
        "1 reasoning summary"
    )
    assert lines[25] == "dropped parts (text kept): 2 image, 1 audio, 1 file"
    assert lines[26].startswith("repaired: 4 missing message time, taken from the one before")


def test_a_plain_close_prints_only_the_summary_and_no_partial_line() -> None:
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(out=out, action="import", live=False, clock=clock)
    progress.close()
    assert out.getvalue() == "imported 0 conversations (0 messages) in 0:00\n"
