"""The PyTorch runner: a TorchScript module or a whole saved ``nn.Module``.

TorchScript files hold no Python code and are the format to prefer. A saved
``nn.Module`` is a pickle: loading it runs code from the file (and needs the
module's class importable in the worker), so the store refuses it whenever its
sha256 no longer matches the metadata. Calls run under ``torch.no_grad()`` on
the runner's device (``cuda`` when the runner asks for a GPU, else ``cpu``).
"""

from __future__ import annotations

import contextlib
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from runners.errors import ModelError
from runners.models.refs import Signature
from runners.models.store import load_verified
from runners.runnable import Runnable, method

TORCHSCRIPT = "torchscript"
PICKLE = "pickle"
METHODS = ("forward",)
DEFAULT_SIGNATURES = {"forward": Signature(batchable=True, batch_dim=0)}


def write_model(obj: Any, dest: Path) -> tuple[str, str]:
    """Save a ScriptModule with ``torch.jit.save``, any other module with ``torch.save``."""
    import torch

    if isinstance(obj, torch.jit.ScriptModule):
        with _torchscript_quietly():
            torch.jit.save(obj, str(dest / filename_for(TORCHSCRIPT)))
        return filename_for(TORCHSCRIPT), TORCHSCRIPT
    if isinstance(obj, torch.nn.Module):
        torch.save(obj, dest / filename_for(PICKLE))
        return filename_for(PICKLE), PICKLE
    raise ModelError(f"a torch model must be an nn.Module, got {type(obj).__name__}")


@contextlib.contextmanager
def _torchscript_quietly() -> Iterator[None]:
    """TorchScript is deprecated from torch 2.13 on but still the portable format
    users hand us: saving and loading it must not warn on every worker start."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        warnings.filterwarnings(
            "ignore", message=r".*torch\.jit.*deprecated", category=DeprecationWarning
        )
        yield


def detect_format(path: Path) -> str:
    """TorchScript archives carry a ``code/`` folder; ``torch.save`` archives do not."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        raise ModelError(f"{str(path)!r} is not a PyTorch model file") from None
    return TORCHSCRIPT if any("/code/" in n for n in names) else PICKLE


def filename_for(fmt: str) -> str:
    return "model.pt" if fmt == TORCHSCRIPT else "module.pt"


def _to_numpy(value: Any) -> Any:
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, tuple | list):
        return [_to_numpy(v) for v in value]
    return value


class TorchRunnable(Runnable):
    """Serves a stored module through ``forward`` (its ``__call__``)."""

    SUPPORTED_RESOURCES = ("cpu", "nvidia.com/gpu")
    SUPPORTS_CPU_MULTI_THREADING = True

    def __init__(
        self,
        model: str,
        store: str | None = None,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        import torch

        info = load_verified(model, framework="torch", store=store)
        if threads:
            torch.set_num_threads(threads)
        self._device = torch.device(device)
        if info.format == TORCHSCRIPT:
            with _torchscript_quietly():
                module = torch.jit.load(  # type: ignore[no-untyped-call]
                    str(info.model_path), map_location=self._device
                )
        else:  # a pickle the user saved; the hash check above has already passed
            module = torch.load(info.model_path, map_location=self._device, weights_only=False)
        self._module = module.train(False)  # inference mode: no dropout, frozen batch norm
        # JSON numbers arrive as float64; cast floating inputs to the weights' dtype.
        params = [p.dtype for p in self._module.parameters() if p.is_floating_point()]
        self._float_dtype = params[0] if params else torch.get_default_dtype()

    @method(batchable=True, batch_dim=0)
    def forward(self, x: Any, *more: Any) -> Any:
        """The module's output for input ``x`` (and further positional inputs)."""
        import torch

        tensors = [self._tensor(torch.as_tensor(np.asarray(a))) for a in (x, *more)]
        with torch.no_grad():
            return _to_numpy(self._module(*tensors))

    def _tensor(self, tensor: Any) -> Any:
        if tensor.is_floating_point():
            tensor = tensor.to(self._float_dtype)
        return tensor.to(self._device)


RUNNABLE = TorchRunnable
