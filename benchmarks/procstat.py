"""CPU time of any local process, read from /proc (Linux), so no dependency is needed."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time `pid` has used so far, in seconds (10 ms resolution)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces and parentheses: split after its last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    # Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND


def rss_megabytes(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_megabytes(pid: int) -> float:
    """The high-water mark of `pid`'s resident memory since it last exec'd.

    Unlike getrusage's ru_maxrss, which Linux carries across fork and exec from the parent,
    so that a child of a large process reports the parent's peak.
    """
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
