"""A parent process for the orphan test: starts a pool, prints its worker pids,
then waits to be killed."""

from __future__ import annotations

import asyncio
import sys

from runners import WorkerPool
from runners.supervisor import Supervisor
from tests.conftest import runner_config


async def main() -> None:
    async with WorkerPool(runner_config(workers=2)) as pool:
        sup = pool._workers
        assert isinstance(sup, Supervisor)
        pids = [w.process.pid for w in sup.workers.values() if w.process is not None]
        print(" ".join(map(str, pids)), flush=True)
        await asyncio.sleep(120)


if __name__ == "__main__":
    asyncio.run(main())
    sys.exit(0)
