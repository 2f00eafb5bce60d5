"""The floor for HTTP overhead: a plain FastAPI app doing the diamond's maths inline.

    python -m uvicorn bench.inline_app:app --port 8001 --loop uvloop --no-access-log

The same functions and weights as ``graphs/diamond.yaml``, in one process with
no worker pools, no batching and no graph: ``bench/http.py`` measures graphctl
against it, both servers on the same event loop with access logs off.
``POST /batching`` stands for the 20 ms model served the plain way: one call per
request (in FastAPI's thread pool), no batching.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from fastapi import FastAPI

GRAPHS_DIR = Path(__file__).resolve().parent.parent / "graphs"
BATCH_S = 0.020


def _diamond_models() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diamond_models", GRAPHS_DIR / "models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class DiamondMaths:
    """The diamond graph's answer computed inline, with its two MLPs loaded once:
    the inline app's work, and the answer the cold-start benchmark expects."""

    def __init__(self) -> None:
        self.models = _diamond_models()
        self.mlp_a = self.models.MLP(hidden=256, seed=0)
        self.mlp_b = self.models.MLP(hidden=512, seed=1)

    def __call__(self, x: Sequence[float]) -> list[float]:
        pre = self.models.normalize(np.asarray(x, dtype=np.float32))
        a = self.mlp_a.predict(pre[None, :])
        b = self.mlp_b.predict(pre[None, :])
        answer: list[float] = np.asarray(self.models.average_softmax(a, b))[0].tolist()
        return answer


def build() -> FastAPI:
    """The inline app."""
    maths = DiamondMaths()
    inline = FastAPI(title="inline diamond")

    @inline.post("/diamond")
    async def diamond(body: dict[str, Any]) -> dict[str, Any]:
        return {"y": maths(body["x"])}

    @inline.post("/batching")
    def batching(body: dict[str, Any]) -> dict[str, Any]:
        time.sleep(BATCH_S)
        return {"y": body["x"]}

    @inline.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return inline


app = build()
