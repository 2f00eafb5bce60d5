"""``graphctl run``: the real console script in a subprocess."""

from __future__ import annotations

import json
import queue
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests._executor_helpers import EXAMPLES, ROOT

GRAPHCTL = Path(sys.executable).parent / "graphctl"


def graphctl(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GRAPHCTL), *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


def test_one_input_from_a_file_prints_the_outputs() -> None:
    done = graphctl("run", str(EXAMPLES / "diamond.yaml"), "--input", "@graphs/diamond.input.json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["y"]) == 10 and abs(sum(out["y"]) - 1.0) < 1e-4


def test_inline_input_and_a_bad_field() -> None:
    good = graphctl("run", "graphs/pipeline.yaml", "--input", '{"text": "great, not bad"}')
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"label": "positive", "score": 2.0}
    bad = graphctl("run", "graphs/pipeline.yaml", "--input", '{"text": 3}')
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == "graphctl: error: text: 3 is not of type 'string'"
    assert "Traceback" not in bad.stderr


def test_inputs_file_with_a_bad_line_in_the_middle(tmp_path: Path) -> None:
    lines = [
        '{"text": "I love it"}',
        '{"text": "so sad"}',
        "{not json",
        "",
        '{"text": "it is fine"}',
        '{"txt": "typo"}',
        '{"text": "great great great"}',
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out.jsonl"
    trace = tmp_path / "trace.json"
    done = graphctl(
        "run", "graphs/pipeline.yaml", "--inputs", str(source), "--output", str(output),
        "--concurrency", "3", "--trace", str(trace),
    )  # fmt: skip
    assert done.returncode == 1
    results = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r.get("label") for r in results] == [
        "positive", "negative", None, "neutral", None, "positive",
    ]  # fmt: skip
    assert results[2]["line"] == 3 and "not valid JSON" in results[2]["error"]
    assert results[4] == {"error": "txt: unknown input (expected: text)", "line": 6}
    assert "line 3: error: not valid JSON" in done.stderr
    assert "line 6: error: txt: unknown input" in done.stderr
    assert "6 requests, 2 errors" in done.stderr and "p99" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    check_trace(json.loads(trace.read_text()))


def check_trace(document: dict[str, object]) -> None:
    """Chrome trace-event JSON: complete spans with times, one row per request."""
    events = document["traceEvents"]
    assert isinstance(events, list)
    spans = [e for e in events if e["ph"] == "X"]
    assert {e["name"] for e in spans} == {"tokens", "score", "result"}
    for span in spans:
        assert isinstance(span["ts"], float | int) and isinstance(span["dur"], float | int)
        assert span["dur"] >= 0 and span["pid"] == 1 and isinstance(span["tid"], int)
    assert len({e["tid"] for e in spans}) == 4  # one row per request that passed validation
    score = next(e for e in spans if e["name"] == "score")
    assert {"queue_wait_ms", "batch_id", "batch_size", "worker"} <= set(score["args"])
    assert score["args"]["batch_size"] >= 1


def test_inputs_in_order_to_stdout_and_exit_zero() -> None:
    done = graphctl("run", "graphs/routing.yaml", "--inputs", "graphs/routing.jsonl")
    assert done.returncode == 0, done.stderr
    routes = [json.loads(line)["route"] for line in done.stdout.splitlines()]
    assert routes == ["greeting", "question", "default"]
    assert "3 requests, 0 errors" in done.stderr


TALKER = "tests/graphs/talker.yaml"
FAILED = "node 'said' (runner 'talker') failed: runner 'talker.talk': cannot talk about fail"
ERROR_LINE = json.dumps({"error": f"{FAILED} (raised ValueError)", "line": 2})


def _talk_inputs(tmp_path: Path) -> str:
    source = tmp_path / "talk.jsonl"
    source.write_text('{"text": "hi"}\n{"text": "fail"}\n')
    return str(source)


def test_worker_output_goes_to_stderr_prefixed_and_stdout_is_only_json(tmp_path: Path) -> None:
    done = graphctl("run", TALKER, "--inputs", _talk_inputs(tmp_path))
    assert done.returncode == 1
    assert done.stdout == '{"said": "HI"}\n' + ERROR_LINE + "\n"
    worker = r"runners\.worker: \[talker/worker-0\]"
    for line in (r"printed hi", r"talker: warned hi", r"stderr hi"):
        assert re.search(rf"^\S+ \S+ WARNING {worker} {line}$", done.stderr, re.M), done.stderr
    assert "informed hi" not in done.stderr  # an info record, below the default level
    raised = rf"^\S+ \S+ ERROR {worker} runners\.worker: talk raised\nTraceback "
    assert re.search(raised, done.stderr, re.M), done.stderr
    assert done.stderr.count("Traceback (most recent call last)") == 1
    assert "ValueError: cannot talk about fail" in done.stderr


