"""What each column of a profiled table is: the grain-aware reading a drafted model is built on.

Why roles before metrics: the numbers a user's table holds are not all measures. A postal
code, an order number or a phone number is numeric and summing it is nonsense; an order id
repeated over order lines is the table's *grouping* entity, and "orders" means its distinct
count, "sales per order" the total over that count (not the average per row). Roles come
from three independent signals, each recorded as the reason shown by ``model draft``:

- the name: id/key/code/number words, postal codes and phone numbers (``l_orderkey``,
  ``Order ID`` -> ``order_id``, ``postal_code``), with short table prefixes (``l_``) ignored;
- uniqueness: a column unique over the rows is a key (the row's identity);
- value shape: text that mixes digits with letters and dashes at high cardinality
  (``CA-2016-152156``), or digit strings kept as text for their leading zeros.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workbench.lake.types import date_format

#: a column with more distinct values than this (and repeats) groups rows into entities
ENTITY_MIN_DISTINCT = 20
#: text columns with at most this many distinct values are categories with a vocabulary
MAX_CATEGORY_VALUES = 50

ID_WORDS = frozenset(
    {"id", "sk", "key", "code", "no", "num", "number", "nr", "uuid", "guid", "sku", "ean", "upc", "isbn"}
)
_PLACE_CODES = frozenset({"zip", "zipcode", "postal", "postcode", "postalcode", "phone", "tel", "telephone", "fax"})
_TIME_PARTS = frozenset({"year", "month", "quarter", "week", "day", "weekday", "hour", "yr", "mon"})
_AVERAGED = re.compile(r"(price|rate|pct|percent|ratio|score|age|discount|margin|avg|average|mean|temperature|tax)")
_SUMMED = re.compile(r"(total|extended|amount|sales|revenue|value|subtotal|gross|net)")
_MONEY = re.compile(
    r"(price|amount|amt|sales|revenue|cost|profit|value|total|fee|charge|spend|income|balance|bal|paid|"
    r"payment|refund|tip|wage|salary|budget|margin)"
)
_ABBREVIATIONS = {
    "cust": "customer",
    "supp": "supplier",
    "prod": "product",
    "emp": "employee",
    "acct": "account",
    "qty": "quantity",
    "addr": "address",
    "cat": "category",
    "dept": "department",
    "mgr": "manager",
    "mfgr": "manufacturer",
    "ext": "extended",
    "moy": "month",
    "qoy": "quarter",
    "dow": "weekday",
    "amt": "amount",
    "manufact": "manufacturer",
}
#: words a compound column name (``shipmode``, ``orderpriority``) is split into, longest first
_WORDS = sorted(
    [
        "order",
        "orders",
        "line",
        "item",
        "items",
        "ship",
        "shipping",
        "mode",
        "flag",
        "return",
        "returns",
        "status",
        "priority",
        "total",
        "price",
        "extended",
        "discount",
        "tax",
        "quantity",
        "commit",
        "receipt",
        "instruct",
        "date",
        "time",
        "customer",
        "supplier",
        "part",
        "product",
        "nation",
        "region",
        "market",
        "segment",
        "account",
        "balance",
        "supply",
        "cost",
        "available",
        "comment",
        "clerk",
        "brand",
        "type",
        "size",
        "container",
        "retail",
        "name",
        "phone",
        "address",
        "key",
        "number",
        "sales",
        "store",
        "stores",
        "category",
        "sub",
        "unit",
        "units",
        "sold",
        "list",
        "wholesale",
        "net",
        "paid",
        "profit",
        "amount",
        "city",
        "state",
        "country",
        "postal",
        "code",
        "zip",
        "manager",
        "first",
        "last",
        "promo",
        "channel",
        "web",
        "catalog",
        "call",
        "center",
        "warehouse",
        "item",
        "class",
        "manufact",
        "household",
        "demo",
        "income",
        "band",
        "education",
        "marital",
        "gender",
        "credit",
        "rating",
        "dependent",
        "count",
        "vehicle",
        "birth",
        "month",
        "year",
        "day",
        "week",
        "quarter",
        "level",
        "loyalty",
        "family",
        "format",
        "payment",
        "member",
        "drink",
        "shop",
        "cups",
        "tip",
        "ticket",
        "basket",
        "invoice",
        "transaction",
        "session",
        "visit",
        "cart",
        "shipment",
        "trip",
        "booking",
    ],
    key=len,
    reverse=True,
)


@dataclass
class Role:
    """One column's part in the model, and why (shown by ``workbench model draft``)."""

    column: str
    kind: str  # key | entity | identifier | measure | time | category | text | flag | time_part
    why: str
    entity: str | None = None
    money: bool = False
    averaged: bool = False
    fraction: bool = False
    values: list[Any] = field(default_factory=list)
    #: strptime format of a date column stored as text
    date_format: str | None = None


