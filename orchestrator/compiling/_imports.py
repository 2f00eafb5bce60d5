"""Import user code named ``module:name`` from a graph file's folder, and check
call arguments against signatures, without running anything else.

The folder goes first on ``sys.path`` only while importing. A module of the same
name cached from another folder is dropped first, so two graph folders that
both have a ``models.py`` each get their own.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.compiling._validation import did_you_mean


class ImportFailure(Exception):
    """``module:name`` could not be imported; the message is for the user."""


def _provides(folder: Path, top: str) -> bool:
    return (folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file()


def _evict_foreign(top: str, folder: Path) -> None:
    """Forget a cached ``top`` module loaded from elsewhere if ``folder`` has its own."""
    cached = sys.modules.get(top)
    if cached is None or not _provides(folder, top):
        return
    origin = getattr(cached, "__file__", None)
    own = {(folder / f"{top}.py").resolve(), (folder / top / "__init__.py").resolve()}
    if origin is not None and Path(origin).resolve() in own:
        return
    for name in [n for n in sys.modules if n == top or n.startswith(f"{top}.")]:
        del sys.modules[name]


def import_object(target: str, folder: Path) -> Any:
    """The object ``module:name`` names, imported with ``folder`` first on ``sys.path``."""
    module_name, _, attribute = target.partition(":")
    folder = folder.resolve()
    _evict_foreign(module_name.split(".")[0], folder)
    entry = str(folder)
    sys.path.insert(0, entry)
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except (Exception, SystemExit) as error:
        raise ImportFailure(f"cannot import {target!r}: {type(error).__name__}: {error}") from None
    finally:
        if entry in sys.path:
            sys.path.remove(entry)
    if not hasattr(module, attribute):
        names = [n for n in dir(module) if not n.startswith("_")]
        raise ImportFailure(
            f"cannot import {target!r}: module {module_name!r} has no {attribute!r}"
            + did_you_mean(attribute, names)
        )
    return getattr(module, attribute)


@dataclass(frozen=True)
class ArgProblems:
    """How keyword arguments fail a signature: missing required ones, unknown names."""

    missing: tuple[str, ...] = ()
    unknown: tuple[tuple[str, str], ...] = ()  # (name, did-you-mean hint)

    def __bool__(self) -> bool:
        return bool(self.missing or self.unknown)


def check_arguments(
    func: Callable[..., Any], given: Collection[str], *, bound: bool = False
) -> ArgProblems:
    """Compare keyword names ``given`` with ``func``'s signature.

    ``bound``: ``func`` is a method taken from its class, so its first parameter
    (``self``) is not the caller's to give.
    """
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):  # builtins without a signature: nothing to check
        return ArgProblems()
    if bound and parameters:
        parameters = parameters[1:]
    by_name = {
        p.name: p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    missing = [
        p.name
        for p in parameters
        if p.default is inspect.Parameter.empty
        and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        and p.name not in given
    ]
    unknown = [] if takes_any else [n for n in given if n not in by_name]
    return ArgProblems(
        missing=tuple(missing),
        unknown=tuple((n, did_you_mean(n, list(by_name))) for n in unknown),
    )
