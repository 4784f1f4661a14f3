"""How amounts of money read everywhere: answers, summaries, dashboard cards.

One formatter, so a number in a narrative, in the summary it cites and on a KPI card reads
the same (``$8.07M`` in all three). Compact from ten thousand up: ``$12.3K``, ``$8.07M``,
``$1.20B``; smaller amounts in full with cents (``$1,234.56``), the sign in front.
"""

from __future__ import annotations


def money(value: float) -> str:
    sign = "-" if value < 0 else ""
    v = abs(float(value))
    if v >= 1e9:
        return f"{sign}${v / 1e9:,.2f}B"
    if v >= 1e6:
        return f"{sign}${v / 1e6:,.2f}M"
    if v >= 1e4:
        return f"{sign}${v / 1e3:,.1f}K"
    return f"{sign}${v:,.2f}"
