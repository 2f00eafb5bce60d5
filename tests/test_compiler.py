"""The compiler: from graph YAML to a frozen ``Plan``, and every check it makes."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from orchestrator import GraphFileError, Plan, compile_file, compile_text
from orchestrator.compiling._links import MAX_UNUSED_WARNINGS
from orchestrator.compiling._references import ReferenceSyntaxError, parse_ref
from orchestrator.plan import (
    ITEM,
    SWITCH_DEFAULT,
    AllOf,
    Compare,
    OnError,
    Ref,
    RetryPolicy,
    TensorSpec,
)

ROOT = Path(__file__).resolve().parent.parent

MODELS = """
from runners import Runnable, method

class Echo(Runnable):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale

    @method(batchable=True)
    def predict(self, x, mode="fast"):
        return x

def ident(x):
    return x

def join(a, b=None):
    return [a, b]

async def fetch(url):
    return url
"""

HEAD = "apiVersion: graphctl/v1\nkind: Graph\nmetadata: {name: t}\nspec:\n"


def build(tmp_path: Path, spec: str, models: str = MODELS) -> Plan:
    """Compile a graph whose ``spec:`` body is ``spec``, next to a ``models.py``."""
    (tmp_path / "models.py").write_text(models)
    path = tmp_path / "g.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(spec), "  "))
    return compile_file(path)


def problems(tmp_path: Path, spec: str) -> list[str]:
    """The diagnostics of a graph that must fail, as ``LINE:COL: severity: message``."""
    with pytest.raises(GraphFileError) as caught:
        build(tmp_path, spec)
    return [str(d).split(":", 1)[1] for d in caught.value.diagnostics]


def test_diamond_compiles_to_a_frozen_topological_plan() -> None:
    plan = compile_file(ROOT / "graphs" / "diamond.yaml")
    assert list(plan.nodes) == ["pre", "a", "b", "post"]
    assert set(plan.edges) == {("pre", "a"), ("pre", "b"), ("a", "post"), ("b", "post")}
    assert plan.nodes["post"].deps == frozenset({"a", "b"})
    assert plan.nodes["a"].args == {"x": Ref("pre", (), "$pre")}
    assert plan.nodes["pre"].args == {"x": Ref("inputs", ("x",), "$inputs.x")}


def test_a_plan_cannot_be_changed_through_its_mappings() -> None:
    plan = compile_file(ROOT / "graphs" / "diamond.yaml")
    for mapping in (plan.nodes, plan.inputs, plan.outputs, plan.runners):
        with pytest.raises(TypeError):
            mapping["extra"] = None  # type: ignore[index]
    source = {"only": plan.nodes["pre"]}
    copy = dataclasses.replace(plan, nodes=source)
    source["late"] = plan.nodes["a"]
    assert list(copy.nodes) == ["only"]
    assert plan.nodes["pre"].func is not None and plan.nodes["pre"].func.__name__ == "normalize"
    assert plan.runners["mlp_a"].batching.max_batch_size == 32
    assert plan.runners["mlp_b"].init == {"hidden": 512, "seed": 1}
    assert plan.runners["mlp_a"].search_path == (ROOT / "graphs").resolve()
    assert plan.inputs["x"].tensor == TensorSpec("float32", (64,))
    assert plan.outputs["y"].ref.source == "post"
    assert plan.warnings == ()


def test_tensor_inputs_get_a_json_schema_of_nested_lists(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        inputs:
          img: {tensor: {dtype: uint8, shape: [-1, 2]}}
          tag: {type: string, required: false}
        nodes:
          n: {function: models:join, args: {a: $inputs.img, b: $inputs.tag}}
        outputs:
          y: $n
        """,
    )
    schema = plan.inputs["img"].schema
    assert schema["type"] == "array" and "minItems" not in schema
    assert schema["items"]["minItems"] == schema["items"]["maxItems"] == 2
    assert schema["items"]["items"] == {"type": "integer", "minimum": 0}
    assert plan.inputs["tag"].schema == {"type": "string"}
    assert plan.inputs["tag"].required is False


