"""The reference retail dataset's contract: table names, columns, types and vocabularies.

One module holds these so the generator, the ingest and every reader agree on names
(``/work/shared/retail-schema.md`` is the source; names there are a contract).
"""

from __future__ import annotations

import pyarrow as pa

REGIONS: tuple[str, ...] = ("North", "South", "East", "West", "Central")
CHANNELS: tuple[str, ...] = ("In-Store", "Online", "Mobile")
CATEGORIES: tuple[str, ...] = (
    "Electronics",
    "Clothing",
    "Home & Garden",
    "Grocery",
    "Sports & Outdoors",
    "Beauty",
    "Toys",
    "Books",
)
PAYMENT_METHODS: tuple[str, ...] = ("Card", "Cash", "Wallet", "Gift Card")
STORE_TYPES: tuple[str, ...] = ("Flagship", "Standard", "Outlet", "Online")
SEGMENTS: tuple[str, ...] = ("Consumer", "Corporate", "Small Business")
LOYALTY_TIERS: tuple[str, ...] = ("Bronze", "Silver", "Gold", "Platinum")

#: columns whose values must come from a closed vocabulary (normalised by the ingest)
VOCABULARY: dict[str, tuple[str, ...]] = {
    "region": REGIONS,
    "channel": CHANNELS,
    "category": CATEGORIES,
    "payment_method": PAYMENT_METHODS,
    "store_type": STORE_TYPES,
    "segment": SEGMENTS,
    "loyalty_tier": LOYALTY_TIERS,
}

SALES_LANDING = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("date", pa.date32()),
        ("region", pa.string()),
        ("store_id", pa.string()),
        ("channel", pa.string()),
        ("customer_id", pa.string()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.float64()),
        ("discount", pa.float64()),
        ("revenue", pa.float64()),
        ("cost", pa.float64()),
        ("profit", pa.float64()),
        ("payment_method", pa.string()),
    ]
)

#: the sales table in the lake (landing columns + derived year, month, profit_margin)
SALES = pa.schema(
    [
        ("transaction_id", pa.string()),
        ("date", pa.date32()),
        ("year", pa.int32()),
        ("month", pa.int32()),
        ("region", pa.string()),
        ("store_id", pa.string()),
        ("channel", pa.string()),
        ("customer_id", pa.string()),
        ("product_id", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", pa.float64()),
        ("discount", pa.float64()),
        ("revenue", pa.float64()),
        ("cost", pa.float64()),
        ("profit", pa.float64()),
        ("profit_margin", pa.float64()),
        ("payment_method", pa.string()),
    ]
)

PRODUCTS = pa.schema(
    [
        ("product_id", pa.string()),
        ("product_name", pa.string()),
        ("category", pa.string()),
        ("subcategory", pa.string()),
        ("brand", pa.string()),
        ("unit_cost", pa.float64()),
        ("list_price", pa.float64()),
    ]
)

STORES = pa.schema(
    [
        ("store_id", pa.string()),
        ("store_name", pa.string()),
        ("city", pa.string()),
        ("state", pa.string()),
        ("region", pa.string()),
        ("store_type", pa.string()),
        ("opened_date", pa.date32()),
    ]
)

CUSTOMERS = pa.schema(
    [
        ("customer_id", pa.string()),
        ("customer_name", pa.string()),
        ("email", pa.string()),
        ("segment", pa.string()),
        ("loyalty_tier", pa.string()),
        ("city", pa.string()),
        ("region", pa.string()),
        ("signup_date", pa.date32()),
    ]
)

#: lake schema per table
TABLES: dict[str, pa.Schema] = {"sales": SALES, "products": PRODUCTS, "stores": STORES, "customers": CUSTOMERS}
#: landing-file schema per table (what `generate` writes and `ingest` expects)
LANDING: dict[str, pa.Schema] = {"sales": SALES_LANDING, "products": PRODUCTS, "stores": STORES, "customers": CUSTOMERS}
#: key column per table (dedupe key)
KEYS: dict[str, str] = {
    "sales": "transaction_id",
    "products": "product_id",
    "stores": "store_id",
    "customers": "customer_id",
}
#: Delta partition columns per table
PARTITIONS: dict[str, list[str]] = {"sales": ["year", "month", "region"], "products": [], "stores": [], "customers": []}
#: personal fields tokenised by the ingest
PII_COLUMNS: dict[str, tuple[str, ...]] = {"customers": ("customer_name", "email")}
#: landing columns that may be missing/blank in a row without the row being dropped
OPTIONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    "sales": ("profit", "cost", "unit_price", "discount"),
    "products": ("product_name", "subcategory", "brand"),
    "stores": ("store_name", "city", "state", "opened_date"),
    "customers": ("customer_name", "email", "city", "signup_date", "segment", "loyalty_tier"),
}


def table_for_file(name: str) -> str | None:
    """Which table a landing file feeds, from its name (``sales-00003.csv`` -> ``sales``)."""
    base = name.rsplit("/", 1)[-1].lower()
    for table in TABLES:
        if base.startswith(table):
            return table
    return None
