"""CPU time and resident memory of a process of this host, read from ``/proc``.

The metrics collector reads each worker process's figures at scrape time, so an
operator sees what a runner really costs (the server's own figures come from
``prometheus_client``'s process collector, which reads the same files).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


@dataclass(frozen=True)
class ProcessUsage:
    cpu_s: float  # user + system time since the process started
    resident_bytes: int


def process_usage(pid: int, proc: str = "/proc") -> ProcessUsage | None:
    """The usage of process ``pid``, or ``None`` if it is gone or ``/proc`` is absent
    (not Linux)."""
    try:
        with open(f"{proc}/{pid}/stat", "rb") as stat_file:
            stat = stat_file.read()
        with open(f"{proc}/{pid}/statm", "rb") as statm_file:
            statm = statm_file.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat
    resident_pages = int(statm.split()[1])
    return ProcessUsage((utime + stime) / _TICKS_PER_S, resident_pages * _PAGE_BYTES)