def test_switch_gates_each_branch_and_coalesce_joins(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        inputs:
          kind: {type: string}
        nodes:
          route: {switch: $inputs.kind, cases: {cat: [small], dog: [small]}, default: [big]}
          small: {function: models:ident, args: {x: $inputs.kind}}
          big:
            function: models:ident
            args: {x: $inputs.kind}
            when: {ref: $inputs.kind, ne: ""}
          out: {coalesce: [$small, $big]}
        outputs:
          y: $out
        """,
    )
    route = plan.nodes["route"]
    assert (route.kind, route.cases) == ("switch", ("cat", "dog"))
    assert route.args == {"value": Ref("inputs", ("kind",), "$inputs.kind")}
    gate = Ref("route", (), "$route")
    assert plan.nodes["small"].when == Compare(gate, "in", ("cat", "dog"))
    assert plan.nodes["big"].when == AllOf(
        (
            Compare(gate, "eq", SWITCH_DEFAULT),
            Compare(Ref("inputs", ("kind",), "$inputs.kind"), "ne", ""),
        )
    )
    assert plan.nodes["big"].deps == frozenset({"route"})
    assert ("route", "big") in plan.edges
    assert plan.nodes["out"].args == {
        "values": [Ref("small", (), "$small"), Ref("big", (), "$big")]
    }
    assert next(iter(plan.nodes)) == "route"


def test_policies_map_and_literals(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        runners:
          echo: {runnable: models:Echo, init: {scale: 2}, workers: auto, max_queue: 8,
                 methods: {predict: {max_batch_size: 4, batchable: false}}}
        inputs:
          xs: {type: array}
        spec_timeout_placeholder: null
        """.replace(
            "spec_timeout_placeholder: null\n",
            """timeout_ms: 500
        nodes:
          each:
            runner: echo
            method: predict
            map: $inputs.xs
            args: {x: $item.value, mode: $$literal}
            timeout_ms: 50
            retries: 2
            on_error: {default: 0}
            on_skipped_input: null
          fetched:
            function: models:fetch
            args: {url: $each.0}
            retries: {count: 1, backoff_ms: 5}
            on_error: skip
        outputs:
          y: $fetched
        """,
        ),
    )
    each = plan.nodes["each"]
    assert each.map == Ref("inputs", ("xs",), "$inputs.xs")
    assert each.args == {"x": Ref(ITEM, ("value",), "$item.value"), "mode": "$literal"}
    assert (each.timeout_ms, each.retries, each.on_error) == (
        50,
        RetryPolicy(count=2),
        OnError("default", 0),
    )
    assert each.on_skipped_input == "null"
    fetched = plan.nodes["fetched"]
    assert fetched.is_async and fetched.retries == RetryPolicy(count=1, backoff_ms=5)
    assert fetched.on_error == OnError("skip")
    assert fetched.args == {"url": Ref("each", (0,), "$each.0")}
    assert plan.timeout_ms == 500
    config = plan.runners["echo"]
    assert (config.workers, config.max_queue) == ("auto", 8)
    assert config.batching_for("predict").max_batch_size == 4