def tokens(name: str) -> list[str]:
    """Lower-case words of a column name without a short table prefix (``l_orderkey`` -> order, key)."""
    parts = [p for p in re.split(r"[^0-9a-zA-Z]+", name.lower()) if p]
    if len(parts) > 1 and len(parts[0]) <= 2 and parts[0] not in ID_WORDS:
        parts = parts[1:]
    out: list[str] = []
    for p in parts:
        out += split_compound(p)
    return [_ABBREVIATIONS.get(t, t) for t in out]


def split_compound(word: str) -> list[str]:
    """``orderkey`` -> order, key; ``shipmode`` -> ship, mode (a word it cannot split stays whole)."""
    for head in _WORDS:
        if word.startswith(head) and len(word) > len(head):
            rest = split_compound(word[len(head) :])
            if all(r in _WORDS or r in ID_WORDS or r in _ABBREVIATIONS for r in rest):
                return [head, *rest]
    if word.endswith(("id", "key")) and len(word) > 3 and word not in _WORDS:
        cut = 2 if word.endswith("id") else 3
        return [*split_compound(word[:-cut]), word[-cut:]]
    return [word]


def time_part(name: str) -> str | None:
    """``year``/``month``/``quarter`` when the column is exactly that part (``d_moy`` is the month)."""
    toks = tokens(name)
    return toks[0] if len(toks) == 1 and toks[0] in ("year", "month", "quarter") else None


def known_words(phrase: str) -> bool:
    """Every word of ``phrase`` is an everyday business word (not ``cdemo``, ``hdemo``)."""
    toks = phrase.split()
    return bool(toks) and all(t in _WORDS or t in _ABBREVIATIONS.values() for t in toks)


def words(name: str) -> str:
    """A column's name as words for synonyms (``l_shipmode`` -> ``ship mode``)."""
    return " ".join(tokens(name))


def entity_of(name: str) -> str:
    """The thing an id column counts (``order_id`` -> order, ``o_custkey`` -> customer)."""
    kept = [t for t in tokens(name) if t not in ID_WORDS]
    return " ".join(kept) or name


def _is_numeric(t: str) -> bool:
    return t.upper().startswith(("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINY", "USMALL", "UINT"))


def _is_float(t: str) -> bool:
    return t.upper().startswith(("FLOAT", "DOUBLE", "REAL", "DECIMAL"))


def _is_text(t: str) -> bool:
    return t.upper().startswith(("VARCHAR", "STRING", "TEXT"))


def _is_date(t: str) -> bool:
    return t.upper().startswith(("DATE", "TIMESTAMP"))


def _id_by_name(name: str) -> str | None:
    toks = tokens(name)
    if toks and toks[-1] in ID_WORDS:
        return f"its name ends in {toks[-1]!r}"
    if set(toks) & _PLACE_CODES:
        return f"its name says {sorted(set(toks) & _PLACE_CODES)[0]} (a code, never a quantity)"
    return None


def _id_by_shape(c: dict[str, Any], rows: int) -> str | None:
    sample = [str(v) for v in (c.get("sample") or [c.get("min"), c.get("max")]) if v is not None]
    if not _is_text(c["type"]) or not sample:
        return None
    if all(re.fullmatch(r"0\d+", v) or v.isdigit() for v in sample) and any(v.startswith("0") for v in sample):
        return "digits with leading zeros (a code)"
    coded = all(re.fullmatch(r"[A-Za-z]{0,6}[-_/]?\d[\dA-Za-z]*([-_/][\dA-Za-z]+)*", v) for v in sample)
    if coded and c["distinct"] > MAX_CATEGORY_VALUES and any(ch.isdigit() for ch in sample[0]):
        return "values shaped like codes (letters, digits and dashes)"
    return None


