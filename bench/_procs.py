"""Processes measured from the outside: memory of a process tree, and timing
of a command until it is ready. Shared by the memory and cold-start benchmarks."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from dataclasses import dataclass

import psutil

MIB = 1024 * 1024
# The floor every Python server pays: the interpreter with the libraries a
# graph server imports anyway. Prints a line once imported, then waits.
BASELINE_IMPORTS = "import numpy, fastapi, uvicorn, httpx"
BASELINE_CODE = f"import sys; {BASELINE_IMPORTS}; print('ready', flush=True); sys.stdin.read()"


@dataclass(frozen=True)
class ProcessMemory:
    pid: int
    role: str  # "server" or "worker"
    pss_mib: float  # proportional set size (shared pages split), RSS when unavailable
    rss_mib: float


def memory_of(process: psutil.Process, role: str) -> ProcessMemory:
    """PSS where the OS reports it (Linux), else RSS for both figures."""
    try:
        info = process.memory_full_info()
        rss = info.rss
        pss = getattr(info, "pss", rss)
    except psutil.AccessDenied:
        rss = pss = process.memory_info().rss
    return ProcessMemory(process.pid, role, pss / MIB, rss / MIB)


def tree_memory(pid: int) -> list[ProcessMemory]:
    """The server process and every descendant (its workers)."""
    root = psutil.Process(pid)
    found = [memory_of(root, "server")]
    for child in root.children(recursive=True):
        try:
            found.append(memory_of(child, "worker"))
        except psutil.NoSuchProcess:
            continue
    return found


def baseline_memory() -> ProcessMemory:
    """One bare interpreter with the server's libraries imported."""
    with subprocess.Popen(
        [sys.executable, "-c", BASELINE_CODE],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        child.stdout.readline()  # "ready": imports done
        memory = memory_of(psutil.Process(child.pid), "baseline")
        child.stdin.close()
        child.wait(timeout=30)
    return memory


def baseline_start_s(repeats: int = 3) -> float:
    """Median seconds for a bare interpreter to import the server's libraries."""
    times = []
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", BASELINE_IMPORTS], check=True, timeout=60)
        times.append(time.monotonic() - started)
    return statistics.median(times)
