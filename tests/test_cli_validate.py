"""The real ``graphctl`` console script: exit codes, ``FILE:LINE:COL`` diagnostics on
stderr, ``FILE: ok`` on stdout, and never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GRAPHCTL = str(Path(sys.executable).parent / "graphctl")
BROKEN = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "graphs" / "broken").glob("*.yaml"))

# One line per broken graph: the exact diagnostic `graphctl validate` must print.
EXPECTED = {
    "bad_arguments": [
        "12:7: error: node 'total': missing argument 'a' of models:add",
        "13:9: error: node 'total': models:add takes no argument 'aa' (did you mean 'a'?)",
    ],
    "bad_init": [
        "10:14: error: runner 'scorer': models:Scorer.__init__ takes no 'gian'"
        " (did you mean 'gain'?)"
    ],
    "billion_laughs": [
        "20:10: error: YAML aliases copy more than 100000 values, here at *e: aliases of"
        " aliases multiply; write the repeated values out or nest fewer aliases"
    ],
    "cycle": ["10:5: error: cycle: a -> b -> c -> a"],
    "dangling_reference": [
        "11:53: error: node 'post': `$prre` refers to no node 'prre' (did you mean 'pre'?)"
    ],
    "duplicate_key": ["11:5: error: duplicate key 'pre' (first written at line 10, column 5)"],
    "import_error": [
        "10:21: error: node 'pre': cannot import 'preprocessing:normalize':"
        " ModuleNotFoundError: No module named 'preprocessing'"
    ],
    "invalid_yaml": ["6:5: error: invalid YAML: expected ',' or '}', but got ':'"],
    "item_into_concatenation": [
        "13:56: error: node 'score': scorer.predict concatenates calls along batch_dim 0,"
        " but input 'x' (shape [64]) has no batch dimension there: declare it as -1"
        " (e.g. shape [-1, 64]), or, if the method takes one item per call, declare"
        " @method(batchable=True, stack=True) (or `stack: true` in the runner's batching)"
    ],
    "item_outside_map": [
        "10:50: error: node 'each': `$item` is only valid inside the `args` of a node with `map`"
    ],
    "missing_method_key": ["12:5: error: node 'score': missing required key 'method'"],
    "not_a_method": [
        "10:37: error: node 'score': models:Scorer.reset is not a runner method:"
        " decorate it with @method"
    ],
    "not_runnable": [
        "8:24: error: runner 'scorer': 'models:normalize' is not a subclass of runners.Runnable"
    ],
    "switch_unknown_branch": [
        "14:17: error: node 'route': a case routes to no node 'smal_path'"
        " (did you mean 'small_path'?)"
    ],
    "tensor_mismatch": [
        "13:37: error: output 'echo': input 'x' cannot be this tensor:"
        " dtype float32 does not match float64"
    ],
    "unknown_dtype": [
        "8:25: error: input 'x': `tensor.dtype`: 'flaot32' is not one of 'bool', 'int8',"
        " 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'float16',"
        " 'float32', 'float64' (did you mean 'float32'?)"
    ],
    "unknown_key": [
        "13:7: error: node 'pre': unknown key 'timout_ms' (did you mean 'timeout_ms'?)"
    ],
    "unknown_method": [
        "12:37: error: node 'score': models:Scorer has no @method 'predcit'"
        " (did you mean 'predict'?)"
    ],
    "unknown_runner": [
        "12:21: error: node 'score': unknown runner 'scorr' (did you mean 'scorer'?)"
    ],
    "wrong_api_version": ["3:13: error: apiVersion must be 'graphctl/v1', got 'graphctl/v2'"],
    "wrong_kind": ["4:7: error: kind must be 'Graph', got 'Pipeline'"],
}


def graphctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [GRAPHCTL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def all_broken() -> subprocess.CompletedProcess[str]:
    """One run over every broken graph (starting the CLI once per file is slow)."""
    return graphctl("validate", *BROKEN)


def test_every_broken_graph_has_an_expectation() -> None:
    assert sorted(Path(p).stem for p in BROKEN) == sorted(EXPECTED)
    assert len(BROKEN) >= 12


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_broken_graph_reports_exact_position_and_message(
    stem: str, all_broken: subprocess.CompletedProcess[str]
) -> None:
    errors = [
        line.split(":", 1)[1]
        for line in all_broken.stderr.splitlines()
        if line.startswith(f"graphs/broken/{stem}.yaml:") and ": error: " in line
    ]
    assert errors == EXPECTED[stem]


def test_broken_graphs_fail_each_and_print_no_traceback(
    all_broken: subprocess.CompletedProcess[str],
) -> None:
    assert all_broken.returncode == 1
    assert all_broken.stdout == ""
    assert "Traceback" not in all_broken.stderr
    for file in BROKEN:
        assert f"{file}: " in all_broken.stderr  # each file's summary
        assert f"{file}: ok" not in all_broken.stdout


def test_the_alias_limit_doc_shows_the_real_error(
    all_broken: subprocess.CompletedProcess[str],
) -> None:
    doc = (ROOT / "docs" / "graph-file.md").read_text()
    (shown,) = [line for line in all_broken.stderr.splitlines() if "billion_laughs.yaml:20" in line]
    assert f"\n{shown}\n" in doc


def test_valid_graph_exits_zero_and_says_ok() -> None:
    result = graphctl("validate", "graphs/diamond.yaml")
    assert (result.returncode, result.stdout, result.stderr) == (0, "graphs/diamond.yaml: ok\n", "")


def test_one_broken_file_among_valid_ones_fails_the_run() -> None:
    result = graphctl("validate", "graphs/diamond.yaml", "graphs/broken/cycle.yaml")
    assert result.returncode == 1
    assert result.stdout == "graphs/diamond.yaml: ok\n"
    assert result.stderr.splitlines() == [
        "graphs/broken/cycle.yaml:10:5: error: cycle: a -> b -> c -> a",
        "graphs/broken/cycle.yaml: 1 error",
    ]


def test_warnings_do_not_fail_validation(tmp_path: Path) -> None:
    graph = (ROOT / "graphs" / "diamond.yaml").read_text()
    graph = graph.replace(
        "  outputs:\n", "    spare: {function: models:normalize, args: {x: $pre}}\n  outputs:\n"
    )
    (tmp_path / "models.py").write_text((ROOT / "graphs" / "models.py").read_text())
    (tmp_path / "g.yaml").write_text(graph)
    result = graphctl("validate", str(tmp_path / "g.yaml"))
    assert result.returncode == 0
    assert (
        result.stderr
        == f"{tmp_path / 'g.yaml'}:25:5: warning: node 'spare' is not used by any node or output\n"
    )


def test_missing_file_is_an_error_not_a_traceback() -> None:
    result = graphctl("validate", "graphs/nope.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith(
        "graphs/nope.yaml:1:1: error: cannot read the file: No such file or directory"
    )
    assert "Traceback" not in result.stderr


def test_graph_mermaid_shows_inputs_runners_and_outputs() -> None:
    result = graphctl("graph", "graphs/diamond.yaml", "--format", "mermaid")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  v0(["input x<br/>float32[64]"])' in lines
    assert '  v2[["a<br/>mlp_a.predict<br/>max_batch_size 32"]]' in lines
    assert '  v5(["output y<br/>float32[10]"])' in lines
    assert "  v4 --> v5" in lines


def test_graph_dot_is_a_digraph() -> None:
    result = graphctl("graph", "graphs/diamond.yaml", "--format", "dot")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('digraph "diamond" {\n')
    assert '  "node:pre" -> "node:a";' in result.stdout
    assert result.stdout.rstrip().endswith("}")


def test_graph_of_a_broken_file_prints_diagnostics() -> None:
    result = graphctl("graph", "graphs/broken/cycle.yaml")
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == "graphs/broken/cycle.yaml:10:5: error: cycle: a -> b -> c -> a\n"


def test_schema_prints_the_schema_file() -> None:
    result = graphctl("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads((ROOT / "schemas/graph.schema.json").read_text())
