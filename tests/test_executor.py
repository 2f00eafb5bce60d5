"""The executor, on real graphs: compiled from YAML, real worker pools, real functions."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

import orchestrator
from orchestrator.errors import DeadlineExceeded, MethodError, NodeFailed
from orchestrator.running._trace import Trace
from runners.errors import CallTimeout, Overloaded
from tests._executor_helpers import EXAMPLES, TEST_GRAPHS, Probe, run, wait_for


def test_independent_branches_run_concurrently() -> None:
    async def main() -> tuple[float, float, dict[str, Any]]:
        async with orchestrator.load(TEST_GRAPHS / "parallel.yaml") as graph:
            await graph.run({"ms": 1, "mode": "parallel"})  # warm both pools
            start = time.perf_counter()
            out = await graph.run({"ms": 200, "mode": "parallel"})
            parallel = time.perf_counter() - start
            start = time.perf_counter()
            sequential_out = await graph.run({"ms": 200, "mode": "sequential"})
            sequential = time.perf_counter() - start
            assert sequential_out == {"a": None, "b": None, "c": 3, "d": 3}
            return parallel, sequential, out

    parallel, sequential, out = run(main())
    assert out == {"a": 1, "b": 2, "c": None, "d": None}
    # Two 200 ms calls side by side take about one call, not two (0.5 ideal).
    assert parallel / sequential < 0.8, (parallel, sequential)


def test_a_node_starts_before_an_unrelated_slow_sibling_finishes() -> None:
    probe = Probe()
    trace = Trace()

    async def main() -> dict[str, Any]:
        async with orchestrator.load(TEST_GRAPHS / "siblings.yaml") as graph:
            return await graph.run({"probe": probe}, trace=trace)

    out = run(main())
    assert out["end"] == {"slow": "slow", "blocker": "blocked", "after_fast": "fast"}
    (after_fast_end,) = probe.times("after_fast", "end")
    (slow_end,) = probe.times("slow", "end")
    assert after_fast_end < slow_end
    spans = {e["name"]: e for e in trace.events if e["ph"] == "X"}
    # The sync node blocked a thread, not the loop: the fast chain finished meanwhile.
    blocker_end = spans["blocker"]["ts"] + spans["blocker"]["dur"]
    assert spans["after_fast"]["ts"] + spans["after_fast"]["dur"] < blocker_end


def test_fail_fast_cancels_other_branches_and_drops_queued_calls() -> None:
    probe = Probe()

    async def main() -> None:
        async with orchestrator.load(TEST_GRAPHS / "failfast.yaml") as graph:
            with pytest.raises(NodeFailed) as caught:
                await graph.run({"probe": probe, "items": list(range(6))})
            error = caught.value
            assert error.node == "bad" and error.runner is None
            assert isinstance(error.cause, ValueError)
            assert "node 'bad' failed: bad input" in str(error)
            naps = graph.stats()["sleeper"].methods["nap"]
            assert naps.queue_length == 0  # the 5 queued calls left the batcher at once
            await wait_for(lambda: graph.stats()["sleeper"].methods["nap"].in_flight == 0)
            # Only the call already on the worker ran; the queued ones never reached it.
            assert graph.stats()["sleeper"].methods["nap"].batches == 1

    run(main())
    assert probe.times("slow", "cancelled"), probe.events
    assert not probe.times("slow", "end")


def test_node_timeout_fails_the_request_naming_the_node() -> None:
    async def main() -> None:
        async with orchestrator.load(TEST_GRAPHS / "failures.yaml") as graph:
            with pytest.raises(NodeFailed, match=r"node 'slow' failed.*timeout_ms=100") as caught:
                await graph.run({"probe": Probe(), "case": "timeout"})
            assert isinstance(caught.value.cause, CallTimeout)

            probe = Probe()
            with pytest.raises(NodeFailed, match="not retried"):
                await graph.run({"probe": probe, "case": "user_error"})
            assert probe.attempts == 1  # a user error is not retryable

            with pytest.raises(NodeFailed, match="runner 'exploder'") as caught:
                await graph.run({"probe": Probe(), "case": "model_error"})
            assert caught.value.runner == "exploder" and caught.value.node == "model"
            assert isinstance(caught.value.cause, MethodError)
            assert "model cannot score 7" in str(caught.value)

    run(main())


def test_retries_back_off_and_on_error_skip_and_default() -> None:
    probe = Probe()

    async def main() -> dict[str, Any]:
        async with orchestrator.load(TEST_GRAPHS / "policies.yaml") as graph:
            return await graph.run({"probe": probe})

    out = run(main())
    assert out == {
        "flaky": "ok after 3 attempts",
        "skipped": None,
        "defaulted": 42,
        "after_skip": None,  # skipped, because its input was
        "nullable": None,  # ran, with null for the skipped input
    }
    starts = probe.times("flaky", "start")
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # Each retry waits the 100 ms timeout plus a backoff of at least half of 40 ms,
    # then of 80 ms (equal jitter).
    assert gaps[0] >= 0.9 * (0.100 + 0.020), gaps
    assert gaps[1] >= 0.9 * (0.100 + 0.040), gaps


def test_a_retry_waits_at_least_the_retry_after_of_an_overload() -> None:
    probe = Probe()

    async def main() -> dict[str, Any]:
        async with orchestrator.load(TEST_GRAPHS / "retry_after.yaml") as graph:
            return await graph.run({"probe": probe, "retry_after_s": 0.3})

    assert run(main()) == {"refused": "ok after 2 attempts"}
    first, second = probe.times("overloaded", "start")
    assert second - first >= 0.3  # the policy's own backoff is 1 ms


def test_a_retry_after_past_the_deadline_fails_at_once_instead_of_waiting() -> None:
    probe = Probe()

    async def main() -> float:
        async with orchestrator.load(TEST_GRAPHS / "retry_after.yaml") as graph:
            start = time.monotonic()
            with pytest.raises(NodeFailed) as caught:
                await graph.run({"probe": probe, "retry_after_s": 60.0})
            assert isinstance(caught.value.cause, Overloaded)
            return time.monotonic() - start

    elapsed = run(main())
    assert probe.attempts == 1
    assert elapsed < 4.0  # the graph's deadline is 5 s: it was not waited for


def test_skipped_input_propagates_unless_the_node_takes_null() -> None:
    probe = Probe()
    trace = Trace()

    async def main() -> None:
        async with orchestrator.load(TEST_GRAPHS / "policies.yaml") as graph:
            await graph.run({"probe": probe}, trace=trace)

    run(main())
    status = {e["name"]: e["args"]["status"] for e in trace.events if e["ph"] == "X"}
    assert status["skipped"] == "error handled"
    assert status["after_skip"] == "skipped"
    assert status["nullable"] == "ok"


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (
            {"text": "Is it open?"},
            {"route": "question", "reply": "Good question! You asked: Is it open?", "loud": None},
        ),
        (
            {"text": "hello you", "loud": True},
            {"route": "greeting", "reply": "Hello to you too!", "loud": "HELLO TO YOU TOO!"},
        ),
        ({"text": "Ship it."}, {"route": "default", "reply": "Noted: Ship it.", "loud": None}),
    ],
)
def test_switch_when_and_default_branch(inputs: dict[str, Any], expected: dict[str, Any]) -> None:
    trace = Trace()

    async def main() -> dict[str, Any]:
        async with orchestrator.load(EXAMPLES / "routing.yaml") as graph:
            return await graph.run(inputs, trace=trace)

    assert run(main()) == expected
    ran = {e["name"] for e in trace.events if e["ph"] == "X" and e["args"]["status"] == "ok"}
    handlers = {"question": "answer", "greeting": "greet", "default": "fallback"}
    assert ran & set(handlers.values()) == {handlers[expected["route"]]}


def test_map_results_in_order_and_batched() -> None:
    items = [f"item-{i}" for i in range(20)]
    trace = Trace()

    async def main() -> tuple[dict[str, Any], Any]:
        async with orchestrator.load(TEST_GRAPHS / "batched.yaml") as graph:
            out = await graph.run({"items": items}, trace=trace)
            return out, graph.stats()["tagger"].methods["tag"]

    out, stats = run(main())
    assert [tag["x"] for tag in out["tags"]] == items
    sizes = [tag["batch"] for tag in out["tags"]]
    # All 20 items were queued at once: the worker saw full batches of 8.
    assert max(sizes) == 8 and sum(1 / size for size in sizes) <= 4
    assert stats.calls == 20 and stats.batches <= 4
    (span,) = [e for e in trace.events if e.get("name") == "tags"]
    assert span["args"]["items"] == 20 and 8 in span["args"]["batch_size"]


def test_request_deadline_cancels_pending_work() -> None:
    async def main() -> None:
        async with orchestrator.load(TEST_GRAPHS / "deadline.yaml") as graph:
            with pytest.raises(DeadlineExceeded, match="300 ms"):
                await graph.run({"items": [1, 2, 3, 4]})  # the graph's 300 ms deadline
            assert graph.stats()["sleeper"].methods["nap"].queue_length == 0
            await wait_for(lambda: graph.stats()["sleeper"].methods["nap"].in_flight == 0)
            assert await graph.run({"items": [5]}, timeout_ms=5000) == {"naps": [5]}
            with pytest.raises(DeadlineExceeded):
                await graph.run({"items": [6]}, timeout_ms=50)

    run(main())


def _chain_graph(folder: Any, length: int) -> Any:
    """A runner node, then a chain of ``length`` inline functions, the last failing
    when asked to."""
    ident = "function: exec_kit:ident, inline: true"
    fail_if = "function: exec_kit:fail_if, inline: true"
    lines = [
        "apiVersion: graphctl/v1",
        "kind: Graph",
        "metadata: {name: chain, description: a long chain of inline nodes}",
        "spec:",
        "  runners:",
        "    sleeper: {runnable: exec_kit:Sleeper, workers: 1}",
        "  inputs:",
        "    x: {type: integer}",
        "    fail: {type: boolean}",
        "  nodes:",
        "    n0: {runner: sleeper, method: nap, args: {x: $inputs.x, ms: 1}}",
        *(f"    n{i}: {{{ident}, args: {{x: $n{i - 1}}}}}" for i in range(1, length)),
        f"    last: {{{fail_if}, args: {{x: $n{length - 1}, fail: $inputs.fail}}}}",
        "  outputs:",
        "    y: $last",
    ]
    path = folder / "chain.yaml"
    path.write_text("\n".join(lines) + "\n")
    (folder / "exec_kit.py").write_text((TEST_GRAPHS / "exec_kit.py").read_text())
    return path


def test_a_long_chain_of_inline_nodes_runs_after_a_runner_node_in_constant_stack(
    tmp_path: Any,
) -> None:
    """Inline nodes run where their last input was set, without a task each: a
    chain longer than the interpreter's recursion limit still runs, and a failure
    at its end fails the request naming that node (the runner node's span is ok)."""
    path = _chain_graph(tmp_path, 2000)

    async def main() -> tuple[Any, Any]:
        async with orchestrator.load(path) as graph:
            answer = await graph.run({"x": 7, "fail": False})
            trace = Trace()
            with pytest.raises(NodeFailed) as failed:
                await graph.run({"x": 7, "fail": True}, trace=trace)
            return answer, (failed.value, trace)

    answer, (error, trace) = run(main())
    assert answer == {"y": 7}
    assert error.node == "last"
    statuses = {e["name"]: e["args"]["status"] for e in trace.events if e.get("ph") == "X"}
    assert statuses["n0"] == "ok" and statuses["last"] == "failed"
