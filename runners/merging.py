"""How the calls of one batch merge into a single method call and split back.

Two styles, declared on ``@method`` (or a model's saved signature):

- **concatenate** (``@method(batchable=True, batch_dim=d)``, as in BentoML and
  Triton): every call already carries its batch dimension. Arrays are
  concatenated along ``d`` and lists are joined; the method runs once; its
  result is split back by each call's own row count along ``d``. A call of 5
  rows uses 5 of ``max_batch_size``.
- **stack** (``@method(batchable=True, stack=True)``): every call passes one
  item. Arrays are stacked along a new axis ``d``, anything else becomes a list;
  item ``i`` of the result goes back to the ``i``-th call. Each call is one row.
  A stream that calls may join (``joins=True``) gets lists, arrays included (one
  array per item): a stacked array could not grow when a call joins.

Calls share a batch only when their signature keys are equal: the same argument
names, array dtypes and shapes (for concatenation, the shapes without ``d``),
and, for arguments that are neither arrays nor lists, equal values (those pass
through unchanged). A call whose arrays cannot be concatenated (no dimension
``d``, or arguments of different row counts) gets a key of its own and runs
alone with its arguments as given.

A batch of one call passes its arguments and result through unchanged in the
concatenate style: a lone call costs no copy.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from itertools import accumulate, chain
from typing import Any, Protocol

import numpy as np

from runners.errors import MethodError
from runners.runnable import MethodSpec


class Call(Protocol):
    """What merging needs of a queued call."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


def signature_key(args: Sequence[Any], kwargs: Mapping[str, Any]) -> Hashable:
    """The stack style's key: calls with equal keys stack into one batch."""
    parts: list[Hashable] = [len(args)]
    for value in (*args, *kwargs.values()):
        if isinstance(value, np.ndarray):
            parts.append((value.shape, value.dtype.str))
        else:
            parts.append(type(value).__qualname__)
    parts.extend(kwargs)
    return tuple(parts)


def concat_key(args: Sequence[Any], kwargs: Mapping[str, Any], dim: int) -> tuple[Hashable, int]:
    """The concatenate style's key and the call's row count (1 for a call that must
    run alone: it gets a unique key)."""
    parts: list[Hashable] = [len(args), *kwargs]
    rows: int | None = None
    for value in (*args, *kwargs.values()):
        if isinstance(value, np.ndarray):
            if value.ndim <= dim:
                return object(), 1
            count = value.shape[dim]
            parts.append((value.shape[:dim], value.shape[dim + 1 :], value.dtype.str))
        elif isinstance(value, list):
            count = len(value)
            parts.append(list)
        else:
            parts.append(_passed_through(value))
            continue
        if rows is not None and count != rows:
            return object(), 1  # its arguments disagree on the row count: never merged
        rows = count
    if rows is None:
        return object(), 1  # nothing to concatenate
    return tuple(parts), rows


def _passed_through(value: Any) -> Hashable:
    """A non-batch argument joins the key by value, so merged calls agree on it."""
    try:
        hash(value)
    except TypeError:
        return object()  # unhashable (a dict): such a call runs alone
    return (type(value).__qualname__, value)


def call_key(call: Call, spec: MethodSpec) -> tuple[Hashable, int]:
    """The key calls of ``spec`` must share to merge, and the call's rows."""
    if not spec.batchable:
        return object(), 1
    if spec.stack:
        return signature_key(call.args, call.kwargs), 1
    return concat_key(call.args, call.kwargs, spec.batch_dim)


def merge_inputs(calls: Sequence[Call], spec: MethodSpec) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of one method call serving every call of the batch."""
    first = calls[0]
    if not spec.batchable or (len(calls) == 1 and not spec.stack):
        return list(first.args), dict(first.kwargs)
    join = _listed if spec.joins else _stack if spec.stack else _concatenate
    dim = spec.batch_dim
    args = [join([c.args[i] for c in calls], dim) for i in range(len(first.args))]
    kwargs = {k: join([c.kwargs[k] for c in calls], dim) for k in first.kwargs}
    return args, kwargs


def _one(value: Any, dim: int) -> Any:
    """A stacked batch of one item: an array view with the new axis (no copy), or a list."""
    if not isinstance(value, np.ndarray):
        return [value]
    return np.expand_dims(value, dim) if dim else value[None]


def _listed(values: list[Any], dim: int) -> list[Any]:
    """One entry per item: a list that grows in place when calls join the batch."""
    return list(values)


def _stack(values: list[Any], dim: int) -> Any:
    if len(values) == 1:
        return _one(values[0], dim)
    if not isinstance(values[0], np.ndarray):
        return values
    return np.stack(values, axis=dim)


def _concatenate(values: list[Any], dim: int) -> Any:
    first = values[0]
    if isinstance(first, np.ndarray):
        return np.concatenate(values, axis=dim)
    if isinstance(first, list):
        return list(chain.from_iterable(values))
    return first  # passed through: equal in every call (part of the key)


def split_outputs(value: Any, rows: Sequence[int], spec: MethodSpec, runner: str) -> list[Any]:
    """Each call's part of a batch's result; ``rows`` are the calls' row counts."""
    if not spec.batchable:
        return [value]
    if spec.stack:
        return _split_items(value, len(rows), spec, runner)
    if len(rows) == 1:
        return [value]
    return _split_rows(value, rows, spec, runner)


def _split_items(value: Any, count: int, spec: MethodSpec, runner: str) -> list[Any]:
    dim = spec.batch_dim
    if isinstance(value, np.ndarray) and value.ndim > dim:
        if count == 1 and not dim and value.shape[0] == 1:
            return [value[0]]
        if value.shape[dim] == count:
            return list(np.moveaxis(value, dim, 0) if dim else value)
    elif isinstance(value, list | tuple) and len(value) == count:
        return list(value)
    elif isinstance(value, dict) and value:
        columns = {k: _split_items(v, count, spec, runner) for k, v in value.items()}
        return [{k: col[i] for k, col in columns.items()} for i in range(count)]
    raise _shape_error(f"one entry per item along dimension {dim}", f"{count} items", spec, runner)


def _split_rows(value: Any, rows: Sequence[int], spec: MethodSpec, runner: str) -> list[Any]:
    dim, total = spec.batch_dim, sum(rows)
    if isinstance(value, np.ndarray) and value.ndim > dim and value.shape[dim] == total:
        return np.split(value, list(accumulate(rows))[:-1], axis=dim)
    if isinstance(value, list | tuple) and len(value) == total:
        ends = list(accumulate(rows))
        return [list(value[end - n : end]) for n, end in zip(rows, ends, strict=True)]
    if isinstance(value, dict) and value:
        columns = {k: _split_rows(v, rows, spec, runner) for k, v in value.items()}
        return [{k: col[i] for k, col in columns.items()} for i in range(len(rows))]
    raise _shape_error(
        f"its batch's rows along dimension {dim}",
        f"{total} rows from {len(rows)} calls",
        spec,
        runner,
    )


def _shape_error(expected: str, given: str, spec: MethodSpec, runner: str) -> MethodError:
    return MethodError(
        f"a batchable method must return {expected} (an array, a list or a dict of those);"
        f" {given} went in",
        error_type="BatchShapeError",
        runner=runner,
        method=spec.name,
    )
