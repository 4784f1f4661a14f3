"""A public-style retail order-lines export: three CSV files as a user would download them.

Shaped like the well-known "superstore" sample (not designed around the workbench): order
lines with US ``m/d/yyyy`` dates, column names with spaces and dashes (``Order Date``,
``Sub-Category``), 5-digit postal codes (New England ones start with 0), an order id shared
by several lines, money with cents; a returns list (``Returned``, ``Order ID``: one row per
returned order); and the regional managers (``Person``, ``Region``). Deterministic (seeded).

``python -m tests.data.orderlines DIR`` writes ``DIR/Orders.csv``, ``DIR/Returns.csv``,
``DIR/People.csv``.
"""

from __future__ import annotations

import csv
import datetime as dt
import random
import sys
from pathlib import Path

REGIONS = {
    "East": [("New York City", "New York", "10011"), ("Boston", "Massachusetts", "02134"),
             ("Philadelphia", "Pennsylvania", "19120"), ("Providence", "Rhode Island", "02906")],
    "West": [("Los Angeles", "California", "90036"), ("Seattle", "Washington", "98103"),
             ("San Francisco", "California", "94110"), ("Denver", "Colorado", "80219")],
    "Central": [("Chicago", "Illinois", "60610"), ("Houston", "Texas", "77095"),
                ("Detroit", "Michigan", "48205"), ("Dallas", "Texas", "75217")],
    "South": [("Miami", "Florida", "33142"), ("Atlanta", "Georgia", "30318"),
              ("Nashville", "Tennessee", "37211"), ("Charlotte", "North Carolina", "28205")],
}  # fmt: skip
MANAGERS = {"East": "Chuck Magee", "West": "Anna Andreadi", "Central": "Kelly Williams", "South": "Cassandra Brandow"}
PRODUCTS = {
    ("Furniture", "Chairs"): ["Hon Deluxe Chair", "Global Task Chair", "Office Star Stool"],
    ("Furniture", "Tables"): ["Bretford Table", "Hon Round Table"],
    ("Office Supplies", "Paper"): ["Easy-staple Paper", "Xerox 1967", "Ampad Notebook"],
    ("Office Supplies", "Binders"): ["Avery Binder", "Ibico Binding Covers", "GBC Binder"],
    ("Office Supplies", "Art"): ["Newell 322", "Prang Pencils"],
    ("Technology", "Phones"): ["Apple iPhone", "Cisco IP Phone", "Samsung Galaxy"],
    ("Technology", "Accessories"): ["Logitech Mouse", "Kingston USB Drive", "Plantronics Headset"],
}
PRICES = {"Chairs": 180.0, "Tables": 420.0, "Paper": 18.0, "Binders": 22.0, "Art": 9.0, "Phones": 310.0,
          "Accessories": 65.0}  # fmt: skip
SEGMENTS = ["Consumer", "Corporate", "Home Office"]
SHIP_MODES = ["Standard Class", "Second Class", "First Class", "Same Day"]
HEADER = ["Row ID", "Order ID", "Order Date", "Ship Date", "Ship Mode", "Customer ID", "Customer Name", "Segment",
          "City", "State", "Postal Code", "Region", "Product ID", "Category", "Sub-Category", "Product Name",
          "Sales", "Quantity", "Discount", "Profit"]  # fmt: skip


def _us(d: dt.date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def write_orderlines(folder: Path, orders: int = 400, seed: int = 17) -> Path:
    """Write the three CSV files into ``folder`` (created); returns ``folder``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    flat = [(cat, sub, name) for (cat, sub), names in PRODUCTS.items() for name in names]
    products = [(c, s, n, f"{c[:3].upper()}-{s[:2].upper()}-{10000000 + i * 7919}") for i, (c, s, n) in enumerate(flat)]
    letters = "ABCDEFGHJKLMNPRSTVW"
    initials = [rng.choice(letters) + rng.choice(letters) for _ in range(90)]
    customers = [(f"{ab}-{10000 + i * 15}", f"Customer {i:03d}", rng.choice(SEGMENTS)) for i, ab in enumerate(initials)]
    rows, returned = [], []
    row_id = 1
    for n in range(orders):
        day = dt.date(2022, 1, 1) + dt.timedelta(days=rng.randrange(3 * 365))
        order_id = f"{rng.choice(['CA', 'US'])}-{day.year}-{100000 + n * 37}"
        cust = rng.choice(customers)
        region = rng.choice(list(REGIONS))
        city, state, postal = rng.choice(REGIONS[region])
        mode = rng.choices(SHIP_MODES, weights=[6, 2, 2, 1])[0]
        ship = day + dt.timedelta(days={"Same Day": 0, "First Class": 2, "Second Class": 3}.get(mode, 5))
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4, 5])):
            cat, sub, name, pid = rng.choice(products)
            qty = rng.randint(1, 9)
            discount = rng.choice([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])
            sales = round(PRICES[sub] * rng.uniform(0.6, 1.4) * qty * (1 - discount), 2)
            profit = round(sales * rng.uniform(-0.25, 0.35), 2)
            rows.append([row_id, order_id, _us(day), _us(ship), mode, cust[0], cust[1], cust[2], city, state, postal,
                         region, pid, cat, sub, name, f"{sales:.2f}", qty, discount, f"{profit:.2f}"])  # fmt: skip
            row_id += 1
        if rng.random() < 0.08:
            returned.append(["Yes", order_id])
    _write(folder / "Orders.csv", HEADER, rows)
    _write(folder / "Returns.csv", ["Returned", "Order ID"], returned)
    _write(folder / "People.csv", ["Person", "Region"], [[p, r] for r, p in MANAGERS.items()])
    return folder


def _write(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


if __name__ == "__main__":
    write_orderlines(Path(sys.argv[1]))
