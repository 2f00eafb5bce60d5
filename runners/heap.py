"""The cyclic garbage collector in a long-running process graphctl owns (the
server, a worker process, a worker host), once its start-up is over.

CPython's collector runs after every 700 new container objects, and from time to
time walks the older generations whole. A server holds the objects of its web
framework, its graphs and its models (hundreds of thousands, alive until it
exits): each walk goes through all of them while requests wait. Measured on the
diamond graph at concurrency 64 (``bench/http.py``), the collector took a quarter
of the server's CPU per request and made its p99 several times its p50.

Two settings, applied once the process is ready to serve:

- ``gc.freeze()`` moves every object alive after start-up to a permanent
  generation that collections never walk;
- the youngest generation is collected after ``YOUNG_THRESHOLD`` new objects
  instead of 700: a request's objects are freed by reference counting, so a
  young collection finds little garbage, and its cost is the objects still alive
  (the requests in flight), whatever the threshold.

What requests allocate is still collected; only reference cycles wait longer.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Collect start-up garbage once, exempt what survives from every later
    collection, and collect the young generation less often. Call it once, when
    the process is ready to serve (it changes the process's collector)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