def classify(profile: dict[str, Any]) -> dict[str, Role]:
    """The role of every column of ``profile`` (a stored table profile)."""
    rows = int(profile["rows"])
    return {c["name"]: classify_column(c, rows) for c in profile["columns"]}


def classify_column(c: dict[str, Any], rows: int) -> Role:
    """One column's role: the first rule that holds, in the order the module docstring gives."""
    name, t = c["name"], c["type"]
    if _is_date(t):
        return Role(name, "time", "a date column")
    fmt = _text_date(c)
    if fmt:
        return Role(
            name, "time", f"dates stored as text ({fmt}); read with STRPTIME, no re-registering", date_format=fmt
        )
    if t.upper().startswith("BOOL"):
        return Role(name, "flag", "true/false values")
    if name.lower() in _TIME_PARTS or (tokens(name) and tokens(name)[-1] in _TIME_PARTS and _is_numeric(t)):
        return Role(name, "time_part", "a part of a date")
    reason = _id_by_name(name) or _id_by_shape(c, rows)
    if c.get("key") and (reason or not _is_float(t)):
        return Role(name, "key", f"unique over all {rows:,} rows" + (f"; {reason}" if reason else ""))
    if reason:
        return _identifier(c, rows, reason)
    if _is_numeric(t) or _is_float(t):
        return _measure(c)
    if _is_text(t) and _labels(c.get("values")):
        return Role(name, "category", f"text with {len(c['values'])} distinct values", values=c["values"])
    if _is_text(t) and c.get("values") is not None:
        return Role(name, "text", "one value only, or sentences rather than labels")
    return Role(name, "text", f"text with {c['distinct']:,} distinct values (free text or names)")


def _text_date(c: dict[str, Any]) -> str | None:
    """The format of a text column whose every sampled value is a date (``3/14/2024``)."""
    if not _is_text(c["type"]):
        return None
    sample = [str(v) for v in (c.get("values") or c.get("sample") or []) if v is not None]
    return date_format(sample) if sample else None


def _labels(values: list[Any] | None) -> bool:
    """Values worth a dimension: a few short labels (one value alone or sentences are not)."""
    if values is None or not 2 <= len(values) <= MAX_CATEGORY_VALUES:
        return False
    return max(len(str(v)) for v in values) <= 40


def _identifier(c: dict[str, Any], rows: int, reason: str) -> Role:
    name, distinct = c["name"], int(c["distinct"])
    place = bool(set(tokens(name)) & _PLACE_CODES)
    timed = bool(set(tokens(name)) & {"date", "time", "day"})  # ss_sold_date_sk: a date, not an entity
    if not place and not timed and ENTITY_MIN_DISTINCT < distinct < rows:
        why = f"{reason}; about {distinct:,} distinct values repeat over {rows:,} rows, so it groups rows"
        return Role(name, "entity", why, entity=entity_of(name))
    if c.get("values") is not None and len(c["values"]) <= MAX_CATEGORY_VALUES and _is_text(c["type"]):
        return Role(name, "category", f"{reason}; {len(c['values'])} distinct values", values=c["values"])
    return Role(name, "identifier", reason)


def _measure(c: dict[str, Any]) -> Role:
    name = c["name"]
    low = "_".join(tokens(name))
    hi = c.get("max")
    lo = c.get("min")
    fraction = isinstance(hi, (int, float)) and isinstance(lo, (int, float)) and lo >= 0 and hi <= 1
    averaged = bool(_AVERAGED.search(low)) and not _SUMMED.search(low)
    money = bool(_MONEY.search(low)) and not fraction
    kind = "averaged (a rate or unit value)" if averaged else "summed (an amount)"
    return Role(
        name, "measure", f"numbers, {kind}" + (", money" if money else ""), money=money, averaged=averaged,
        fraction=fraction,
    )  # fmt: skip
