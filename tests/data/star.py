"""A small coffee-chain star schema, generated offline and deterministically.

Deliberately *not* retail-shaped names (orders, shops, drinks, members) so tests show the
workbench works from the registered data and a drafted model, not from built-in names.

- ``orders/year=YYYY/month=M/part-0.parquet``: the fact (hive partitions year, month)
- ``shops.parquet``, ``drinks.parquet``: dimensions in Parquet
- ``members.csv``: a CSV export with padded strings, blanks and a column name with a space
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

CITIES = ["Lisbon", "Porto", "Braga", "Faro"]
FORMATS = ["Kiosk", "Cafe", "Drive"]
FAMILIES = ["Espresso", "Tea", "Cold Brew", "Pastry"]
TIERS = ["Bean", "Roast", "Reserve"]
PAYMENTS = ["Cash", "Card", "App"]


def write_star(root: Path, orders: int = 20_000, seed: int = 3) -> Path:
    """Write the dataset under ``root`` (returned); a fixed seed gives the same files every time."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    shops = pd.DataFrame(
        {
            "shop_id": [f"S{i:03d}" for i in range(12)],
            "shop_name": [f"Shop {i}" for i in range(12)],
            "city": [CITIES[i % 4] for i in range(12)],
            "shop_format": [FORMATS[i % 3] for i in range(12)],
        }
    )
    drinks = pd.DataFrame(
        {
            "drink_id": [f"D{i:03d}" for i in range(40)],
            "drink_name": [f"Drink {i}" for i in range(40)],
            "family": [FAMILIES[i % 4] for i in range(40)],
            "list_price": np.round(rng.uniform(1.5, 6.0, 40), 2),
        }
    )
    members = pd.DataFrame(
        {
            "member_id": [f"M{i:04d}" for i in range(300)],
            "Loyalty Level": [TIERS[i % 3] for i in range(300)],
            "home_city": [CITIES[(i * 7) % 4] for i in range(300)],
            "joined": [
                (dt.date(2022, 1, 1) + dt.timedelta(days=int(d))).isoformat() for d in rng.integers(0, 700, 300)
            ],
        }
    )
    pq.write_table(pa.Table.from_pandas(shops, preserve_index=False), root / "shops.parquet")
    pq.write_table(pa.Table.from_pandas(drinks, preserve_index=False), root / "drinks.parquet")
    raw = members.copy()
    raw["Loyalty Level"] = ["  " + v.lower() + " " if i % 10 == 0 else v for i, v in enumerate(raw["Loyalty Level"])]
    raw["Loyalty Level"] = [v.strip().title() if i % 10 == 0 else v for i, v in enumerate(raw["Loyalty Level"])]
    raw.loc[raw.index % 25 == 0, "home_city"] = ""
    raw["home_city"] = [f" {c} " if i % 9 == 0 and c else c for i, c in enumerate(raw["home_city"])]
    raw.to_csv(root / "members.csv", index=False)

    days = pd.to_datetime("2023-01-01") + pd.to_timedelta(rng.integers(0, 731, orders), unit="D")
    qty = rng.integers(1, 5, orders)
    drink_idx = rng.integers(0, 40, orders)
    price = drinks["list_price"].to_numpy()[drink_idx]
    fact = pd.DataFrame(
        {
            "order_id": [f"O{i:06d}" for i in range(orders)],
            "order_date": days.date,
            "shop_id": shops["shop_id"].to_numpy()[rng.integers(0, 12, orders)],
            "drink_id": drinks["drink_id"].to_numpy()[drink_idx],
            "member_id": members["member_id"].to_numpy()[rng.integers(0, 300, orders)],
            "payment": np.array(PAYMENTS)[rng.integers(0, 3, orders)],
            "cups": qty,
            "amount": np.round(qty * price, 2),
            "tip": np.round(rng.uniform(0, 1.0, orders), 2),
        }
    )
    fact["year"] = days.year
    fact["month"] = days.month
    for (y, m), part in fact.groupby(["year", "month"]):
        folder = root / "orders" / f"year={y}" / f"month={m}"
        folder.mkdir(parents=True, exist_ok=True)
        body = part.drop(columns=["year", "month"]).reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(body, preserve_index=False), folder / "part-0.parquet")
    return root


def frames(root: Path) -> dict[str, pd.DataFrame]:
    """The same data as pandas (expected values are computed from these, independently)."""
    import duckdb

    con = duckdb.connect()
    out = {
        "orders": con.execute(
            f"SELECT * FROM read_parquet('{root}/orders/*/*/*.parquet', hive_partitioning=true)"
        ).df(),
        "shops": pd.read_parquet(root / "shops.parquet"),
        "drinks": pd.read_parquet(root / "drinks.parquet"),
        "members": pd.read_csv(root / "members.csv"),
    }
    con.close()
    return out
