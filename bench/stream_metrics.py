"""What measuring a stream costs, per chunk.

    python -m bench.stream_metrics

The executor's ``StreamWatch.chunk`` (``orchestrator/running/_stream_watch.py``)
for a request with no tracer (``Graph.run`` alone), and for a served request,
whose sink is the server's metrics (the chunk counter, and the first-chunk or
gap histogram). CPU microseconds per chunk, best of three runs in one process.
"""

from __future__ import annotations

import time

from bench._common import best_cpu_s, write_result
from orchestrator.running._stream_watch import StreamWatch
from orchestrator.server._metrics import Metrics

CHUNKS = 200_000


def per_chunk_us(watch: StreamWatch) -> float:
    def chunks() -> None:
        for _ in range(CHUNKS):
            watch.chunk()

    return best_cpu_s(chunks) / CHUNKS * 1e6


def main() -> None:
    untraced = per_chunk_us(StreamWatch(None, None))
    sink = Metrics(dict).node_timer("g").stream("node", "gen", "tokens", time.monotonic())
    served = per_chunk_us(StreamWatch(sink, None))
    write_result(
        "stream_metrics",
        title="Stream metrics: CPU per chunk",
        baseline="a request with no tracer",
        headers=["what", "us/chunk", "added us"],
        rows=[
            ["no tracer", round(untraced, 3), 0.0],
            ["server metrics", round(served, 3), round(served - untraced, 3)],
        ],
    )


if __name__ == "__main__":
    main()
