"""An invoice-lines export shaped like the public "Online Retail" sample: one CSV, no amount column.

``InvoiceNo`` repeats over an invoice's lines, ``InvoiceDate`` is ``m/d/yyyy h:mm``,
``CustomerID`` is written as a float (``12346.0``) and blank for guests, and revenue is only
``Quantity * UnitPrice``. Deterministic (seeded). ``python -m tests.data.onlineretail DIR``.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
from pathlib import Path

COUNTRIES = ["United Kingdom", "France", "Germany", "EIRE", "Spain", "Netherlands"]
HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


def write_onlineretail(folder: Path, invoices: int = 500, seed: int = 5) -> Path:
    """Write ``folder/OnlineRetail.csv``; returns its path."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = [
        (f"{85000 + i}{rng.choice(['', 'A', 'B'])}", f"ITEM {i}", round(rng.uniform(0.4, 15), 2)) for i in range(120)
    ]
    rows = []
    for n in range(invoices):
        t = dt.datetime(2010, 12, 1, 8, 0) + dt.timedelta(minutes=rng.randrange(60 * 24 * 365))
        customer = rng.choice([None, *range(12346, 12496)])
        country = rng.choice(COUNTRIES)
        for _ in range(rng.randint(1, 6)):
            code, desc, price = rng.choice(items)
            when = f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}"
            who = "" if customer is None else f"{customer}.0"
            rows.append([536365 + n, code, desc, rng.randint(1, 24), when, price, who, country])
    path = folder / "OnlineRetail.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(HEADER)
        w.writerows(rows)
    return path


if __name__ == "__main__":
    write_onlineretail(Path(sys.argv[1]))
