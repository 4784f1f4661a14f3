"""Parse and clean one landing file with pyarrow (no pandas: pyarrow's CSV reader is ~9x faster).

Dirt versus malformed, the rule the ingest applies:

* **Dirt is cleaned and counted** (row dropped or value fixed, reason in the quality report):
  padded or mixed-case strings (normalised to the canonical vocabulary), transaction ids
  with padding or lower case (normalised, then deduplicated), revenue <= 0, an empty
  required value, a value that does not parse or is out of the vocabulary/range, missing
  optional values (profit is recomputed from revenue - cost). Extra columns are ignored.
* **A malformed file is refused** with a :class:`DataError` naming the file (and the column
  when there is one), and the whole ingest stops before any commit, so the lake is
  unchanged: an empty or unreadable file (binary, bad UTF-8, truncated Parquet), a ragged
  CSV row, a duplicated header, a missing required column (often a wrong delimiter), a
  column of the wrong kind (e.g. booleans where numbers are expected), or more than
  ``MALFORMED_TOLERANCE`` (5%) of a column's values that do not parse: at that point the
  file is broken (wrong column order, wrong locale) rather than dirty.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import itertools
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from workbench.errors import DataError
from workbench.lake import schema as s

if TYPE_CHECKING:
    import fsspec

MALFORMED_TOLERANCE = 0.05
#: below this many bad values a column is never refused (small files with a few typos)
MALFORMED_MIN_COUNT = 10

#: landing columns with few distinct values: read straight into dictionary arrays, so parsing,
#: trimming and vocabulary checks run once per distinct value, not once per row
LOW_CARDINALITY: dict[str, tuple[str, ...]] = {
    "sales": (
        "date",
        "region",
        "store_id",
        "channel",
        "customer_id",
        "product_id",
        "category",
        "quantity",
        "discount",
        "payment_method",
    ),
}
#: bytes of CSV per streamed block (~0.5M sales rows): bounds an ingest task's memory
STREAM_BLOCK_BYTES = 64 << 20
_DICT = pa.dictionary(pa.int32(), pa.string())

_INT_RE = r"^[-+]?\d+(\.0*)?$"
_FLOAT_RE = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


def read_landing(uri: str, fs: fsspec.AbstractFileSystem, table: str) -> pa.Table:
    """Read a landing file into Arrow; expected columns stay text in CSV (parsed tolerantly later)."""
    path = uri[len("s3://") :] if uri.startswith("s3://") else uri
    try:
        data = fs.cat_file(path)
    except FileNotFoundError as e:
        raise DataError(f"landing file {uri} does not exist", "check the landing folder") from e
    if not data:
        raise DataError(f"{uri} is empty (0 bytes)", "remove the file or re-export it with a header and rows")
    if uri.lower().endswith((".parquet", ".pq")):
        return _read_parquet(uri, data)
    return _read_csv(uri, data, table)


def _read_parquet(uri: str, data: bytes) -> pa.Table:
    try:
        result = pq.read_table(io.BytesIO(data))
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        raise DataError(
            f"{uri} is not a readable Parquet file: {e}", "the file is truncated or corrupt; re-export it"
        ) from e
    _check_duplicate_columns(uri, result.column_names)
    return result


class TypedParseFailed(Exception):
    """A column read with its numeric type has a value that does not parse: re-read it as text."""


def _csv_options(
    table: str, block_size: int, typed_floats: bool = False
) -> tuple[pacsv.ReadOptions, pacsv.ConvertOptions]:
    low = set(LOW_CARDINALITY.get(table, ()))
    types = {c: (_DICT if c in low else pa.string()) for c in s.LANDING[table].names}
    if typed_floats:  # parsed by the CSV reader itself: no per-row strings to build and cast
        types.update({f.name: f.type for f in s.LANDING[table] if pa.types.is_floating(f.type) and f.name not in low})
    return (
        pacsv.ReadOptions(block_size=block_size),
        pacsv.ConvertOptions(column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=True),
    )


def _header_names(uri: str, header: bytes) -> list[str]:
    try:
        return pacsv.read_csv(io.BytesIO(header)).column_names
    except pa.ArrowInvalid as e:
        raise _csv_error(uri, e) from e


def _check_csv_head(uri: str, head: bytes) -> None:
    if b"\x00" in head[:4096]:
        raise DataError(f"{uri} looks binary, not CSV", "landing files must be UTF-8 CSV or Parquet")
    header = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    names = [h.strip().strip('"') for h in header.split(",")]
    _check_duplicate_columns(uri, names)


def _csv_error(uri: str, e: pa.ArrowInvalid) -> DataError:
    msg = str(e)
    if "UTF8" in msg or "utf8" in msg.lower():
        hint = "re-export the file as UTF-8"
    elif "Expected" in msg and "columns" in msg:
        hint = "a row has a different number of fields than the header (unquoted comma or a cut line)"
    elif "Empty CSV" in msg:
        hint = "the file has no header; re-export it with a header row"
    else:
        hint = "fix or re-export the file"
    return DataError(f"{uri} cannot be parsed as CSV: {msg.splitlines()[0]}", hint)


def _read_csv(uri: str, data: bytes, table: str) -> pa.Table:
    _check_csv_head(uri, data)
    read_options, convert_options = _csv_options(table, 1 << 24)
    try:
        result = pacsv.read_csv(io.BytesIO(data), read_options=read_options, convert_options=convert_options)
    except pa.ArrowInvalid as e:
        raise _csv_error(uri, e) from e
    return result


def csv_ranges(uri: str, fs: fsspec.AbstractFileSystem, size: int, range_bytes: int) -> list[tuple[int, int]]:
    """Split a CSV file into byte ranges of about ``range_bytes`` that end on a newline.

    Why: one large file then feeds several tasks (both cores busy even for a single file).
    It is as safe as pyarrow's own reader, which also cuts blocks at newlines (quoted
    newlines are not supported, ``ParseOptions.newlines_in_values`` is off).
    """
    if uri.lower().endswith((".parquet", ".pq")) or size <= range_bytes * 3 // 2:
        return [(0, size)]
    path = uri[len("s3://") :] if uri.startswith("s3://") else uri
    bounds = [0]
    with fs.open(path, "rb") as f:
        pos = range_bytes
        while pos < size - range_bytes // 2:
            f.seek(pos)
            probe = f.read(1 << 20)
            cut = probe.find(b"\n")
            if cut < 0:  # a 1 MB line: not worth splitting further
                break
            bounds.append(pos + cut + 1)
            pos = bounds[-1] + range_bytes
    bounds.append(size)
    return [(lo, hi) for lo, hi in itertools.pairwise(bounds) if hi > lo]


def iter_landing(
    uri: str,
    fs: fsspec.AbstractFileSystem,
    table: str,
    block_bytes: int = STREAM_BLOCK_BYTES,
    typed_floats: bool = False,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[pa.Table]:
    """Stream a landing file as tables of about ``block_bytes`` each (memory flat in the file size).

    Same checks and errors as :func:`read_landing`; a malformed row deep in a file raises
    while streaming, which is still before any commit. With ``typed_floats`` the float
    columns of a CSV file are parsed by the reader (faster); a value that does not parse
    raises :class:`TypedParseFailed` and the caller re-reads the file without it, so dirty
    values are still judged one by one. ``byte_range`` (from :func:`csv_ranges`) reads one
    part of a CSV file, with the file's header.
    """
    path = uri[len("s3://") :] if uri.startswith("s3://") else uri
    try:
        f = fs.open(path, "rb")
    except FileNotFoundError as e:
        raise DataError(f"landing file {uri} does not exist", "check the landing folder") from e
    with f:
        if uri.lower().endswith((".parquet", ".pq")):
            yield from _iter_parquet(uri, f, block_bytes)
            return
        head = f.read(4096)
        if not head:
            raise DataError(f"{uri} is empty (0 bytes)", "remove the file or re-export it with a header and rows")
        source: Any = f
        read_options, convert_options = _csv_options(table, block_bytes, typed_floats)
        # a range is read into one Arrow buffer (no copy into the reader); later ranges get the
        # column names from the header instead of a copy of the range with the header prepended
        if byte_range is not None and byte_range[0] > 0:
            f.seek(0)
            names = _header_names(uri, f.readline())
            read_options.column_names = names
            f.seek(byte_range[0])
            source = pa.BufferReader(pa.py_buffer(f.read(byte_range[1] - byte_range[0])))
        else:
            _check_csv_head(uri, head)
            f.seek(0)
            if byte_range is not None and byte_range[1] < fs.size(path):
                source = pa.BufferReader(pa.py_buffer(f.read(byte_range[1])))
        try:
            reader = pacsv.open_csv(source, read_options=read_options, convert_options=convert_options)
            pending: list[pa.RecordBatch] = []
            size = 0
            for batch in reader:
                pending.append(batch)
                size += batch.nbytes
                if size >= block_bytes:
                    yield pa.Table.from_batches(pending).unify_dictionaries()
                    pending, size = [], 0
            if pending or not size:
                yield pa.Table.from_batches(pending, schema=reader.schema).unify_dictionaries()
        except pa.ArrowInvalid as e:
            if typed_floats and "conversion error" in str(e).lower():
                raise TypedParseFailed(str(e)) from e
            raise _csv_error(uri, e) from e


def _iter_parquet(uri: str, f: Any, block_bytes: int) -> Iterator[pa.Table]:
    if not f.read(4):
        raise DataError(f"{uri} is empty (0 bytes)", "remove the file or re-export it with a header and rows")
    f.seek(0)
    try:
        pf = pq.ParquetFile(f)
        _check_duplicate_columns(uri, pf.schema_arrow.names)
        rows_per_block = max(65_536, block_bytes // 128)  # ~128 bytes per row in memory
        if pf.metadata.num_rows == 0:
            yield pf.schema_arrow.empty_table()
            return
        for batch in pf.iter_batches(batch_size=rows_per_block):
            yield pa.Table.from_batches([batch])
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as e:
        raise DataError(
            f"{uri} is not a readable Parquet file: {e}", "the file is truncated or corrupt; re-export it"
        ) from e


def _check_duplicate_columns(uri: str, names: list[str]) -> None:
    dup = [n for n, k in Counter(names).items() if k > 1]
    if dup:
        raise DataError(f"{uri}: duplicated column {dup[0]!r} in the header", "each column must appear once")


def check_columns(uri: str, raw: pa.Table, table: str) -> None:
    missing = [c for c in s.LANDING[table].names if c not in raw.column_names]
    if not missing:
        return
    hint = f"{table} files need the columns: {', '.join(s.LANDING[table].names)}"
    if len(raw.column_names) == 1 and any(d in raw.column_names[0] for d in ";\t|"):
        delim = next(d for d in ";\t|" if d in raw.column_names[0])
        hint = f"the file seems delimited by {delim!r}; landing CSV files must use commas"
    raise DataError(f"{uri}: missing required column {missing[0]!r}", hint, file=uri, column=missing[0])


# --- value parsing -------------------------------------------------------------------------


def _blank_to_null(arr: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    trimmed = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


class _Parsed:
    """A parsed column plus masks: value missing, value present but malformed."""

    def __init__(self, values: pa.ChunkedArray | pa.Array, missing: np.ndarray, malformed: np.ndarray) -> None:
        self.values = values
        self.missing = missing
        self.malformed = malformed


class MalformedTally:
    """Malformed-value counts of one file accumulated over its streamed blocks.

    The 5% rule is about a *file*, so a streamed file is judged once, at its end, on the
    same totals :func:`parse_column` would have seen reading it whole.
    """

    def __init__(self) -> None:
        self.counts: dict[str, list[Any]] = {}  # column -> [bad, rows, missing, sample, target]

    def add(self, column: str, target: pa.DataType, bad: int, n: int, missing: int, sample: list[Any]) -> None:
        entry = self.counts.setdefault(column, [0, 0, 0, [], target])
        entry[0] += bad
        entry[1] += n
        entry[2] += missing
        entry[3] = (entry[3] + sample)[:3]

    def merge(self, other: MalformedTally) -> None:
        for column, (bad, n, missing, sample, target) in other.counts.items():
            self.add(column, target, bad, n, missing, sample)

    def check(self, uri: str) -> None:
        for column, (bad, n, missing, sample, target) in self.counts.items():
            _refuse_if_broken(uri, column, target, bad, n, missing, sample)


def _refuse_if_broken(
    uri: str, column: str, target: pa.DataType, bad: int, n: int, missing: int, sample: list[Any]
) -> None:
    if bad >= MALFORMED_MIN_COUNT and bad > MALFORMED_TOLERANCE * max(1, n - missing):
        raise DataError(
            f"{uri}: column {column!r} has {bad:,} of {n:,} values that are not {target} (e.g. {sample})",
            f"more than {MALFORMED_TOLERANCE:.0%} malformed means a broken export (column order, locale); fix the file",
            file=uri,
            column=column,
        )


def _mask(arr: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return np.asarray(pc.fill_null(arr, False).to_numpy(zero_copy_only=False), dtype=bool)


def _as_dictionary(arr: pa.ChunkedArray | pa.Array) -> pa.DictionaryArray:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.unify_dictionaries().combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr  # type: ignore[return-value]


def _indices(d: pa.DictionaryArray) -> tuple[np.ndarray, np.ndarray]:
    """(indices with nulls as 0, null mask) of a dictionary array, as numpy."""
    nulls = _mask(pc.is_null(d.indices)) if d.null_count else np.zeros(len(d), dtype=bool)
    idx = np.asarray(pc.fill_null(d.indices, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
    return idx, nulls


def _redictionary(values: pa.Array | pa.ChunkedArray, idx: np.ndarray, nulls: np.ndarray) -> pa.DictionaryArray:
    """Per-row dictionary array from per-dictionary-entry ``values`` (deduplicated, nulls as null rows)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    enc = pc.dictionary_encode(values)
    remap = np.asarray(pc.fill_null(enc.indices, -1).to_numpy(zero_copy_only=False), dtype=np.int32)
    rows = remap[idx] if len(remap) else np.full(len(idx), -1, dtype=np.int32)
    rows = np.where(nulls, -1, rows)
    invalid = rows < 0
    indices = pa.array(rows, pa.int32(), mask=invalid if invalid.any() else None)
    return pa.DictionaryArray.from_arrays(indices, enc.dictionary)


