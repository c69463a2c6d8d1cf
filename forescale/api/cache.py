"""A small LRU of rendered responses (``GET /v1/services/{name}/forecast``)."""

from __future__ import annotations

import collections
import threading
from typing import Any

# A rendered response: body bytes, media type, headers.
Rendered = tuple[bytes, str, dict[str, str]]


class ResponseCache:
    """A small LRU of rendered responses, keyed by (service, run id, query). Thread-safe:
    misses are rendered in the thread pool."""

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self.items: collections.OrderedDict[Any, Rendered] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: Any) -> Rendered | None:
        with self.lock:
            value = self.items.get(key)
            if value is not None:
                self.items.move_to_end(key)
            return value

    def put(self, key: Any, value: Rendered) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.items.clear()
