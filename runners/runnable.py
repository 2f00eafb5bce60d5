"""The user's side of a runner: subclass ``Runnable``, decorate methods with ``@method``.

    class MLP(Runnable):
        SUPPORTED_RESOURCES = ("cpu",)
        SUPPORTS_CPU_MULTI_THREADING = False

        def __init__(self, hidden: int = 256, seed: int = 0) -> None:
            self.weights = ...            # load the model once per worker

        @method(batchable=True, batch_dim=0)
        def predict(self, x: np.ndarray) -> np.ndarray:
            return x @ self.weights

A batchable method receives its arguments stacked along ``batch_dim`` and must
return results of the same batch length along that dimension (an array, or a list).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

METHOD_ATTRIBUTE = "__graphctl_method__"


@dataclass(frozen=True)
class MethodSpec:
    """How a Runnable method is called: one request at a time, or batched."""

    name: str
    batchable: bool = False
    batch_dim: int = 0


class Runnable:
    """Base class of user models; ``__init__`` receives the runner's ``init`` mapping."""

    SUPPORTED_RESOURCES: ClassVar[tuple[str, ...]] = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING: ClassVar[bool] = False


@overload
def method(func: F, /) -> F: ...
@overload
def method(*, batchable: bool = False, batch_dim: int = 0) -> Callable[[F], F]: ...
def method(
    func: F | None = None, /, *, batchable: bool = False, batch_dim: int = 0
) -> F | Callable[[F], F]:
    """Expose a Runnable method to graphs: ``@method`` or ``@method(batchable=True)``."""

    def mark(target: F) -> F:
        spec = MethodSpec(name=target.__name__, batchable=batchable, batch_dim=batch_dim)
        setattr(target, METHOD_ATTRIBUTE, spec)
        return target

    return mark(func) if func is not None else mark


def runnable_methods(cls: type) -> dict[str, MethodSpec]:
    """The methods of a Runnable class marked with ``@method``, by name."""
    found: dict[str, MethodSpec] = {}
    for name, member in inspect.getmembers(cls, callable):
        spec = getattr(member, METHOD_ATTRIBUTE, None)
        if isinstance(spec, MethodSpec):
            found[name] = MethodSpec(name=name, batchable=spec.batchable, batch_dim=spec.batch_dim)
    return found
