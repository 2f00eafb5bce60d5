"""Accuracy of a ``graphctl run --inputs ... --output out.jsonl`` of the digits graphs.

    python graphs/digits/score.py out.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def accuracy(path: Path) -> tuple[float, int]:
    """The share of output lines whose ``correct`` is true, and how many were scored."""
    flags = [json.loads(line).get("correct") for line in path.read_text().splitlines() if line]
    scored = [flag for flag in flags if flag is not None]
    return (sum(scored) / len(scored) if scored else 0.0), len(scored)


if __name__ == "__main__":
    value, count = accuracy(Path(sys.argv[1]))
    print(f"accuracy {value:.4f} on {count} digits")