def parse_column(
    uri: str, raw: pa.Table, column: str, target: pa.DataType, tally: MalformedTally | None = None
) -> _Parsed:
    """Parse one column to ``target``; refuse the file if too many values are malformed.

    With ``tally`` the refusal is deferred: counts are added to it and checked per file.
    A dictionary column is parsed once per distinct value; string results stay dictionary-encoded.
    """
    arr = raw[column]
    if pa.types.is_dictionary(arr.type) and pa.types.is_string(arr.type.value_type):
        d = _as_dictionary(arr)
        inner = parse_column(uri, pa.table({column: d.dictionary}), column, target, MalformedTally())
        idx, nulls = _indices(d)
        if pa.types.is_string(target):
            values: pa.Array | pa.ChunkedArray = _redictionary(inner.values, idx, nulls)
        else:
            values = pc.take(inner.values, pa.array(idx)) if len(inner.values) else pa.nulls(len(idx), target)
            if nulls.any():
                values = pc.if_else(pa.array(nulls), pa.scalar(None, target), values)
        if len(d.dictionary):
            missing = inner.missing[idx] | nulls
            malformed = inner.malformed[idx] & ~nulls
        else:
            missing, malformed = nulls, np.zeros(len(idx), dtype=bool)
        return _judge(uri, arr, column, target, _Parsed(values, missing, malformed), tally)
    n = len(arr)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or pa.types.is_null(arr.type):
        text = _blank_to_null(pc.cast(arr, pa.string()))
        missing = _mask(pc.is_null(text))
        if pa.types.is_string(target):
            return _Parsed(text, missing, np.zeros(n, dtype=bool))
        if pa.types.is_date(target):
            # arrow's strptime rolls 2023-02-30 over to March: compare the day back to reject it
            # (strftime would be simpler but is ~20x slower than these kernels)
            day = pc.utf8_slice_codeunits(text, 0, 10)
            ts = pc.strptime(day, format="%Y-%m-%d", unit="s", error_is_null=True)
            dom_text = pc.if_else(pc.is_valid(ts), pc.utf8_slice_codeunits(day, 8, 10), pa.scalar(None, pa.string()))
            dom = pc.cast(dom_text, pa.int64())
            real = pc.equal(pc.day(ts), dom)
            values = pc.if_else(real, pc.cast(ts, pa.date32()), pa.scalar(None, pa.date32()))
        else:
            try:  # fast path: a clean column casts directly
                values = pc.cast(text, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                ok = pc.match_substring_regex(text, _INT_RE if pa.types.is_integer(target) else _FLOAT_RE)
                clean = pc.if_else(ok, text, pa.scalar(None, pa.string()))
                values = pc.cast(pc.cast(clean, pa.float64()), target, safe=False)
        malformed = _mask(pc.is_null(values)) & ~missing
    else:
        missing = _mask(pc.is_null(arr))
        malformed = np.zeros(n, dtype=bool)
        try:
            if pa.types.is_date(target) and pa.types.is_timestamp(arr.type):
                values = pc.cast(arr, pa.date32())
            elif pa.types.is_string(target) or _compatible(arr.type, target):
                values = pc.cast(arr, target, safe=False)
            else:
                raise TypeError
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError) as e:
            raise DataError(
                f"{uri}: column {column!r} has type {arr.type}, expected {target}",
                "re-export the file with the columns and types of docs/schema.md (`workbench columns TABLE`)",
                file=uri,
                column=column,
            ) from e
    return _judge(uri, arr, column, target, _Parsed(values, missing, malformed), tally)


