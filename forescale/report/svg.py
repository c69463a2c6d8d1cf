"""One matplotlib figure as an inline, deterministic ``<svg>`` element (for HTML reports).

matplotlib is imported on first use (the CLI's ``--help`` and the API do not pay for it)
and always with the non-interactive Agg backend. A fixed hash salt and no ``Date``
metadata make the element's ids, and so the page, identical from run to run.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

__all__ = ["figure_svg"]


def figure_svg(draw: Callable[[Any, Any], None], *, salt: str, size: tuple[float, float]) -> str:
    """Run ``draw(fig, ax)`` on a fresh ``size``-inch figure (100 dpi) and return it as an
    ``<svg>`` element; ``salt`` seeds the element ids."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # parse_math off: a label is what the user wrote ("Sale: $10 off, $5 coupons" is no
    # mathtext, and matplotlib refused to draw it)
    with plt.rc_context({"svg.hashsalt": salt, "text.parse_math": False}):
        fig, ax = plt.subplots(figsize=size, dpi=100)
        try:
            draw(fig, ax)
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]
