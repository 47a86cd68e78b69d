"""Progress for the import, export and delete commands, and their closing summary.

On a terminal one line redraws in place (a bar when the total is known, counts, rate, time
left); elsewhere (a log, CI) a plain line every few seconds, so output stays readable.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Final, Literal

from .model import ImportedConversation, Notes, RefusedConversation

Action = Literal["import", "export", "delete"]
LIVE_EVERY: Final = 0.1
PLAIN_EVERY: Final = 10.0
LISTED_REFUSALS: Final = 20
_BAR: Final = 24
_PAST: Final[dict[Action, str]] = {"import": "imported", "export": "exported", "delete": "deleted"}


@dataclasses.dataclass(slots=True)
class Summary:
    conversations: int = 0
    messages: int = 0
    already_there: int = 0
    already_there_messages: int = 0
    refused: list[str] = dataclasses.field(default_factory=list)
    notes: Notes = dataclasses.field(default_factory=Notes)
    seconds: float = 0.0


class Progress:
    """Counts what a command did and shows it; `close` prints the summary and returns it.

    `position` reports work done in the unit of `total` (bytes read, for an import), so that
    the fraction and time left are right even while conversations differ in size.
    """

    def __init__(
        self,
        *,
        out: IO[str],
        action: Action,
        total: int | None = None,
        position: Callable[[], int] | None = None,
        live: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float | None = None,
    ) -> None:
        self._out = out
        self._action = action
        self._total = total
        self._position = position
        self._live = out.isatty() if live is None else live
        self._clock = clock
        self._every = every if every is not None else LIVE_EVERY if self._live else PLAIN_EVERY
        self._started = clock()
        self._shown = self._started
        self._drawn = False
        self.summary = Summary()

    def imported(self, conversation: ImportedConversation, *, new_messages: int) -> None:
        """Stored, wholly or in part (an interrupted import resumed): `new_messages` written."""
        self.summary.conversations += 1
        self.summary.messages += new_messages
        self.summary.already_there_messages += len(conversation.messages) - new_messages
        self.summary.notes.merge(conversation.notes)
        self.tick()

    def already_there(self, conversation: ImportedConversation) -> None:
        self.summary.already_there += 1
        self.summary.already_there_messages += len(conversation.messages)
        self.summary.notes.merge(conversation.notes)
        self.tick()

    def refused(self, refused: RefusedConversation) -> None:
        self.summary.refused.append(refused.describe())
        self.tick()

    def advance(self, *, conversations: int = 0, messages: int = 0) -> None:
        """For export and delete: so many more done."""
        self.summary.conversations += conversations
        self.summary.messages += messages
        self.tick()

    def tick(self) -> None:
        now = self._clock()
        if now - self._shown >= self._every:
            self._shown = now
            self._show(now)

    def close(self) -> Summary:
        now = self._clock()
        self.summary.seconds = now - self._started
        if self._live and self._drawn:
            self._show(now)
            self._out.write("\n")
        for line in self.summary_lines():
            self._out.write(line + "\n")
        self._out.flush()
        return self.summary

    # --- drawing

    def _done(self) -> int:
        if self._position is not None:
            return self._position()
        return self.summary.conversations + self.summary.already_there + len(self.summary.refused)

    def status(self, now: float) -> str:
        summary = self.summary
        elapsed = max(now - self._started, 1e-9)
        handled = summary.conversations + summary.already_there
        parts = [
            f"{handled:,} conversations",
            f"{summary.messages + summary.already_there_messages:,} messages",
            f"{(summary.messages + summary.already_there_messages) / elapsed:,.0f} msg/s",
        ]
        if summary.refused:
            parts.append(f"{len(summary.refused):,} refused")
        fraction = self._fraction()
        if fraction is not None and fraction > 0:
            parts.append(f"{_clock_time(elapsed * (1 - fraction) / fraction)} left")
        line = ", ".join(parts)
        if fraction is None:
            return f"{self._action}: {line}"
        if self._live:
            filled = round(_BAR * fraction)
            bar = "█" * filled + "░" * (_BAR - filled)
            return f"{self._action} {fraction:4.0%} {bar} {line}"
        return f"{self._action}: {fraction:.0%}, {line}"

    def _fraction(self) -> float | None:
        if not self._total:
            return None
        return min(max(self._done() / self._total, 0.0), 1.0)

    def _show(self, now: float) -> None:
        line = self.status(now)
        if self._live:
            width = shutil.get_terminal_size((100, 20)).columns - 1
            self._out.write("\r" + line[:width] + "\x1b[K")
            self._drawn = True
        else:
            self._out.write(line + "\n")
        self._out.flush()

    def summary_lines(self) -> list[str]:
        summary = self.summary
        lines = [
            f"{_PAST[self._action]} {summary.conversations:,} conversations "
            f"({summary.messages:,} messages) in {_clock_time(summary.seconds)}"
        ]
        if self._action == "import" and (summary.already_there or summary.already_there_messages):
            lines.append(
                f"skipped as already there: {summary.already_there:,} conversations, "
                f"{summary.already_there_messages:,} messages"
            )
        if summary.refused:
            lines.append(f"refused {len(summary.refused):,} conversations:")
            lines.extend(f"  {reason}" for reason in summary.refused[:LISTED_REFUSALS])
            if len(summary.refused) > LISTED_REFUSALS:
                lines.append(f"  ... and {len(summary.refused) - LISTED_REFUSALS:,} more")
        notes = summary.notes
        for label, counts in (
            ("left out (not shown as messages by the source)", notes.skipped),
            ("dropped parts (text kept)", notes.dropped),
            ("repaired", notes.repaired),
        ):
            if counts:
                lines.append(f"{label}: {_counts(counts)}")
        return lines


def _counts(counts: Counter[str]) -> str:
    return ", ".join(f"{count:,} {what}" for what, count in counts.most_common())


def _clock_time(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
