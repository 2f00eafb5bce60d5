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

A streaming method (``@method(stream=True)``) is a generator, sync or async: alone,
it yields its chunks; batchable, it receives one item per call (``stack``) and
yields, per step, a list aligned with the batch: a chunk for each item still
running, ``None`` for an item with nothing this step, ``END`` for an item that
finishes now. The value of each ``yield`` is the set of batch indices no longer
wanted (finished, or their caller went away), which the method may skip. See
``runners.streaming``. With ``joins=True`` the batch's argument lists grow between
steps as new calls join it (``runners.joining``).
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
    stream: bool = False
    joins: bool = False  # a batchable stream that new calls may join between steps

    def to_wire(self) -> list[Any]:
        """The spec as the worker's READY frame carries it."""
        return [self.batchable, self.batch_dim, self.stack, self.stream, self.joins]

    @classmethod
    def from_wire(cls, name: str, fields: Any) -> MethodSpec:
        """The spec a worker's READY frame describes (``to_wire``; an older worker
        sends 3 or 4 fields: no stream, no joins)."""
        batchable, batch_dim, stack, *rest = fields
        stream = bool(rest[0]) if rest else False
        joins = bool(rest[1]) and stream and bool(batchable) if len(rest) > 1 else False
        return cls(
            name,
            bool(batchable),
            int(batch_dim),
            bool(stack) or (stream and batchable),
            stream,
            joins,
        )


class _End:
    """``END``: yielded for an item of a batchable stream that finishes at this step."""

    def __repr__(self) -> str:
        return "END"


END = _End()  # a streaming batch's item that finishes at this step


class Runnable:
    """Base class of user models; ``__init__`` receives the runner's ``init`` mapping."""

    SUPPORTED_RESOURCES: ClassVar[tuple[str, ...]] = ("cpu",)
    SUPPORTS_CPU_MULTI_THREADING: ClassVar[bool] = False


@overload
def method(func: F, /) -> F: ...
@overload
def method(
    *,
    batchable: bool = False,
    batch_dim: int = 0,
    stack: bool = False,
    stream: bool = False,
    joins: bool = False,
) -> Callable[[F], F]: ...
def method(
    func: F | None = None,
    /,
    *,
    batchable: bool = False,
    batch_dim: int = 0,
    stack: bool = False,
    stream: bool = False,
    joins: bool = False,
) -> F | Callable[[F], F]:
    """Expose a Runnable method to graphs: ``@method``, ``@method(batchable=True)``
    (calls concatenated along ``batch_dim``), ``@method(batchable=True, stack=True)``
    (one item per call, stacked) or ``@method(stream=True)`` on a generator (a
    batchable stream takes one item per call; with ``joins=True`` new calls join
    it between steps, see ``runners.joining``)."""
    if batch_dim < 0:
        raise ValueError(f"batch_dim must be >= 0, got {batch_dim}")
    if joins and not (batchable and stream):
        raise TypeError(
            "@method(joins=True) is for batchable streams: declare "
            "@method(batchable=True, stream=True, joins=True)"
        )

    def mark(target: F) -> F:
        if stream and not (
            inspect.isgeneratorfunction(target) or inspect.isasyncgenfunction(target)
        ):
            raise TypeError(f"@method(stream=True) needs a generator; {target.__name__} is not one")
        spec = MethodSpec(
            target.__name__, batchable, batch_dim, stack or (stream and batchable), stream, joins
        )
        setattr(target, METHOD_ATTRIBUTE, spec)
        return target

    return mark(func) if func is not None else mark


def runnable_methods(cls: type) -> dict[str, MethodSpec]:
    """The methods of a Runnable class marked with ``@method``, by name."""
    found: dict[str, MethodSpec] = {}
    for name, member in inspect.getmembers(cls, callable):
        spec = getattr(member, METHOD_ATTRIBUTE, None)
        if isinstance(spec, MethodSpec):
            found[name] = MethodSpec(
                name, spec.batchable, spec.batch_dim, spec.stack, spec.stream, spec.joins
            )
    return found


def method_spec_of(func: Callable[..., Any]) -> MethodSpec:
    """The ``@method`` declaration of a (bound) method."""
    spec = getattr(func, METHOD_ATTRIBUTE, None)
    if not isinstance(spec, MethodSpec):
        raise TypeError(f"{func!r} is not a @method")
    return spec
