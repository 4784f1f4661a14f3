"""The generated dimension tables (products, stores, customers) of the reference dataset.

Dimensions are small (thousands of rows) so they are built in one go with numpy; the sales
generator samples from them with weights that carry the dataset's "story" (heavy-tailed
product popularity and customer spend, store sizes, per-region and per-category trends).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from workbench.lake import schema as s

SUBCATEGORIES: dict[str, tuple[str, ...]] = {
    "Electronics": ("TVs", "Laptops", "Phones", "Audio", "Accessories"),
    "Clothing": ("Menswear", "Womenswear", "Kids", "Shoes", "Outerwear"),
    "Home & Garden": ("Furniture", "Kitchen", "Decor", "Garden", "Bedding", "Lighting"),
    "Grocery": ("Produce", "Dairy", "Bakery", "Pantry", "Beverages", "Snacks"),
    "Sports & Outdoors": ("Fitness", "Camping", "Cycling", "Team Sports"),
    "Beauty": ("Skincare", "Makeup", "Haircare", "Fragrance"),
    "Toys": ("Games", "Puzzles", "Dolls", "Building Sets", "Outdoor Toys"),
    "Books": ("Fiction", "Non-Fiction", "Children", "Comics"),
}
BRANDS: dict[str, tuple[str, ...]] = {
    "Electronics": ("Acme", "Voltra", "Nexon", "Sonique", "Pixelon", "Ampere"),
    "Clothing": ("Threadly", "UrbanFox", "Loomwell", "Northline", "Vela"),
    "Home & Garden": ("Hearth", "Greenway", "Casa Nova", "Oakridge", "Bloom"),
    "Grocery": ("FarmFresh", "Daily Harvest", "Golden Grain", "PureSip"),
    "Sports & Outdoors": ("Summit", "Stride", "Trailhead", "ProKit", "Apex"),
    "Beauty": ("Lumi", "Velvet", "Aura", "Petal"),
    "Toys": ("Playwise", "Brickle", "Wonderbox", "Tinker"),
    "Books": ("Penfold", "Inkwell", "Chapter One", "Folio"),
}
#: median list price per category (log-normal around it)
PRICE_MEDIAN: dict[str, float] = {
    "Electronics": 320.0,
    "Clothing": 42.0,
    "Home & Garden": 65.0,
    "Grocery": 6.5,
    "Sports & Outdoors": 55.0,
    "Beauty": 22.0,
    "Toys": 28.0,
    "Books": 16.0,
}
#: year-over-year multiplier of a category's share (some grow, some shrink)
CATEGORY_TREND: dict[str, float] = {
    "Electronics": 1.12,
    "Clothing": 0.95,
    "Home & Garden": 1.05,
    "Grocery": 1.02,
    "Sports & Outdoors": 1.09,
    "Beauty": 1.14,
    "Toys": 0.93,
    "Books": 0.88,
}
#: categories whose share jumps in Q4 (gifts)
Q4_BOOST: dict[str, float] = {"Electronics": 1.5, "Toys": 2.0, "Books": 1.2, "Beauty": 1.2}
REGION_TREND: dict[str, float] = {"North": 0.96, "South": 1.08, "East": 1.01, "West": 1.12, "Central": 0.99}
CITIES: dict[str, tuple[tuple[str, str], ...]] = {
    "North": (("Minneapolis", "MN"), ("Chicago", "IL"), ("Detroit", "MI"), ("Milwaukee", "WI"), ("Fargo", "ND")),
    "South": (("Atlanta", "GA"), ("Houston", "TX"), ("Miami", "FL"), ("Nashville", "TN"), ("Dallas", "TX")),
    "East": (("New York", "NY"), ("Boston", "MA"), ("Philadelphia", "PA"), ("Baltimore", "MD"), ("Newark", "NJ")),
    "West": (("Los Angeles", "CA"), ("Seattle", "WA"), ("Portland", "OR"), ("San Diego", "CA"), ("Phoenix", "AZ")),
    "Central": (("Denver", "CO"), ("Kansas City", "MO"), ("Omaha", "NE"), ("Oklahoma City", "OK"), ("St. Louis", "MO")),
}
FIRST_NAMES = (
    "Ava",
    "Liam",
    "Mia",
    "Noah",
    "Emma",
    "Oliver",
    "Sofia",
    "Lucas",
    "Isla",
    "Mateo",
    "Zoe",
    "Ethan",
    "Priya",
    "Wei",
    "Fatima",
    "Diego",
    "Hana",
    "Omar",
    "Grace",
    "Kofi",
)
LAST_NAMES = (
    "Smith",
    "Garcia",
    "Chen",
    "Patel",
    "Johnson",
    "Nguyen",
    "Brown",
    "Kim",
    "Lopez",
    "Müller",
    "Okafor",
    "Rossi",
    "Silva",
    "Khan",
    "Dubois",
    "Novak",
    "Tanaka",
    "Cohen",
    "Walker",
    "Ivanova",
)

N_PRODUCTS = 2000
N_STORES = 120
MAX_CUSTOMERS = 50_000


def n_customers_for(rows: int) -> int:
    """Customers scale with the sales rows (about one per 10 rows) but stay between 500 and 50k."""
    return int(min(MAX_CUSTOMERS, max(500, rows // 10)))


@dataclass
class Dimensions:
    """Dimension tables plus the sampling weights the sales generator needs."""

    products: pa.Table
    stores: pa.Table
    customers: pa.Table
    product_category: np.ndarray  # category index per product
    product_price: np.ndarray
    product_cost: np.ndarray
    product_popularity: np.ndarray
    store_region: np.ndarray  # region index per store
    store_size: np.ndarray
    store_online: np.ndarray
    customer_weight: np.ndarray


def build_dimensions(seed: int, rows: int) -> Dimensions:
    """Products, stores and customers for ``rows`` sales rows; the same seed gives the same tables.

    Built in passes that draw from one generator in a fixed order (products, stores,
    customers, customer weights): reordering them would change every generated lake.
    """
    rng = np.random.default_rng([seed, 0xD1])
    products, p_cat, price, cost, popularity = _products(rng)
    stores, st_region, st_size, st_type = _stores(rng)
    customers, n_cust = _customers(rng, rows)
    return Dimensions(
        products=products,
        stores=stores,
        customers=customers,
        product_category=p_cat,
        product_price=price,
        product_cost=cost,
        product_popularity=popularity,
        store_region=st_region,
        store_size=st_size,
        store_online=st_type == s.STORE_TYPES.index("Online"),
        customer_weight=rng.pareto(1.3, n_cust) + 0.05,
    )


def _products(rng: np.random.Generator) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    cats = np.array(s.CATEGORIES, dtype=object)

    # products: heavy-tailed popularity (Zipf-like over a random rank)
    p_cat = rng.integers(0, len(s.CATEGORIES), N_PRODUCTS)
    sub = np.array([rng.choice(SUBCATEGORIES[cats[c]]) for c in p_cat], dtype=object)
    brand = np.array([rng.choice(BRANDS[cats[c]]) for c in p_cat], dtype=object)
    median = np.array([PRICE_MEDIAN[cats[c]] for c in p_cat])
    price = np.round(median * rng.lognormal(0.0, 0.45, N_PRODUCTS), 2).clip(0.5)
    cost = np.round(price * rng.uniform(0.45, 0.75, N_PRODUCTS), 2)
    rank = rng.permutation(N_PRODUCTS) + 1
    popularity = 1.0 / rank**1.1
    pids = np.array([f"P{i:05d}" for i in range(1, N_PRODUCTS + 1)], dtype=object)
    names = [f"{b} {sc} {i % 1000:03d}" for i, (b, sc) in enumerate(zip(brand, sub, strict=True))]
    products = pa.table(
        {
            "product_id": pa.array(pids, pa.string()),
            "product_name": pa.array(names, pa.string()),
            "category": pa.array(cats[p_cat], pa.string()),
            "subcategory": pa.array(sub, pa.string()),
            "brand": pa.array(brand, pa.string()),
            "unit_cost": pa.array(cost),
            "list_price": pa.array(price),
        },
        schema=s.PRODUCTS,
    )
    return products, p_cat, price, cost, popularity


def _stores(rng: np.random.Generator) -> tuple[pa.Table, np.ndarray, np.ndarray, np.ndarray]:
    # stores: spread over the regions, a few online stores, sizes by type
    st_region = np.arange(N_STORES) % len(s.REGIONS)
    st_type = rng.choice(len(s.STORE_TYPES), N_STORES, p=[0.1, 0.6, 0.2, 0.1])
    size_by_type = np.array([3.0, 1.0, 0.8, 2.5])
    st_size = size_by_type[st_type] * rng.lognormal(0.0, 0.3, N_STORES)
    city_state = [CITIES[s.REGIONS[r]][rng.integers(0, 5)] for r in st_region]
    regions = np.array(s.REGIONS, dtype=object)[st_region].copy()
    # dirt: a few padded / mixed-case regions for the ingest to normalise
    for i in rng.choice(N_STORES, 4, replace=False):
        regions[i] = f" {regions[i].upper()} "
    stores = pa.table(
        {
            "store_id": pa.array([f"S{i:04d}" for i in range(1, N_STORES + 1)], pa.string()),
            "store_name": pa.array(
                [f"{c} {s.STORE_TYPES[t]} #{i}" for i, ((c, _), t) in enumerate(zip(city_state, st_type, strict=True))],
                pa.string(),
            ),
            "city": pa.array([c for c, _ in city_state], pa.string()),
            "state": pa.array([st for _, st in city_state], pa.string()),
            "region": pa.array(regions, pa.string()),
            "store_type": pa.array(np.array(s.STORE_TYPES, dtype=object)[st_type], pa.string()),
            "opened_date": pa.array(np.datetime64("2005-01-01") + rng.integers(0, 6000, N_STORES), pa.date32()),
        },
        schema=s.STORES,
    )
    return stores, st_region, st_size, st_type


def _customers(rng: np.random.Generator, rows: int) -> tuple[pa.Table, int]:
    # customers: heavy-tailed spend (Pareto weights); built column-wise (50k rows), with the
    # random draws in the same order as always so a seed gives the same customers
    n_cust = n_customers_for(rows)
    first = np.array(FIRST_NAMES, dtype=object)[rng.integers(0, len(FIRST_NAMES), n_cust)]
    last = np.array(LAST_NAMES, dtype=object)[rng.integers(0, len(LAST_NAMES), n_cust)]
    c_region = rng.integers(0, len(s.REGIONS), n_cust)
    number = pc.cast(pa.array(np.arange(1, n_cust + 1)), pa.string())
    cids = pc.binary_join_element_wise("C", pc.utf8_lpad(number, 6, "0"), "")
    first_a, last_a = pa.array(first, pa.string()), pa.array(last, pa.string())
    emails = pc.binary_join_element_wise(
        pc.utf8_lower(first_a),
        ".",
        pc.utf8_lower(last_a),
        pc.cast(pa.array(np.arange(n_cust)), pa.string()),
        "@example.com",
        "",
    )
    segment = np.array(s.SEGMENTS, dtype=object)[rng.choice(3, n_cust, p=[0.7, 0.18, 0.12])]
    tier = np.array(s.LOYALTY_TIERS, dtype=object)[rng.choice(4, n_cust, p=[0.5, 0.3, 0.15, 0.05])]
    city_names = np.array([[c for c, _ in CITIES[r]] for r in s.REGIONS], dtype=object)
    city = city_names[c_region, rng.integers(0, 5, n_cust)]
    customers = pa.table(
        {
            "customer_id": cids,
            "customer_name": pc.binary_join_element_wise(first_a, last_a, " "),
            "email": emails,
            "segment": pa.array(segment),
            "loyalty_tier": pa.array(tier),
            "city": pa.array(city, pa.string()),
            "region": pa.array(np.array(s.REGIONS, dtype=object)[c_region], pa.string()),
            "signup_date": pa.array(np.datetime64("2015-01-01") + rng.integers(0, 3600, n_cust), pa.date32()),
        },
        schema=s.CUSTOMERS,
    )
    # dirt: a few exact duplicate customer rows
    dup = rng.choice(n_cust, max(1, n_cust // 1000), replace=False)
    customers = pa.concat_tables([customers, customers.take(pa.array(dup))])
    return customers, n_cust
