"""``python -m forescale``: the same as the ``forescale`` command."""

from __future__ import annotations

import sys

from forescale.cli import main

sys.exit(main())
