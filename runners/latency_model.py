"""A measured latency model of one (runner, method) and the batch-release policy it
drives: plain data and arithmetic, no clock, no loop, no I/O.

The batcher is work-conserving: a free worker takes what is queued at once. That
is right when a batch's cost grows with its size, but with a large fixed cost
(a GPU kernel launch, a 20 ms model) a worker freed a moment before its callers'
next calls arrive runs a whole batch for one item and leaves the rest to wait
behind it. ``release`` decides, from measurements only, whether holding the
queue a little longer gives the worker more items per unit of its time:

* ``BatchCostModel`` fits the run time of a batch of ``n`` items as
  ``t(n) = a + b*n`` by exponentially weighted least squares over recent
  batches (old batches fade; an outlier far from the fit is clipped first).
* ``ArrivalRate`` estimates the arrival rate ``lam`` of items from an
  exponentially weighted mean of the gaps between arrivals; a silence longer
  than that mean lowers it at once.
* ``release`` compares the items served per second of worker time when
  dispatching the ``q`` queued items now, ``q / t(q)``, with waiting ``w`` for
  ``lam*w`` more, ``(q + lam*w) / (w + t(q + lam*w))``. That ratio is monotone
  in ``w`` (it grows exactly when ``lam*a > q``), so only the longest allowed
  wait needs checking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DECAY = 0.05  # weight of the newest batch in the fit (about the last 20 batches count)
RATE_DECAY = 0.005  # weight of the newest gap in the arrival rate (about 200 arrivals)
SILENCE_GAPS = 100.0  # a silence this many mean gaps long lowers the rate at once
CLIP = 4.0  # an observation beyond CLIP residual scales from the fit is clipped to it
MIN_SPREAD = 0.25  # variance of batch sizes needed to tell a from b
MIN_GAIN = 1.05  # waiting must serve at least 5 % more items per second of worker time
MAX_WAIT_OF_A = 0.5  # never wait longer than this fraction of the fixed cost a
MIN_LOAD = 0.25  # offered load below this share of the reachable batches' capacity: no wait
PEAK_DECAY = 1e-4  # per arrival: the peak of calls outstanding forgets over ~10,000 arrivals


@dataclass(slots=True)
class BatchCostModel:
    """Online fit of ``t(n) = a + b*n`` (seconds) from (batch size, run time) pairs."""

    decay: float = DECAY
    weight: float = 0.0
    mean_n: float = 0.0
    mean_t: float = 0.0
    var_n: float = 0.0  # weighted (co)variances around the running means
    cov_nt: float = 0.0
    scale: float = 0.0  # weighted mean absolute residual, for clipping outliers
    samples: int = 0

    def observe(self, n: int, seconds: float) -> None:
        """Add one batch of ``n`` items that ran ``seconds``."""
        if self.samples:
            predicted = self.predict(n)  # by the fit before this batch: clip, then residual
            if self.samples >= 3 and self.scale > 0.0:
                bound = CLIP * max(self.scale, 0.05 * predicted)
                seconds = min(max(seconds, predicted - bound), predicted + bound)
            self.scale += self.decay * (abs(seconds - predicted) - self.scale)
        self.samples += 1
        alpha = max(self.decay, 1.0 / self.samples)  # plain means until the window fills
        dn, dt = n - self.mean_n, seconds - self.mean_t
        self.mean_n += alpha * dn
        self.mean_t += alpha * dt
        self.var_n = (1.0 - alpha) * (self.var_n + alpha * dn * dn)
        self.cov_nt = (1.0 - alpha) * (self.cov_nt + alpha * dn * dt)

    @property
    def identified(self) -> bool:
        """True once batches of different sizes were seen, so ``a`` and ``b`` differ."""
        return self.samples >= 3 and self.var_n >= MIN_SPREAD

    def coefficients(self) -> tuple[float, float]:
        """``(a, b)`` in seconds and seconds per item, both >= 0; ``(mean, 0)`` until
        identified (all the cost counted as fixed, for reporting only)."""
        if not self.identified:
            return self.mean_t, 0.0
        b = self.cov_nt / self.var_n
        a = self.mean_t - b * self.mean_n
        if b < 0.0:  # noise: no measurable per-item cost
            return self.mean_t, 0.0
        if a < 0.0:  # no measurable fixed cost
            return 0.0, self.mean_t / self.mean_n if self.mean_n > 0 else 0.0
        return a, b

    def predict(self, n: float) -> float:
        a, b = self.coefficients()
        return a + b * n


@dataclass(slots=True)
class ArrivalRate:
    """Items per second, from an exponentially weighted mean of inter-arrival gaps."""

    decay: float = RATE_DECAY
    mean_gap: float = math.inf
    last: float | None = None

    def observe(self, now: float, count: int = 1) -> None:
        """``count`` items arrived at monotonic time ``now``."""
        if self.last is not None and count > 0:
            gap = max(now - self.last, 0.0) / count
            if math.isinf(self.mean_gap):
                self.mean_gap = gap
            else:
                self.mean_gap += (1.0 - (1.0 - self.decay) ** count) * (gap - self.mean_gap)
        self.last = now

    def rate(self, now: float) -> float:
        """The current estimate. Arrivals come in bursts (a batch's callers call again
        together), so only a silence of ``SILENCE_GAPS`` mean gaps counts, as a gap."""
        if self.last is None or math.isinf(self.mean_gap):
            return 0.0
        silence = now - self.last
        gap = silence if silence > SILENCE_GAPS * self.mean_gap else self.mean_gap
        return math.inf if gap <= 0.0 else 1.0 / gap


@dataclass(slots=True)
class Outstanding:
    """A slowly fading peak of the calls in the pool (queued + in flight). Closed-loop
    callers (a graph's clients, HTTP users at a fixed concurrency) never put more calls
    in than that, so a batch fuller than its workers' share of it cannot be reached:
    waiting for one only idles the worker."""

    peak: float = 0.0

    def observe(self, calls: int, arrived: int = 1) -> None:
        """``calls`` outstanding right after ``arrived`` calls came in."""
        self.peak = max(float(calls), self.peak * (1.0 - PEAK_DECAY) ** arrived)

    def reachable(self, max_batch_size: int, workers: int) -> int:
        """The batch worth waiting for: each worker's share of the peak, at most full."""
        if workers <= 0 or self.peak <= 0.0:
            return max_batch_size
        return max(1, min(max_batch_size, math.ceil(self.peak / workers - 1e-9)))


@dataclass(frozen=True, slots=True)
class Situation:
    """What the release decision looks at, measured at ``now`` (monotonic seconds)."""

    queued: int  # items in the queue that would go in this batch
    max_batch_size: int  # the batch to fill: at most max_batch_size, at most reachable
    a: float  # fixed cost of a batch, seconds
    b: float  # cost per item, seconds
    rate: float  # arrival rate of items, per second
    held_since: float  # when a free worker first held this queue (``now`` if not yet)
    limit: float  # the earliest time a queued item must have been dispatched by
    idle_workers: int  # including the one this batch would use
    workers: int
    now: float


def release(s: Situation, *, identified: bool = True) -> float | None:
    """``None``: dispatch now. Otherwise the monotonic time to dispatch at, unless the
    batch fills first. Waits only under high load, for a material gain, never longer
    than ``a/2`` in all (from when a free worker first held the queue), and never
    past any item's limit."""
    q, m, lam = s.queued, s.max_batch_size, s.rate
    if q >= m or s.idle_workers > 1 or not identified:
        return None  # full; or another idle worker takes what comes; or nothing measured
    if not worth_holding(q, m, s.a, s.b, lam, s.workers):
        return None
    fill = (m - q) / lam
    until = min(
        s.held_since + MAX_WAIT_OF_A * s.a,
        s.now + fill,
        s.limit - (s.a + s.b * m),  # leave room to run the batch before the limit
    )
    wait = until - s.now
    if wait <= 0.0 or lam * wait < 1.0:
        return None
    if gain(q, wait, lam, s.a, s.b) < MIN_GAIN:
        return None
    return until


def worth_holding(q: int, m: int, a: float, b: float, rate: float, workers: int) -> bool:
    """The cheap half of ``release``: a fixed cost, more items arriving during it than
    are queued, and a load of at least ``MIN_LOAD`` of the full-batch capacity."""
    if a <= 0.0 or rate * a <= q:
        return False
    return rate >= MIN_LOAD * workers * m / (a + b * m)


def gain(q: int, wait: float, rate: float, a: float, b: float) -> float:
    """Items per second of worker time when waiting ``wait``, over dispatching now."""
    more = q + rate * wait
    now_rate = q / (a + b * q)
    return (more / (wait + a + b * more)) / now_rate


def hold_rate(arrived: int, held_s: float) -> float:
    """Items per second arrived while a worker held the queue: arrivals come in bursts
    (a batch's callers call again together), faster than their long-run mean."""
    return arrived / held_s if arrived > 0 and held_s > 0.0 else 0.0
