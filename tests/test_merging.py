"""How calls merge into one method call and split back (``runners.merging``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from runners import MethodError, MethodSpec
from runners.merging import call_key, merge_inputs, signature_key, split_outputs

STACK = MethodSpec("m", batchable=True, batch_dim=0, stack=True)
CONCAT = MethodSpec("m", batchable=True, batch_dim=0)
CONCAT_1 = MethodSpec("m", batchable=True, batch_dim=1)


@dataclass
class Call:
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)


def _rows(calls: list[Call], spec: MethodSpec) -> list[int]:
    return [call_key(c, spec)[1] for c in calls]


# -- concatenate (the default of a batchable method) ---------------------------


def test_calls_are_concatenated_along_the_batch_dim_and_split_by_their_rows() -> None:
    calls = [Call((np.full((n, 4), n, np.float32),)) for n in (1, 3, 2)]
    (merged,), _ = merge_inputs(calls, CONCAT)
    assert merged.shape == (6, 4)
    parts = split_outputs(merged * 10, _rows(calls, CONCAT), CONCAT, "r")
    assert [p.shape for p in parts] == [(1, 4), (3, 4), (2, 4)]
    assert [float(p[0, 0]) for p in parts] == [10.0, 30.0, 20.0]


def test_calls_of_different_row_counts_share_a_key() -> None:
    key_a, rows_a = call_key(Call((np.zeros((2, 4)),)), CONCAT)
    key_b, rows_b = call_key(Call((np.zeros((7, 4)),)), CONCAT)
    assert key_a == key_b and (rows_a, rows_b) == (2, 7)
    assert call_key(Call((np.zeros((2, 5)),)), CONCAT)[0] != key_a  # trailing shape differs
    assert call_key(Call((np.zeros((2, 4), np.float32),)), CONCAT)[0] != key_a


def test_concatenation_along_dimension_one() -> None:
    calls = [Call((np.full((2, n), n),)) for n in (1, 2)]
    assert _rows(calls, CONCAT_1) == [1, 2]
    (merged,), _ = merge_inputs(calls, CONCAT_1)
    assert merged.shape == (2, 3)
    parts = split_outputs(merged, [1, 2], CONCAT_1, "r")
    assert [p.shape for p in parts] == [(2, 1), (2, 2)]


def test_lists_are_joined_and_split_back_as_lists() -> None:
    calls = [Call((["a", "b"],)), Call((["c"],))]
    (merged,), _ = merge_inputs(calls, CONCAT)
    assert merged == ["a", "b", "c"]
    assert split_outputs([1, 2, 3], _rows(calls, CONCAT), CONCAT, "r") == [[1, 2], [3]]


def test_other_arguments_pass_through_and_must_be_equal_to_merge() -> None:
    a = Call((np.zeros((1, 2)),), {"threshold": 0.5})
    b = Call((np.zeros((3, 2)),), {"threshold": 0.5})
    c = Call((np.zeros((1, 2)),), {"threshold": 0.7})
    assert call_key(a, CONCAT)[0] == call_key(b, CONCAT)[0] != call_key(c, CONCAT)[0]
    _, kwargs = merge_inputs([a, b], CONCAT)
    assert kwargs["threshold"] == 0.5


def test_dict_results_are_split_per_key() -> None:
    out = split_outputs({"label": ["x", "y", "z"], "p": np.arange(3)}, [2, 1], CONCAT, "r")
    assert out[0]["label"] == ["x", "y"] and out[1]["p"].tolist() == [2]


@pytest.mark.parametrize(
    "args",
    [
        (np.float64(3.0),),  # not an array: nothing to concatenate
        (np.zeros(()),),  # no dimension 0
        (np.zeros((2, 3)), np.zeros((3, 3))),  # arguments disagree on their rows
        ({"not": "hashable"},),
    ],
)
def test_a_call_that_cannot_be_concatenated_gets_a_key_of_its_own(args: tuple[Any, ...]) -> None:
    first, second = call_key(Call(args), CONCAT), call_key(Call(args), CONCAT)
    assert first[0] != second[0] and first[1] == 1


def test_a_lone_call_passes_through_unchanged() -> None:
    x = np.zeros((3, 4))
    (merged,), _ = merge_inputs([Call((x,))], CONCAT)
    assert merged is x
    result = np.ones(5)  # whatever the method returns goes back whole
    assert split_outputs(result, [3], CONCAT, "r")[0] is result


@pytest.mark.parametrize("value", [np.zeros(4), [1, 2], 5, {}])
def test_a_result_without_the_batch_rows_is_a_method_error(value: Any) -> None:
    with pytest.raises(MethodError, match=r"rows along dimension 0.*3 rows from 2 calls"):
        split_outputs(value, [1, 2], CONCAT, "r")


# -- stack (one item per call) --------------------------------------------------


def test_stack_and_split_along_batch_dim_zero() -> None:
    calls = [Call((np.full(3, i, np.float32), i)) for i in range(4)]
    args, kwargs = merge_inputs(calls, STACK)
    assert args[0].shape == (4, 3) and args[1] == [0, 1, 2, 3] and kwargs == {}
    items = split_outputs(args[0] * 10, _rows(calls, STACK), STACK, "r")
    assert [float(item[0]) for item in items] == [0, 10, 20, 30]


def test_stack_and_split_along_batch_dim_one() -> None:
    spec = MethodSpec("m", batchable=True, batch_dim=1, stack=True)
    calls = [Call((np.full((2, 5), i),)) for i in range(3)]
    (stacked,), _ = merge_inputs(calls, spec)
    assert stacked.shape == (2, 3, 5)
    items = split_outputs(stacked, [1, 1, 1], spec, "r")
    assert all(item.shape == (2, 5) and (item == i).all() for i, item in enumerate(items))


def test_a_lone_stacked_item_gains_and_loses_the_batch_axis() -> None:
    (one,), _ = merge_inputs([Call((np.arange(3),))], STACK)
    assert one.shape == (1, 3)
    assert split_outputs(one, [1], STACK, "r")[0].shape == (3,)


def test_stacked_keywords_and_other_values() -> None:
    calls = [Call((), {"x": np.zeros(2) + i, "tag": "t"}) for i in range(2)]
    args, kwargs = merge_inputs(calls, STACK)
    assert args == [] and kwargs["x"].shape == (2, 2) and kwargs["tag"] == ["t", "t"]


def test_signature_separates_shapes_dtypes_and_keywords() -> None:
    a = signature_key((np.zeros(3),), {})
    assert a == signature_key((np.ones(3),), {})
    assert a != signature_key((np.zeros(3, np.float32),), {})
    assert a != signature_key((np.zeros(3),), {"k": 1})
    assert signature_key((1,), {"k": 1}) != signature_key((1,), {"j": 1})


@pytest.mark.parametrize("value", [np.zeros(3), [1, 2, 3], 5, np.float64(1.0), {}])
def test_a_stacked_batch_of_the_wrong_length_is_a_method_error(value: Any) -> None:
    with pytest.raises(MethodError, match="one entry per item"):
        split_outputs(value, [1, 1], STACK, "r")


def test_non_batchable_passes_the_call_unchanged() -> None:
    spec = MethodSpec("m")
    args, kwargs = merge_inputs([Call((np.zeros(3),), {"k": 1})], spec)
    assert args[0].shape == (3,) and kwargs == {"k": 1}
    assert split_outputs({"any": "thing"}, [1], spec, "r") == [{"any": "thing"}]
