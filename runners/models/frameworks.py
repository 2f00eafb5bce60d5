"""The registry of pre-built framework runners: which module writes, detects and
serves each framework. Framework libraries are imported only when a model of
that framework is saved or served, never when this package is imported."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from runners.errors import ModelError
from runners.models.refs import Signature

# framework name -> module in this package (also the optional extra to install)
FRAMEWORKS: Mapping[str, str] = {
    "sklearn": "runners.models.sklearn",
    "onnx": "runners.models.onnx",
    "torch": "runners.models.torch",
}


@dataclass(frozen=True)
class Framework:
    """What the store and the compiler need to know of one framework."""

    name: str
    runnable: str  # "module:Class" of its Runnable
    methods: frozenset[str]  # method names a stored signature may use
    default_signatures: Mapping[str, Signature]
    multithreaded: bool  # intra-op threads: one worker with every core
    write: Callable[[Any, Path], tuple[str, str]]  # (obj, folder) -> (file name, format)
    detect_format: Callable[[Path], str]
    filename_for: Callable[[str], str]

    def check_methods(self, signatures: Mapping[str, Signature]) -> None:
        unknown = sorted(set(signatures) - self.methods)
        if unknown:
            raise ModelError(
                f"{self.name} models have no method {', '.join(map(repr, unknown))};"
                f" available: {', '.join(sorted(self.methods))}"
            )


def framework_for(name: str) -> Framework:
    """The framework called ``name``; a clear error for an unknown one."""
    module_name = FRAMEWORKS.get(name)
    if module_name is None:
        raise ModelError(
            f"unknown model framework {name!r}; choose one of {', '.join(sorted(FRAMEWORKS))}"
        )
    return _from_module(name, importlib.import_module(module_name))


def _from_module(name: str, module: ModuleType) -> Framework:
    runnable = module.RUNNABLE
    return Framework(
        name=name,
        runnable=f"{module.__name__}:{runnable.__name__}",
        methods=frozenset(module.METHODS),
        default_signatures=dict(module.DEFAULT_SIGNATURES),
        multithreaded=bool(runnable.SUPPORTS_CPU_MULTI_THREADING),
        write=module.write_model,
        detect_format=module.detect_format,
        filename_for=module.filename_for,
    )
