"""``forescale`` in a child process with the cheap forecaster, for tests that kill it.

``FORESCALE_TEST_DIE_IN=undo`` SIGKILLs the process when forescale starts undoing a write
(the audit record already says ``undoing``)."""

from __future__ import annotations

import os
import signal
import sys

from forescale import cli
from forescale.forecaster import candidates
from tests.fakes import FAST

candidates.PRODUCT = FAST  # the App's default candidate set is looked up when it is built

if os.environ.get("FORESCALE_TEST_DIE_IN") == "undo":
    from forescale.iac_writer import target

    def _die(self: object, written: object) -> object:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    target._FileTarget.undo = _die  # type: ignore[method-assign,assignment]

sys.exit(cli.main(sys.argv[1:]))