def test_all_problems_are_reported_together_in_file_order(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        inputs:
          x: {type: number}
        nodes:
          a: {function: models:idnet, args: {x: $inputs.y}}
          b: {function: models:ident, args: {x: $a}, timout_ms: 3}
          c: {function: models:join, args: {a: $missing}}
        outputs:
          y: $c
        """,
    )
    assert found == [
        "9:19: error: node 'a': cannot import 'models:idnet': module 'models' has no 'idnet'"
        " (did you mean 'ident'?)",
        "9:43: error: node 'a': `$inputs.y` names no input 'y'",
        "10:48: error: node 'b': unknown key 'timout_ms' (did you mean 'timeout_ms'?)",
        "11:42: error: node 'c': `$missing` refers to no node 'missing'",
    ]


def test_unused_nodes_are_warnings_in_the_plan(tmp_path: Path) -> None:
    plan = build(
        tmp_path,
        """
        nodes:
          a: {function: models:ident, args: {x: 1}}
          spare: {function: models:ident, args: {x: $a}}
        outputs:
          y: $a
        """,
    )
    assert [str(w).split(":", 1)[1] for w in plan.warnings] == [
        "8:5: warning: node 'spare' is not used by any node or output"
    ]


def test_many_unused_nodes_give_the_first_warnings_then_one_count(tmp_path: Path) -> None:
    spares = "".join(f"  spare{i}: {{function: models:ident, args: {{x: 1}}}}\n" for i in range(25))
    plan = build(
        tmp_path,
        f"nodes:\n  a: {{function: models:ident, args: {{x: 1}}}}\n{spares}outputs:\n  y: $a\n",
    )
    shown = [str(w).split(":", 1)[1] for w in plan.warnings]
    assert len(shown) == MAX_UNUSED_WARNINGS + 1
    assert shown[0] == "7:5: warning: node 'spare0' is not used by any node or output"
    assert shown[-1] == (
        f"{7 + MAX_UNUSED_WARNINGS}:5: warning: ... and {25 - MAX_UNUSED_WARNINGS} more nodes"
        f" are not used by any node or output (from 'spare{MAX_UNUSED_WARNINGS}' on)"
    )


def test_a_failing_import_is_reported_at_every_node_that_names_it(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        nodes:
          a: {function: models:idnet, args: {x: 1}}
          b: {function: models:idnet, args: {x: $a}}
        outputs:
          y: $b
        """,
    )
    missing = "cannot import 'models:idnet': module 'models' has no 'idnet' (did you mean 'ident'?)"
    assert found == [f"7:19: error: node 'a': {missing}", f"8:19: error: node 'b': {missing}"]


GPU_RUNNER = """
from runners import Runnable, method

class Gpu(Runnable):
    SUPPORTED_RESOURCES = ("nvidia.com/gpu", "cpu")

    @method
    def predict(self, x):
        return x
"""


def test_gpu_devices_compile_into_the_runner_and_are_checked(tmp_path: Path) -> None:
    spec = """
    runners:
      pinned: {runnable: models:Gpu, resources: {devices: [2, 0]}}
      twice: {runnable: models:Gpu, resources: {devices: [0, 0]}}
      empty: {runnable: models:Gpu, resources: {devices: []}}
    nodes:
      a: {runner: pinned, method: predict, args: {x: 1}}
    outputs:
      y: $a
    """
    with pytest.raises(GraphFileError) as caught:
        build(tmp_path, spec, GPU_RUNNER)
    assert [str(d).split(":", 1)[1] for d in caught.value.diagnostics] == [
        "8:56: error: runner 'twice': `resources.devices`: [0, 0] has non-unique elements",
        "9:56: error: runner 'empty': `resources.devices`: [] should be non-empty",
    ]
    valid = "\n".join(
        line for line in spec.splitlines() if "twice" not in line and "empty" not in line
    )
    resources = build(tmp_path, valid, GPU_RUNNER).runners["pinned"].resources
    assert (resources.devices, resources.gpu) == ((2, 0), 1)


