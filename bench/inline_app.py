"""The floor for HTTP overhead: a plain FastAPI app doing the diamond's maths inline.

    python -m uvicorn bench.inline_app:app --port 8001

The same functions and weights as ``graphs/diamond.yaml``, in one process with
no worker pools, no batching and no graph: ``bench/http.py`` measures graphctl
against it. ``POST /batching`` stands for the 20 ms model served the plain way:
one call per request (in FastAPI's thread pool), no batching.
"""

from __future__ import annotations

import importlib.util
import time
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


def build() -> FastAPI:
    """The inline app, with the diamond's two MLPs loaded once."""
    models = _diamond_models()
    mlp_a = models.MLP(hidden=256, seed=0)
    mlp_b = models.MLP(hidden=512, seed=1)
    inline = FastAPI(title="inline diamond")

    @inline.post("/diamond")
    async def diamond(body: dict[str, Any]) -> dict[str, Any]:
        pre = models.normalize(np.asarray(body["x"], dtype=np.float32))
        a = mlp_a.predict(pre[None, :])
        b = mlp_b.predict(pre[None, :])
        return {"y": np.asarray(models.average_softmax(a, b))[0].tolist()}

    @inline.post("/batching")
    def batching(body: dict[str, Any]) -> dict[str, Any]:
        time.sleep(BATCH_S)
        return {"y": body["x"]}

    @inline.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return inline


app = build()
