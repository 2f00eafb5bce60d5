"""A ``runners.transport.WorkerEvents`` that records what workers report, for
driving a worker or a supervisor without a pool."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runners.transport import Reply, Worker


@dataclass
class RecordedEvents:
    ready: list[Worker] = field(default_factory=list)
    replies: list[tuple[Worker, Any]] = field(default_factory=list)
    lost: list[Worker] = field(default_factory=list)
    gave_up: int = 0

    def on_ready(self, worker: Worker) -> None:
        self.ready.append(worker)

    def on_reply(self, worker: Worker, reply: Reply) -> None:
        self.replies.append((worker, reply))

    def on_lost(self, worker: Worker) -> None:
        self.lost.append(worker)

    def on_gave_up(self) -> None:
        self.gave_up += 1