def test_item_outside_args_and_policies_on_routing_nodes(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        inputs:
          xs: {type: array}
        nodes:
          each:
            function: models:ident
            map: $inputs.xs
            args: {x: $item}
            when: {ref: $item, exists: true}
          pick: {coalesce: [$each], timeout_ms: 5}
          route: {switch: $pick, cases: {default: [tail]}}
          tail: {function: models:ident, args: {x: $route}}
        outputs:
          y: $tail
          z: $item
        """,
    )
    assert found == [
        "13:19: error: node 'each': `$item` is only valid inside the `args` of a node with `map`",
        "14:31: error: node 'pick': `timeout_ms` applies only to runner and function nodes",
        "15:36: error: node 'route': a case cannot be 'default': list those nodes under `default`",
        "19:8: error: output 'z': `$item` is only valid inside the `args` of a node with `map`",
    ]


def test_self_reference_is_a_cycle(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        nodes:
          a: {function: models:ident, args: {x: $a}}
        outputs:
          y: $a
        """,
    )
    assert found == ["7:5: error: cycle: a -> a"]


def test_invalid_input_schema_and_bad_reference_syntax(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        inputs:
          x: {type: numbr}
        nodes:
          a: {function: models:ident, args: {x: $inputs}}
        outputs:
          y: $a
        """,
    )
    assert found[0].startswith("7:15: error: input 'x': invalid JSON Schema: 'numbr' is not valid")
    assert found[1] == ("9:43: error: node 'a': '$inputs' names no input: write `$inputs.NAME`")


def test_model_runner_problems_are_reported_at_the_model_key(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        """
        runners:
          m: {model: no-such-model-here:1}
        nodes:
          a: {runner: m, method: predict, args: {x: 1}}
        outputs:
          y: $a
        """,
    )
    assert found[0].startswith("7:16: error: runner 'm': model 'no-such-model-here'")


def test_modules_of_different_graph_folders_do_not_leak(tmp_path: Path) -> None:
    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
    first = build(
        tmp_path / "one",
        """
        nodes:
          a: {function: models:ident, args: {x: 1}}
        outputs:
          y: $a
        """,
    )
    second = build(
        tmp_path / "two",
        """
        nodes:
          a: {function: models:ident, args: {x: 1}}
        outputs:
          y: $a
        """,
        models="def ident(x):\n    return 'two'\n",
    )
    assert first.nodes["a"].func is not None and second.nodes["a"].func is not None
    assert first.nodes["a"].func(5) == 5
    assert second.nodes["a"].func(5) == "two"


def test_a_module_of_a_subfolder_does_not_shadow_the_parents(tmp_path: Path) -> None:
    """``graphs/broken/models.py`` once hid ``graphs/models.py`` for later graphs."""
    (tmp_path / "sub").mkdir()
    spec = """
        nodes:
          a: {function: models:ident, args: {x: 1}}
        outputs:
          y: $a
        """
    inner = build(tmp_path / "sub", spec, models="def ident(x):\n    return 'sub'\n")
    outer = build(tmp_path, spec, models="def ident(x):\n    return 'top'\n")
    assert inner.nodes["a"].func is not None and outer.nodes["a"].func is not None
    assert (inner.nodes["a"].func(0), outer.nodes["a"].func(0)) == ("sub", "top")


def test_compile_text_resolves_modules_from_base_dir() -> None:
    text = (ROOT / "graphs" / "diamond.yaml").read_text()
    plan = compile_text(text, "inline.yaml", base_dir=ROOT / "graphs")
    assert plan.name == "diamond" and plan.nodes["a"].location.file == "inline.yaml"


@pytest.mark.parametrize(
    ("text", "source", "path"),
    [
        ("$inputs.x", "inputs", ("x",)),
        ("$r.label", "r", ("label",)),
        ("$ocr.boxes.0", "ocr", ("boxes", 0)),
        ("$item", "item", ()),
        ("$a-b_c", "a-b_c", ()),
    ],
)
def test_parse_ref(text: str, source: str, path: tuple[str | int, ...]) -> None:
    assert parse_ref(text) == Ref(source, path, text)


@pytest.mark.parametrize("text", ["$", "$1a", "$a..b", "$a.", "$ a", "$inputs"])
def test_parse_ref_rejects_malformed(text: str) -> None:
    with pytest.raises(ReferenceSyntaxError):
        parse_ref(text)
