"""Runner workers on other hosts, over TCP: ``WorkerHost`` serves one Runnable
(``graphctl worker``), ``RemoteWorkers`` connects a pool to them (a runner with
``endpoints``). The frames are those of ``runners.codec`` (data only), with a
handshake proving a shared token (``runners.remote.protocol``)."""

from __future__ import annotations

from runners.remote.endpoints import RemoteWorkers
from runners.remote.host import WorkerHost
from runners.remote.protocol import PROTOCOL_VERSION, TOKEN_ENV

__all__ = ["PROTOCOL_VERSION", "TOKEN_ENV", "RemoteWorkers", "WorkerHost"]
