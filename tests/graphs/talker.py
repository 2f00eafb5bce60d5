"""A Runnable that speaks on every channel a user's code has: print(), logging at
two levels, stderr, and an exception with its traceback."""

from __future__ import annotations

import asyncio
import logging
import sys

from runners.runnable import Runnable, method

log = logging.getLogger("talker")


class Talker(Runnable):
    """``talk`` answers the text in capitals, and fails on the text ``fail``."""

    @method
    async def talk(self, text: str) -> str:
        await asyncio.sleep(0)
        if text == "fail":
            raise ValueError("cannot talk about fail")
        print(f"printed {text}")
        log.warning("warned %s", text)
        log.info("informed %s", text)
        print(f"stderr {text}", file=sys.stderr)
        return text.upper()
