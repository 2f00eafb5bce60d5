"""The user's side of a runner: subclass ``Runnable``, decorate methods with ``@method``.

    class MLP(Runnable):
        SUPPORTED_RESOURCES = ("cpu",)
        SUPPORTS_CPU_MULTI_THREADING = False

        def __init__(self, hidden: int = 256, seed: int = 0) -> None:
            self.weights = ...            # load the model once per worker

        @method(batchable=True, batch_dim=0)
        def predict(self, x: np.ndarray) -> np.ndarray:
            return x @ self.weights

A batchable method's inputs already carry their batch dimension ``batch_dim``:
concurrent calls are concatenated along it, the method runs once, and its result
(an array, a list, or a dict of those, with the batch's rows along ``batch_dim``)
is split back by each call's own rows. A method that takes one item per call
declares ``@method(batchable=True, stack=True)``: items are stacked along a new
axis ``batch_dim`` and item ``i`` of the result goes to the ``i``-th call.
See ``runners.merging``.
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
    """How a Runnable method is called: one request at a time, or batched (calls
    concatenated along ``batch_dim``, or with ``stack`` one item per call stacked)."""

    name: str
    batchable: bool = False
    batch_dim: int = 0
    stack: bool = False


class Runnable:
    """Base class of user models; ``__init__`` receives the runner's ``init`` mapping."""

    SUPPORTED_RESOURCES: ClassVar[tuple[str, ...]] = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING: ClassVar[bool] = False


@overload
def method(func: F, /) -> F: ...
@overload
def method(
    *, batchable: bool = False, batch_dim: int = 0, stack: bool = False
) -> Callable[[F], F]: ...
def method(
    func: F | None = None,
    /,
    *,
    batchable: bool = False,
    batch_dim: int = 0,
    stack: bool = False,
) -> F | Callable[[F], F]:
    """Expose a Runnable method to graphs: ``@method``, ``@method(batchable=True)``
    (calls concatenated along ``batch_dim``) or ``@method(batchable=True, stack=True)``
    (one item per call, stacked)."""
    if batch_dim < 0:
        raise ValueError(f"batch_dim must be >= 0, got {batch_dim}")

    def mark(target: F) -> F:
        spec = MethodSpec(target.__name__, batchable, batch_dim, stack)
        setattr(target, METHOD_ATTRIBUTE, spec)
        return target

    return mark(func) if func is not None else mark


def runnable_methods(cls: type) -> dict[str, MethodSpec]:
    """The methods of a Runnable class marked with ``@method``, by name."""
    found: dict[str, MethodSpec] = {}
    for name, member in inspect.getmembers(cls, callable):
        spec = getattr(member, METHOD_ATTRIBUTE, None)
        if isinstance(spec, MethodSpec):
            found[name] = MethodSpec(name, spec.batchable, spec.batch_dim, spec.stack)
    return found
