"""Generate the reference retail dataset as landing files (CSV or Parquet).

Why it is built this way: 100M rows must never need more than a few GB, so sales are made
chunk by chunk (one file per ``chunk_rows``, default 1M) with vectorised numpy/pyarrow, each
chunk a Dask delayed task seeded by ``(seed, chunk index)`` so output is deterministic for a
seed regardless of how many chunks run at once. Only a window of ``workers`` chunks is in
memory at a time.

The data tells stories analysts can find (see retail-schema.md): Q4 peak, a late-November
spike, quiet January/February, weekend lift; per-category and per-region trends; channel
mix moving to Online/Mobile; promotions lifting quantity and cutting margin; heavy-tailed
product popularity and customer spend. It also carries dirt for the ingest to clean:
~0.5% exact and near-duplicate transactions (same id, padded or lower-cased), ~0.3% rows
with revenue <= 0, ~0.2% missing payment methods, ~0.1% malformed quantities and dates,
and a few percent padded / mixed-case category, region and channel strings.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workbench.errors import ConfigError
from workbench.lake import schema as s
from workbench.lake.dimensions import (
    CATEGORY_TREND,
    Q4_BOOST,
    REGION_TREND,
    Dimensions,
    build_dimensions,
)
from workbench.lake.storage import filesystem_for

Format = Literal["csv", "parquet"]

DEFAULT_START = dt.date(2022, 1, 1)
DEFAULT_END = dt.date(2024, 12, 31)
DEFAULT_CHUNK_ROWS = 1_000_000

MONTH_FACTOR = np.array([0.72, 0.70, 0.90, 0.95, 1.0, 1.0, 1.0, 1.02, 0.95, 1.0, 1.20, 1.55])
WEEKDAY_FACTOR = np.array([0.90, 0.88, 0.92, 0.97, 1.10, 1.30, 1.15])  # Mon..Sun
#: channel shares (In-Store, Online, Mobile) by year offset; moves online over the years
CHANNEL_MIX = np.array([[0.70, 0.22, 0.08], [0.60, 0.27, 0.13], [0.50, 0.30, 0.20], [0.42, 0.32, 0.26]])
PAYMENT_MIX = np.array([0.55, 0.18, 0.20, 0.07])  # Card, Cash, Wallet, Gift Card

DUPLICATE_RATE = 0.005
NONPOSITIVE_RATE = 0.003
MISSING_RATE = 0.002
MALFORMED_RATE = 0.001
MESSY_STRING_RATE = 0.03


@dataclass
class GenerateResult:
    """What ``generate`` wrote: file URIs and row counts per table."""

    out: str
    files: dict[str, list[str]]
    rows: dict[str, int]


@dataclass
class _Calendar:
    days: np.ndarray  # datetime64[D]
    weights: np.ndarray
    year_offset: np.ndarray
    q4: np.ndarray
    promo_all: np.ndarray  # whole-store promotion days (Black Friday week, after-Christmas sale)


def _calendar(start: dt.date, end: dt.date) -> _Calendar:
    days = np.arange(np.datetime64(start), np.datetime64(end) + 1, dtype="datetime64[D]")
    if len(days) == 0:
        raise ConfigError(f"empty date range {start}..{end}", "the start date must not be after the end date")
    months = days.astype("datetime64[M]").astype(int) % 12  # 0..11
    dom = (days - days.astype("datetime64[M]")).astype(int) + 1
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday
    years = days.astype("datetime64[Y]").astype(int) + 1970
    w = MONTH_FACTOR[months] * WEEKDAY_FACTOR[weekday] * (1.0 + 0.06 * (years - years[0]))
    late_nov = (months == 10) & (dom >= 22)
    black_friday = late_nov & (weekday == 4) & (dom >= 23) & (dom <= 29)
    w = np.where(late_nov, w * 2.0, w)
    w = np.where(black_friday, w * 2.0, w)
    after_xmas = (months == 11) & (dom >= 26)
    return _Calendar(
        days=days,
        weights=w / w.sum(),
        year_offset=years - years[0],
        q4=months >= 9,
        promo_all=late_nov | after_xmas,
    )


def _period(cal: _Calendar, rows: int, start: dt.date, end: dt.date) -> tuple[_Calendar, int, int]:
    """The calendar cut to ``start..end``, the rows of a ``rows``-row dataset in it, and the rows before it.

    Why cut the full calendar instead of building one for the period: trends, channel mix and
    the yearly growth count years from the dataset's first year, so a batch generated for
    March 2024 looks like March 2024 of the whole dataset, and consecutive periods add up to
    it (rows split by the calendar's weights; ids continue where the previous period stopped).
    """
    mask = (cal.days >= np.datetime64(start)) & (cal.days <= np.datetime64(end))
    if not mask.any():
        raise ConfigError(
            f"the period {start}..{end} lies outside the data's dates {cal.days[0]}..{cal.days[-1]}",
            "choose a period inside the dataset's date range",
        )
    first, last = np.flatnonzero(mask)[[0, -1]]
    cum = np.concatenate([[0.0], np.cumsum(cal.weights)])
    before, through = round(rows * cum[first]), round(rows * cum[last + 1])
    cut = _Calendar(
        days=cal.days[mask],
        weights=cal.weights[mask] / cal.weights[mask].sum(),
        year_offset=cal.year_offset[mask],
        q4=cal.q4[mask],
        promo_all=cal.promo_all[mask],
    )
    return cut, through - before, before


def _vocab(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
    """Strings of a vocabulary by code, built by Arrow (no Python string per row)."""
    return pc.take(pa.array(values, pa.string()), pa.array(codes))


def _messy(values: pa.Array, rng: np.random.Generator, rate: float) -> pa.Array:
    """Pad and re-case a fraction of strings the way hand-typed exports do (vectorised)."""
    hit = rng.random(len(values)) < rate
    kinds = pa.array(rng.integers(0, 4, int(hit.sum())))
    if not len(kinds):
        return values
    picked = values.filter(pa.array(hit))
    lower = pc.utf8_lower(picked)
    messy = pc.case_when(
        pc.make_struct(pc.equal(kinds, 0), pc.equal(kinds, 1), pc.equal(kinds, 2)),
        lower,
        pc.utf8_upper(picked),
        pc.binary_join_element_wise("  ", picked, " ", ""),
        pc.binary_join_element_wise(lower, " ", ""),
    )
    return pc.replace_with_mask(values, pa.array(hit), messy)


@dataclass
class _Draws:
    """The per-row arrays of one chunk before it becomes a table (codes, not names)."""

    day: np.ndarray
    product: np.ndarray
    store: np.ndarray
    customer: np.ndarray
    channel: np.ndarray
    payment: np.ndarray
    cat: np.ndarray
    quantity: np.ndarray
    unit_price: np.ndarray
    discount: np.ndarray
    revenue: np.ndarray
    cost: np.ndarray
    profit: np.ndarray


def _products_and_stores(
    dims: Dimensions, rng: np.random.Generator, yoff: np.ndarray, q4: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Products and stores sampled per (year, Q4) group so trends and gift seasons show.

    The draw order (years ascending, non-Q4 before Q4, product before store) is part of the
    output for a seed: changing it changes every generated file.
    """
    n_base = len(yoff)
    product = np.empty(n_base, dtype=np.int64)
    store = np.empty(n_base, dtype=np.int64)
    cat_names = s.CATEGORIES
    for y in np.unique(yoff):
        for is_q4 in (False, True):
            mask = (yoff == y) & (q4 == is_q4)
            k = int(mask.sum())
            if not k:
                continue
            cat_w = np.array([CATEGORY_TREND[c] ** y * (Q4_BOOST.get(c, 1.0) if is_q4 else 1.0) for c in cat_names])
            pw = dims.product_popularity * cat_w[dims.product_category]
            product[mask] = rng.choice(len(pw), k, p=pw / pw.sum())
            reg_w = np.array([REGION_TREND[r] ** y for r in s.REGIONS])
            sw = dims.store_size * reg_w[dims.store_region]
            store[mask] = rng.choice(len(sw), k, p=sw / sw.sum())
    return product, store


def _channels_and_payments(
    dims: Dimensions, rng: np.random.Generator, yoff: np.ndarray, store: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Channel mix drifting online by year (online-only stores never sell in-store); no cash online."""
    n_base = len(yoff)
    mix = CHANNEL_MIX[np.minimum(yoff, len(CHANNEL_MIX) - 1)]
    channel = (rng.random(n_base)[:, None] > np.cumsum(mix, axis=1)).sum(axis=1)
    channel = np.where(dims.store_online[store] & (channel == 0), 1, channel)
    payment = rng.choice(4, n_base, p=PAYMENT_MIX)
    payment = np.where((channel > 0) & (payment == 1), 0, payment)  # no cash online
    return channel, payment


def _discounts(cal: _Calendar, rng: np.random.Generator, seed: int, day: np.ndarray, cat: np.ndarray) -> np.ndarray:
    """Promotions: random (day, category) promos plus whole-store sale days, so they cluster."""
    n_base = len(day)
    promo_key = (day * 8 + cat) * 2654435761 % 1000
    promo = (((promo_key + seed) % 1000) < 40) | cal.promo_all[day]
    base_disc = rng.choice([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05, 0.10, 0.15], n_base)
    promo_disc = rng.choice([0.2, 0.25, 0.3, 0.4, 0.5], n_base)
    return np.where(promo, promo_disc, base_disc)


def _draw_rows(dims: Dimensions, cal: _Calendar, rng: np.random.Generator, seed: int, n_base: int) -> _Draws:
    """All random per-row values of a chunk, in the fixed draw order that makes a seed reproducible."""
    day = np.sort(rng.choice(len(cal.days), n_base, p=cal.weights))
    yoff = cal.year_offset[day]
    product, store = _products_and_stores(dims, rng, yoff, cal.q4[day])
    cw = dims.customer_weight
    customer = rng.choice(len(cw), n_base, p=cw / cw.sum())
    channel, payment = _channels_and_payments(dims, rng, yoff, store)

    cat = dims.product_category[product]
    discount = _discounts(cal, rng, seed, day, cat)
    grocery = cat == s.CATEGORIES.index("Grocery")
    quantity = 1 + rng.poisson(np.where(grocery, 1.5, 0.5) + 3.0 * discount)

    unit_price = np.round(dims.product_price[product] * (1 + rng.normal(0, 0.02, n_base)), 2)
    revenue = np.round(quantity * unit_price * (1 - discount), 2)
    cost = np.round(quantity * dims.product_cost[product], 2)

    # dirt: refunds / zero-revenue rows
    bad_rev = rng.random(n_base) < NONPOSITIVE_RATE
    revenue = np.where(bad_rev, np.where(rng.random(n_base) < 0.5, 0.0, -revenue), revenue)
    profit = np.round(revenue - cost, 2)
    return _Draws(
        day, product, store, customer, channel, payment, cat, quantity, unit_price, discount, revenue, cost, profit
    )


def _landing_table(dims: Dimensions, cal: _Calendar, rng: np.random.Generator, d: _Draws, first_id: int) -> pa.Table:
    """Codes to landing-schema columns, with missing payments and messy strings mixed in."""
    n_base = len(d.day)
    ids = np.arange(first_id, first_id + n_base)
    region_names = _vocab(s.REGIONS, dims.store_region[d.store])
    category_names = _vocab(s.CATEGORIES, d.cat)
    channel_names = _vocab(s.CHANNELS, d.channel)
    no_payment = rng.random(n_base) < MISSING_RATE
    payment_names = pc.if_else(pa.array(no_payment), pa.scalar(None, pa.string()), _vocab(s.PAYMENT_METHODS, d.payment))
    return pa.table(
        {
            "transaction_id": pc.binary_join_element_wise(
                "T", pc.utf8_lpad(pc.cast(pa.array(ids), pa.string()), 10, "0"), ""
            ),
            "date": pa.array(cal.days[d.day], pa.date32()),
            "region": _messy(region_names, rng, MESSY_STRING_RATE),
            "store_id": pc.take(dims.stores["store_id"], pa.array(d.store)),
            "channel": _messy(channel_names, rng, MESSY_STRING_RATE / 3),
            "customer_id": pc.take(dims.customers["customer_id"], pa.array(d.customer)),
            "product_id": pc.take(dims.products["product_id"], pa.array(d.product)),
            "category": _messy(category_names, rng, MESSY_STRING_RATE),
            "quantity": pa.array(d.quantity, pa.int64()),
            "unit_price": pa.array(d.unit_price),
            "discount": pa.array(d.discount),
            "revenue": pa.array(d.revenue),
            "cost": pa.array(d.cost),
            "profit": pa.array(d.profit),
            "payment_method": payment_names,
        },
        schema=s.SALES_LANDING,
    )


def _add_duplicates(table: pa.Table, rng: np.random.Generator, n_dup: int) -> pa.Table:
    """Dirt: exact and near duplicates (same id padded or lower-cased), placed at random."""
    if not n_dup:
        return table
    n_base = table.num_rows
    src = rng.choice(n_base, n_dup, replace=False)
    dups = table.take(pa.array(src))
    tid = dups["transaction_id"].combine_chunks()
    kind = pa.array(rng.integers(0, 3, n_dup))
    tid = pc.case_when(
        pc.make_struct(pc.equal(kind, 1), pc.equal(kind, 2)),
        pc.utf8_lower(tid),
        pc.binary_join_element_wise(" ", tid, "  ", ""),
        tid,
    )
    dups = dups.set_column(0, "transaction_id", tid)
    table = pa.concat_tables([table, dups])
    order = np.argsort(np.concatenate([np.arange(n_base), src]), kind="stable")
    return table.take(pa.array(order))


def sales_chunk(dims: Dimensions, cal: _Calendar, seed: int, index: int, n: int, first_id: int) -> pa.Table:
    """One chunk of raw sales rows (dirt included), deterministic for (seed, index).

    One generator is threaded through the helpers in a fixed order; that order is what keeps
    the output byte-identical for a seed.
    """
    rng = np.random.default_rng([seed, 0x5A1E5, index])
    n_dup = round(n * DUPLICATE_RATE)
    draws = _draw_rows(dims, cal, rng, seed, n - n_dup)
    table = _landing_table(dims, cal, rng, draws, first_id)
    return _add_duplicates(table, rng, n_dup)


def _to_csv_dirty(table: pa.Table, seed: int, index: int) -> pa.Table:
    """In CSV, malformed values are text: 'n/a' quantities, impossible dates."""
    rng = np.random.default_rng([seed, 0xC5F, index])
    n = table.num_rows
    bad_q = rng.random(n) < MALFORMED_RATE
    q_tokens = rng.choice(np.array(["n/a", "two", "1.5.0", "?"], dtype=object), int(bad_q.sum()))
    q = pc.replace_with_mask(
        pc.cast(table["quantity"], pa.string()).combine_chunks(), pa.array(bad_q), pa.array(q_tokens, pa.string())
    )
    bad_d = rng.random(n) < MALFORMED_RATE / 2
    d_tokens = rng.choice(np.array(["2023-02-30", "31/12/2023", "not a date"], dtype=object), int(bad_d.sum()))
    d = pc.replace_with_mask(
        pc.cast(table["date"], pa.string()).combine_chunks(), pa.array(bad_d), pa.array(d_tokens, pa.string())
    )
    table = table.set_column(table.schema.get_field_index("quantity"), "quantity", q)
    return table.set_column(table.schema.get_field_index("date"), "date", d)


def _to_parquet_dirty(table: pa.Table, seed: int, index: int) -> pa.Table:
    """In Parquet, malformed values can only be missing (typed columns)."""
    rng = np.random.default_rng([seed, 0xC5F, index])
    bad_q = rng.random(table.num_rows) < MALFORMED_RATE
    q = pc.if_else(pa.array(bad_q), pa.scalar(None, pa.int64()), table["quantity"])
    return table.set_column(table.schema.get_field_index("quantity"), "quantity", q)


def write_table(table: pa.Table, uri: str, fmt: Format) -> None:
    """Write one landing file to a local path or s3:// URI."""
    fs = filesystem_for(uri)
    path = uri[len("s3://") :] if uri.startswith("s3://") else uri
    with fs.open(path, "wb") as f:  # streamed: no second copy of the file in memory
        if fmt == "csv":
            pacsv.write_csv(table, f)
        else:
            pq.write_table(table, f, compression="zstd")


def _sales_task(
    dims: Dimensions, cal: _Calendar, seed: int, index: int, n: int, first_id: int, uri: str, fmt: Format
) -> int:
    table = sales_chunk(dims, cal, seed, index, n, first_id)
    table = _to_csv_dirty(table, seed, index) if fmt == "csv" else _to_parquet_dirty(table, seed, index)
    write_table(table, uri, fmt)
    return table.num_rows


#: names generate (and the demo's marker) write; --overwrite removes only these
_GENERATED = re.compile(
    r"^(?:(?:products|stores|customers)\.(?:csv|parquet)|sales-(?:\d{5}|\d{12})\.(?:csv|parquet)|\.generated)$"
)


def prepare_out(out: str, fs: Any, overwrite: bool) -> None:
    """Make ``out`` an empty folder to generate into, or say why it cannot be.

    ``overwrite`` clears files generate wrote earlier; anything else in the folder (a user's
    own files, sub-folders) is never deleted: the user is asked to pick another folder.
    """
    existing = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(out, detail=False)] if fs.exists(out) else []
    if existing and not overwrite:
        shown = ", ".join(sorted(existing)[:4]) + (" ..." if len(existing) > 4 else "")
        raise ConfigError(
            f"{out} is not empty ({len(existing)} entries: {shown}); generating into it would mix two datasets",
            "choose an empty folder with --out, or add --overwrite to replace what generate wrote there",
        )
    foreign = sorted(name for name in existing if not _GENERATED.match(name))
    if foreign:
        raise ConfigError(
            f"{out} holds files generate did not write ({', '.join(foreign[:4])}); --overwrite deletes only its own",
            "choose an empty folder with --out, or move those files away first",
        )
    for name in existing:
        fs.rm(f"{out}/{name}")
    if not out.startswith("s3://"):
        fs.makedirs(out, exist_ok=True)


def generate(
    rows: int,
    out: str,
    seed: int = 42,
    fmt: Format = "csv",
    start: dt.date = DEFAULT_START,
    end: dt.date = DEFAULT_END,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    workers: int = 2,
    progress: bool = False,
    overwrite: bool = False,
    period: tuple[dt.date, dt.date] | None = None,
) -> GenerateResult:
    """Write landing files for sales (``sales-NNNNN.<fmt>``, one per chunk) and the dimensions.

    ``rows`` counts raw sales rows including the dirt. Chunks run as Dask delayed tasks on
    the threaded scheduler, ``workers`` at a time, so memory stays at a few chunks. A folder
    that already holds files is refused unless ``overwrite`` (see :func:`prepare_out`): new
    files next to old ones would make the next ingest mix two datasets without a word.
    ``period=(first, last)`` writes only that period's share of the ``rows``-row dataset (the
    way data arrives: one batch per month or quarter); the dimensions are the whole dataset's.
    """
    import dask
    from tqdm import tqdm

    if rows < 1:
        raise ConfigError(f"--rows must be positive, got {rows}", "ask for at least 1 row")
    if fmt not in ("csv", "parquet"):
        raise ConfigError(f"unknown format {fmt!r}", "use csv or parquet")
    out = out.rstrip("/")
    fs = filesystem_for(out)
    prepare_out(out, fs, overwrite)

    dims = build_dimensions(seed, rows)
    cal = _calendar(start, end)
    total, offset = rows, 0
    if period is not None:
        cal, total, offset = _period(cal, rows, *period)
    files: dict[str, list[str]] = {"sales": [], "products": [], "stores": [], "customers": []}
    counts: dict[str, int] = {}
    for name in ("products", "stores", "customers"):
        uri = f"{out}/{name}.{fmt}"
        table = getattr(dims, name)
        write_table(table, uri, fmt)
        files[name].append(uri)
        counts[name] = table.num_rows

    chunk_rows = max(1, chunk_rows)
    sizes = [min(chunk_rows, total - i) for i in range(0, total, chunk_rows)]
    tasks = []
    first_id = offset + 1
    for i, n in enumerate(sizes):
        # a period's chunks are named and seeded by their first row: unique across periods
        index, name = (i, f"{i:05d}") if period is None else (first_id, f"{first_id:012d}")
        uri = f"{out}/sales-{name}.{fmt}"
        files["sales"].append(uri)
        tasks.append(dask.delayed(_sales_task)(dims, cal, seed, index, n, first_id, uri, fmt))
        first_id += n
    written = 0
    with tqdm(total=total, unit="rows", desc="generate", disable=not progress) as bar:
        for i in range(0, len(tasks), max(1, workers)):
            done = dask.compute(*tasks[i : i + workers], scheduler="threads", num_workers=workers)
            written += sum(done)
            bar.update(sum(done))
    counts["sales"] = written
    return GenerateResult(out=out, files=files, rows=counts)
