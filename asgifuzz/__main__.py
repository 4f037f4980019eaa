"""``python -m asgifuzz``: the same as the ``asgifuzz`` command."""

from __future__ import annotations

import sys

from asgifuzz._cli.main import main

sys.exit(main())