def test_log_level_info_shows_a_workers_info_records(tmp_path: Path) -> None:
    done = graphctl("run", TALKER, "--input", '{"text": "hi"}', "--log-level", "info")
    assert done.returncode == 0, done.stderr
    assert done.stdout == '{"said": "HI"}\n'
    assert re.search(r" INFO runners\.worker: \[talker/worker-0\] talker: informed hi$",
                     done.stderr, re.M), done.stderr  # fmt: skip


def test_local_prints_go_to_stderr_and_stdout_is_only_json(tmp_path: Path) -> None:
    one = graphctl("run", TALKER, "--local", "--input", '{"text": "hi"}')
    assert one.returncode == 0, one.stderr
    assert one.stdout == '{"said": "HI"}\n'
    assert "printed hi" in one.stderr and "stderr hi" in one.stderr
    many = graphctl("run", TALKER, "--local", "--inputs", _talk_inputs(tmp_path))
    assert many.returncode == 1
    assert many.stdout == '{"said": "HI"}\n' + ERROR_LINE + "\n"
    assert re.search(r" ERROR runners\.local: \[talker/local\] talk raised\nTraceback ",
                     many.stderr), many.stderr  # fmt: skip
    assert many.stderr.count("Traceback (most recent call last)") == 1


CHUNKED = "tests/graphs/serve/chunked.yaml"


def _timed_lines(process: subprocess.Popen[str], timeout_s: float = 90) -> list[tuple[str, float]]:
    """Each stdout line of ``process`` with the time it arrived, read until the end;
    bounded: a reader thread, and a process killed past ``timeout_s``."""
    lines: queue.Queue[tuple[str, float] | None] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put((line.rstrip("\n"), time.monotonic()))
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    found: list[tuple[str, float]] = []
    deadline = time.monotonic() + timeout_s
    try:
        while (item := lines.get(timeout=max(0.0, deadline - time.monotonic()))) is not None:
            found.append(item)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        reader.join(timeout=30)
        assert process.stdout is not None
        process.stdout.close()
    return found


def test_a_streamed_output_prints_each_chunk_as_it_comes() -> None:
    command = [str(GRAPHCTL), "run", CHUNKED, "--input", '{"n": 6, "step_ms": 100}']
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = _timed_lines(process)
    assert process.returncode == 0
    assert [json.loads(line) for line, _ in lines[:-1]] == [
        {"output": "shouted", "chunk": f"T{i}!"} for i in range(6)
    ]
    answer = json.loads(lines[-1][0])
    assert answer == {
        "shouted": [f"T{i}!" for i in range(6)], "kept": ["T0!", "T2!", "T4!"], "count": 3,
    }  # fmt: skip
    first, end = lines[0][1], lines[-1][1]
    assert end - first >= 0.4  # printed at least 4 steps before the stream ended


def test_an_error_mid_stream_follows_the_chunks_and_exits_one() -> None:
    for local in ((), ("--local",)):
        done = graphctl(
            "run", CHUNKED, *local, "--input", '{"n": 5, "step_ms": 1, "fail_at": "t2"}'
        )
        assert done.returncode == 1
        assert done.stdout.splitlines() == [
            '{"output": "shouted", "chunk": "T0!"}',
            '{"output": "shouted", "chunk": "T1!"}',
        ]
        assert done.stderr.strip() == "graphctl: error: node 'shouted' failed: cannot shout 't2'"


def test_the_documented_streaming_run_prints_what_the_doc_shows() -> None:
    doc = (ROOT / "docs" / "graph-file.md").read_text()
    section = doc.split("### `graphctl run` prints chunks as they come", 1)[1]
    (example,) = re.findall(r"```console\n\$ graphctl (.*?)\n(.*?)```", section, re.DOTALL)[:1]
    command, shown = example
    done = graphctl(*shlex.split(command))
    assert done.returncode == 0, done.stderr
    assert done.stdout == shown
