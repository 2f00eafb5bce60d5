"""``python -m orchestrator.cli``: the same as the ``graphctl`` console script."""

import sys

from orchestrator.cli import main

sys.exit(main())
