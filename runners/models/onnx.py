"""The ONNX Runtime runner: a stored ``.onnx`` graph served by an InferenceSession.

The session's inputs are the ``run`` method's arguments (by input name, or
positionally in the session's input order); with one output ``run`` returns
that array, with several it returns one ``{output name: value}`` per item of
the batch. ONNX Runtime uses intra-op threads, so ``workers: auto`` gives one
worker with every core, and the session uses the runner's ``threads`` (else
``OMP_NUM_THREADS`` set by the resource strategy, else the usable cores).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from runners.errors import ModelError
from runners.models.refs import Signature
from runners.models.store import load_verified
from runners.runnable import Runnable, method

FORMAT = "onnx"
METHODS = ("run",)
DEFAULT_SIGNATURES = {"run": Signature(batchable=True, batch_dim=0)}

# ONNX tensor element types -> numpy dtypes, to cast JSON numbers to what the model takes
_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8,
    "tensor(bool)": np.bool_,
}


def write_model(obj: Any, dest: Path) -> tuple[str, str]:
    """Write an ``onnx.ModelProto`` (or its serialized bytes) into ``dest``."""
    data = obj if isinstance(obj, bytes) else getattr(obj, "SerializeToString", None)
    if callable(data):
        data = data()
    if not isinstance(data, bytes):
        raise ModelError(f"an ONNX model must be a ModelProto or bytes, got {type(obj).__name__}")
    filename = filename_for(FORMAT)
    (dest / filename).write_bytes(data)
    return filename, FORMAT


def detect_format(path: Path) -> str:
    return FORMAT


def filename_for(fmt: str) -> str:
    return "model.onnx"


def _threads(threads: int | None) -> int:
    if threads:
        return threads
    from_env = os.environ.get("OMP_NUM_THREADS", "")
    return (
        int(from_env) if from_env.isdigit() and int(from_env) > 0 else len(os.sched_getaffinity(0))
    )


class OnnxRunnable(Runnable):
    """Serves a stored ONNX model through ``run``."""

    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(self, model: str, store: str | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        info = load_verified(model, framework="onnx", store=store)
        options = ort.SessionOptions()
        options.intra_op_num_threads = _threads(threads)
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(info.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = [(i.name, _DTYPES.get(i.type)) for i in self._session.get_inputs()]
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._batched = info.signatures["run"].batchable

    def _feed(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        if len(args) > len(self._inputs):
            raise ModelError(f"the model takes {len(self._inputs)} inputs, got {len(args)}")
        named = dict(zip((name for name, _ in self._inputs), args, strict=False)) | kwargs
        missing = [name for name, _ in self._inputs if name not in named]
        if missing or len(named) != len(self._inputs):
            raise ModelError(
                f"the model's inputs are {[n for n, _ in self._inputs]}, got {sorted(named)}"
            )
        return {name: np.asarray(named[name], dtype=dtype) for name, dtype in self._inputs}

    @method(batchable=True, batch_dim=0)
    def run(self, *args: Any, **kwargs: Any) -> Any:
        outputs = self._session.run(None, self._feed(args, kwargs))
        if len(outputs) == 1:
            return outputs[0]
        if not self._batched:
            return dict(zip(self._outputs, outputs, strict=True))
        named = list(zip(self._outputs, outputs, strict=True))
        return [{n: o[i] for n, o in named} for i in range(len(outputs[0]))]


RUNNABLE = OnnxRunnable
