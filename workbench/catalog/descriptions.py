"""Column descriptions of the reference tables (from retail-schema.md, the naming contract).

The assistant's planner and the schema checks read these from the catalog; a registered
table gets descriptions only when its owner supplies them.
"""

from __future__ import annotations

_REGIONS = "North, South, East, West, Central"
_CATEGORIES = "Electronics, Clothing, Home & Garden, Grocery, Sports & Outdoors, Beauty, Toys, Books"

TABLE_DESCRIPTIONS: dict[str, str] = {
    "sales": "fact table; one row per transaction line, partitioned by year, month, region",
    "products": "product dimension",
    "stores": "store dimension",
    "customers": "customer dimension (holds personal data)",
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "sales": {
        "transaction_id": "unique per row after cleaning",
        "date": "day of the sale",
        "year": "derived from date",
        "month": "1..12, derived from date",
        "region": f"region of the store: {_REGIONS}",
        "store_id": "-> stores.store_id",
        "channel": "In-Store, Online, Mobile",
        "customer_id": "-> customers.customer_id",
        "product_id": "-> products.product_id",
        "category": f"denormalised from products: {_CATEGORIES}",
        "quantity": "units, >= 1",
        "unit_price": "list price at sale time",
        "discount": "0.0 .. 0.6, fraction off",
        "revenue": "quantity * unit_price * (1 - discount); > 0 after cleaning",
        "cost": "quantity * unit cost",
        "profit": "revenue - cost (may be negative)",
        "profit_margin": "profit / revenue * 100, derived",
        "payment_method": "Card, Cash, Wallet, Gift Card",
    },
    "products": {
        "product_id": "key",
        "product_name": 'e.g. "Acme 55in 4K TV"',
        "category": _CATEGORIES,
        "subcategory": "3-6 per category (e.g. Electronics: TVs, Laptops, Phones, Audio, Accessories)",
        "brand": "4-10 per category",
        "unit_cost": "cost of one unit",
        "list_price": "list price of one unit",
    },
    "stores": {
        "store_id": "key",
        "store_name": "store name",
        "city": "city of the store",
        "state": "state of the store",
        "region": _REGIONS,
        "store_type": "Flagship, Standard, Outlet, Online",
        "opened_date": "day the store opened",
    },
    "customers": {
        "customer_id": "key",
        "customer_name": "PII",
        "email": "PII",
        "segment": "Consumer, Corporate, Small Business",
        "loyalty_tier": "Bronze, Silver, Gold, Platinum",
        "city": "home city",
        "region": f"home region: {_REGIONS}",
        "signup_date": "day the customer signed up",
    },
}

#: tables the workbench ships (everything else in the lake was registered by a user)
BUILT_IN_TABLES = frozenset(COLUMN_DESCRIPTIONS)