def _judge(
    uri: str,
    arr: pa.ChunkedArray | pa.Array,
    column: str,
    target: pa.DataType,
    parsed: _Parsed,
    tally: MalformedTally | None,
) -> _Parsed:
    bad = int(parsed.malformed.sum())
    missing = int(parsed.missing.sum())
    sample = pc.filter(arr, pa.array(parsed.malformed)).slice(0, 3).cast(pa.string()).to_pylist() if bad else []
    if tally is not None:
        tally.add(column, target, bad, len(arr), missing, sample)
    else:
        _refuse_if_broken(uri, column, target, bad, len(arr), missing, sample)
    return parsed


def _compatible(source: pa.DataType, target: pa.DataType) -> bool:
    numeric = pa.types.is_integer(source) or pa.types.is_floating(source) or pa.types.is_decimal(source)
    if pa.types.is_integer(target) or pa.types.is_floating(target):
        return numeric
    if pa.types.is_date(target):
        return pa.types.is_date(source)
    return False


def normalise_vocabulary(
    values: pa.ChunkedArray | pa.Array, vocabulary: tuple[str, ...], null_invalid: bool = False
) -> tuple[pa.DictionaryArray, np.ndarray]:
    """Map padded / mixed-case strings onto the canonical vocabulary; returns values and an invalid mask.

    The result is dictionary-encoded over ``vocabulary`` (few distinct spellings: the
    dictionary is normalised, not every row). ``null_invalid`` turns invalid values into nulls.
    """
    encoded = values if pa.types.is_dictionary(values.type) else pc.dictionary_encode(values)
    d = _as_dictionary(encoded)
    lookup = {v.lower(): i for i, v in enumerate(vocabulary)}
    mapped = np.array(
        [lookup.get(str(v).strip().lower(), -1) if v is not None else -2 for v in d.dictionary.to_pylist()] + [-2],
        dtype=np.int32,
    )
    idx, nulls = _indices(d)
    rows = mapped[np.where(nulls, len(mapped) - 1, idx)]
    invalid = rows == -1
    null_rows = (rows == -2) | (invalid if null_invalid else np.zeros(len(rows), dtype=bool))
    rows = np.where(rows < 0, 0, rows).astype(np.int32)
    canonical = pa.DictionaryArray.from_arrays(
        pa.array(rows, pa.int32(), mask=(null_rows | invalid) if (null_rows | invalid).any() else None),
        pa.array(vocabulary, pa.string()),
    )
    return canonical, invalid


