"""The user's side of a runner: ``@method`` in both spellings, what it records,
and which methods of a class (and its bases) a graph may call."""

from __future__ import annotations

from typing import Any

import pytest

from runners.runnable import METHOD_ATTRIBUTE, MethodSpec, Runnable, method, runnable_methods


class Base(Runnable):
    @method
    def describe(self) -> str:
        return "base"

    @method(batchable=True, batch_dim=1, stack=True)
    def embed(self, x: Any) -> Any:
        return x

    def helper(self) -> None:
        """Not marked: a graph cannot call it."""


class Child(Base):
    SUPPORTED_RESOURCES = ("cpu", "gpu")

    @method(batchable=True)
    def predict(self, x: Any) -> Any:
        return x

    def describe(self) -> str:  # overridden without the mark: no longer exposed
        return "child"


def test_both_spellings_record_a_spec_and_return_the_function() -> None:
    def plain(self: Any) -> None: ...

    marked = method(plain)
    assert marked is plain
    assert getattr(plain, METHOD_ATTRIBUTE) == MethodSpec("plain")
    wrapped = method(batchable=True, batch_dim=2)(plain)
    assert wrapped is plain
    assert getattr(plain, METHOD_ATTRIBUTE) == MethodSpec("plain", batchable=True, batch_dim=2)


def test_a_negative_batch_dim_is_refused_where_it_is_written() -> None:
    with pytest.raises(ValueError, match="batch_dim must be >= 0, got -1"):
        method(batchable=True, batch_dim=-1)


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (
            Base,
            {
                "describe": MethodSpec("describe"),
                "embed": MethodSpec("embed", batchable=True, batch_dim=1, stack=True),
            },
        ),
        (
            Child,
            {
                "embed": MethodSpec("embed", batchable=True, batch_dim=1, stack=True),
                "predict": MethodSpec("predict", batchable=True),
            },
        ),
        (Runnable, {}),
    ],
)
def test_runnable_methods_lists_the_marked_methods_by_name(
    cls: type, expected: dict[str, MethodSpec]
) -> None:
    assert runnable_methods(cls) == expected


def test_an_alias_is_exposed_under_its_own_name() -> None:
    class Aliased(Runnable):
        @method
        def forward(self, x: Any) -> Any:
            return x

        __call__ = forward  # dunder, but callable and marked
        infer = forward

    found = runnable_methods(Aliased)
    assert found["infer"] == MethodSpec("infer") and found["forward"] == MethodSpec("forward")


def test_class_defaults_describe_a_cpu_only_single_threaded_model() -> None:
    assert Runnable.SUPPORTED_RESOURCES == ("cpu",)
    assert Runnable.SUPPORTS_CPU_MULTI_THREADING is False
    assert Child.SUPPORTED_RESOURCES == ("cpu", "gpu")


def test_joins_is_declared_only_on_a_batchable_stream() -> None:
    def gen(self: Any, x: list[int]) -> Any:
        yield x

    spec = getattr(method(batchable=True, stream=True, joins=True)(gen), METHOD_ATTRIBUTE)
    assert spec == MethodSpec("gen", batchable=True, stack=True, stream=True, joins=True)
    for flags in ({"stream": True}, {"batchable": True}, {}):
        with pytest.raises(TypeError, match="batchable=True, stream=True, joins=True"):
            method(joins=True, **flags)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([True, 0, True, True, True], MethodSpec("m", True, 0, True, True, True)),
        ([True, 0, False, True], MethodSpec("m", True, 0, True, True, False)),  # no joins field
        ([True, 1, False], MethodSpec("m", True, 1, False, False, False)),
        ([False, 0, False, True, True], MethodSpec("m", False, 0, False, True, False)),
    ],
)
def test_the_ready_frame_carries_joins_and_older_lists_still_read(
    fields: list[Any], expected: MethodSpec
) -> None:
    assert MethodSpec.from_wire("m", fields) == expected
    assert MethodSpec.from_wire("m", expected.to_wire()) == expected
