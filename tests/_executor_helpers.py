"""Shared by the executor's tests: paths of the test graphs, running a coroutine,
and waiting on a condition with a bounded deadline (never a fixed sleep)."""

from __future__ import annotations

import sys
from pathlib import Path

from tests.conftest import run
from tests.conftest import until as wait_for

ROOT = Path(__file__).resolve().parent.parent
TEST_GRAPHS = Path(__file__).resolve().parent / "graphs"
EXAMPLES = ROOT / "graphs"

if str(TEST_GRAPHS) not in sys.path:  # so tests can build the Probe the graphs expect
    sys.path.insert(0, str(TEST_GRAPHS))

from exec_kit import Probe  # noqa: E402

__all__ = ["EXAMPLES", "ROOT", "TEST_GRAPHS", "Probe", "run", "wait_for"]