def tokenise(values: pa.ChunkedArray | pa.Array, key: bytes) -> pa.Array:
    """Keyed hash (HMAC-SHA256) of personal values: stable across ingests, not reversible without the key.

    Hashed once per distinct value (repeated names cost one HMAC).
    """
    trimmed = pc.utf8_trim_whitespace(pc.cast(values, pa.string()))
    d = _as_dictionary(pc.dictionary_encode(trimmed))
    tokens = pa.array(
        [hmac.new(key, v.encode(), hashlib.sha256).hexdigest() for v in d.dictionary.to_pylist()], pa.string()
    )
    return pc.take(tokens, d.indices)


# --- per-table cleaning --------------------------------------------------------------------


def clean(
    uri: str,
    raw: pa.Table,
    table: str,
    pii_key: bytes,
    *,
    tally: MalformedTally | None = None,
    keep_dictionary: bool = False,
) -> tuple[pa.Table, dict[str, int]]:
    """Clean one landing file's rows for ``table``; returns the clean rows and drop counts by reason.

    Row order is kept so "keep the first occurrence" is well defined downstream. ``tally``
    defers the malformed-file check to the caller (streamed files); ``keep_dictionary`` keeps
    low-cardinality string columns dictionary-encoded (cheaper to stage and to write).
    """
    check_columns(uri, raw, table)
    landing = s.LANDING[table]
    n = raw.num_rows
    optional = set(s.OPTIONAL_COLUMNS[table])
    missing = np.zeros(n, dtype=bool)
    malformed = np.zeros(n, dtype=bool)
    invalid = np.zeros(n, dtype=bool)
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for field in landing:
        parsed = parse_column(uri, raw, field.name, field.type, tally)
        values = parsed.values
        if field.name in s.VOCABULARY and pa.types.is_string(field.type):
            values, bad = normalise_vocabulary(values, s.VOCABULARY[field.name], null_invalid=field.name in optional)
            if field.name not in optional:
                invalid |= bad
        if field.name == s.KEYS[table] and table == "sales":
            values = pc.utf8_upper(values)
        if field.name not in optional:
            missing |= parsed.missing
            malformed |= parsed.malformed
        elif parsed.malformed.any():
            values = pc.if_else(pa.array(parsed.malformed), pa.scalar(None, field.type), values)
        cols[field.name] = values

    if table == "sales":
        quantity = cols["quantity"]
        invalid |= _mask(pc.less(quantity, 1))
        discount = cols["discount"]
        cols["discount"] = pc.if_else(
            pc.or_(pc.less(discount, 0), pc.greater(discount, 0.6)), pa.scalar(None, pa.float64()), discount
        )
        nonpositive = _mask(pc.less_equal(cols["revenue"], 0))
    else:
        nonpositive = np.zeros(n, dtype=bool)
    if table == "products":
        invalid |= _mask(pc.less(cols["list_price"], 0)) | _mask(pc.less(cols["unit_cost"], 0))

    drops: dict[str, int] = {}
    dropped = np.zeros(n, dtype=bool)
    for reason, mask in (
        ("missing_value", missing),
        ("malformed_value", malformed),
        ("invalid_value", invalid),
        ("nonpositive_revenue", nonpositive),
    ):
        new = mask & ~dropped
        drops[reason] = int(new.sum())
        dropped |= new

    result = pa.table(cols)
    if dropped.any():
        result = result.filter(pa.array(~dropped))
    if table == "sales":
        result = _derive_sales(result)
    for col in s.PII_COLUMNS.get(table, ()):
        result = result.set_column(result.schema.get_field_index(col), col, tokenise(result[col], pii_key))
    target = s.TABLES[table]
    if keep_dictionary:
        # closed vocabularies only: their dictionaries are tiny and the same in every block, while
        # e.g. a block's 50k customer ids would be copied into every staged piece and data file
        target = pa.schema([pa.field(f.name, _DICT) if f.name in s.VOCABULARY else f for f in target])
    return result.select(target.names).cast(target), drops


def _derive_sales(t: pa.Table) -> pa.Table:
    revenue, cost = t["revenue"], t["cost"]
    profit = pc.coalesce(t["profit"], pc.subtract(revenue, cost))
    t = t.set_column(t.schema.get_field_index("profit"), "profit", profit)
    t = t.append_column("year", pc.cast(pc.year(t["date"]), pa.int32()))
    t = t.append_column("month", pc.cast(pc.month(t["date"]), pa.int32()))
    return t.append_column("profit_margin", pc.multiply(pc.divide(profit, revenue), 100.0))
