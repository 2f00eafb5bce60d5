"""graphctl's installed version, as ``graphctl --version`` and the OIP server
metadata report it."""

from __future__ import annotations

import functools
from importlib.metadata import PackageNotFoundError, version


@functools.cache  # asked per request by the OIP metadata route; it never changes
def graphctl_version() -> str:
    """The installed distribution's version, or ``unknown`` when run from a source tree."""
    try:
        return version("graphctl")
    except PackageNotFoundError:
        return "unknown"
