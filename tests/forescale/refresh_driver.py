"""A server that dies in the middle of a refresh, for tests that SIGKILL it.

``python refresh_driver.py STORE_URL NOW``: a :class:`~forescale.service.Refresher` with its
default owner and the clock stopped at ``NOW`` (ISO 8601, UTC) on the store at ``STORE_URL``,
whose refit of ``web`` blocks forever. Once the run is ``running`` in the store it writes one
line, ``running <run id> <owner>``, to stdout and waits to be killed.
"""

from __future__ import annotations

import datetime as dt
import sys
import threading

from forescale.service import Refresher
from forescale.store import Store


def main(url: str, now: str) -> int:
    at = dt.datetime.fromisoformat(now)
    store = Store.open(url)
    started = threading.Event()
    never = threading.Event()

    def refit(name: str) -> int | None:
        started.set()
        never.wait()
        return None

    refresher = Refresher(refit, store, clock=lambda: at)
    run = refresher.submit("web").run
    if not started.wait(60):
        sys.exit("refresh_driver: the refit never started")
    stored = store.refresh_run(run.id)  # the refit is called once the start is committed
    if stored is None or stored.status != "running":
        sys.exit(f"refresh_driver: run {run.id} is not running in the store: {stored}")
    sys.stdout.write(f"running {run.id} {refresher.owner}\n")
    sys.stdout.flush()
    never.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
