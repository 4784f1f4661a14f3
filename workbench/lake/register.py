"""Bring your own data: make a folder (or file, or Delta table) queryable as a lake table.

Why a Delta log even for data read in place: every reader of the workbench (the SQL
snapshot and its partition pruning, both engines, the catalog sync, ``workbench tables``)
already goes through the Delta log of ``<lake>/<name>``. Registering Parquet *in place*
therefore writes only a log whose add actions point at the user's files by absolute URI
(no byte of data is copied; hive ``key=value`` folders become Delta partition values, so
WHERE clauses prune exactly as on the reference tables). A user's *Delta* table is
registered the same way from its current version (a shallow clone; re-register to pick up
newer versions), after checking that its protocol needs nothing a plain file-list reader
would ignore (deletion vectors, column mapping). ``--copy`` (the default for CSV) ingests
into a real lake table instead, through the ingest's Delta writer (``write_data_file`` +
one ``commit``): type inference that tolerates padding, string normalisation (trim, blank
to NULL), column names made plain identifiers, and a quality report (``TableQuality``).

Nothing is half-registered: the log is written first and removed again if anything after
it fails; the catalog row is written last. ``unregister`` removes the log (and a copy's
data files, which the workbench wrote), never the user's files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from workbench.catalog import profiles as P
from workbench.catalog.store import Catalog, open_catalog
from workbench.config import Settings
from workbench.errors import ConfigError, DataError, NotFoundError, WorkbenchError
from workbench.lake.profile import profile_table
from workbench.lake.registry import allowed_directories, invalidate, registered_names, registered_roots
from workbench.lake.storage import Lake, filesystem_for, is_remote
from workbench.lake.types import infer as infer_type

if TYPE_CHECKING:
    import fsspec

__all__ = [
    "allowed_directories",
    "invalidate",
    "register",
    "registered_names",
    "registered_roots",
    "registrations",
    "unregister",
]

#: names a registration may never take (the reference tables and lake folders)
RESERVED_NAMES = frozenset({"sales", "products", "stores", "customers", "rollups"})
FORMATS = ("parquet", "csv", "delta")
#: metadata key on the registration commit (marks a lake table as registered)
REGISTERED_KEY = "workbench.registered"
_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
#: delta reader features a file-list reader handles correctly (anything else is refused)
SUPPORTED_READER_FEATURES = frozenset({"timestampNtz"})


# --- public API --------------------------------------------------------------------------------
def register(
    name: str,
    url: str,
    *,
    fmt: str | None = None,
    copy: bool | None = None,
    partition_by: Sequence[str] | None = None,
    encoding: str = "utf-8",
    lake: Lake | None = None,
    settings: Settings | None = None,
    profile: bool = True,
) -> P.Registration:
    """Register ``url`` as table ``name``; returns the registration (with a quality report for copies).

    ``fmt`` is guessed from the files when omitted; ``copy`` defaults to True for CSV and False
    otherwise; ``partition_by`` only applies to copies (in-place data keeps its own layout).
    ``profile`` also stores a column profile in the catalog (``workbench.lake.profile``).
    """
    lake = lake or Lake(settings=settings)
    settings = lake.settings
    _check_name(name, lake)
    url = _normalise_url(url)
    fs = filesystem_for(url, settings)
    fmt = fmt or _guess_format(url, fs)
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", f"use one of: {', '.join(FORMATS)}")
    copy = (fmt == "csv") if copy is None else copy
    if fmt == "csv" and not copy:
        raise ConfigError("CSV cannot be read in place", "drop --no-copy: CSV files are always ingested (copied)")
    if partition_by and not copy:
        raise ConfigError(
            "--partition-by only applies to copies", "in-place data keeps its own hive layout; add --copy"
        )
    catalog = open_catalog(settings)
    try:
        if copy:
            reg = _copy_into_lake(name, url, fs, fmt, lake, list(partition_by or []), encoding)
        elif fmt == "delta":
            reg = _register_delta(name, url, lake)
        else:
            reg = _register_parquet(name, url, fs, lake)
        try:
            catalog.sync_table(lake, name, origin_url=url, registered=True, force=True)
            P.save_registration(catalog, reg)
            if profile:
                profile_table(lake, name, catalog=catalog)
        except BaseException:
            _drop_table(lake, name)
            P.delete_registration(catalog, name)
            raise
    finally:
        catalog.close()
    invalidate()
    return reg


def unregister(name: str, *, lake: Lake | None = None, settings: Settings | None = None) -> P.Registration:
    """Remove a registration: the lake log (and a copy's lake files); the user's files stay untouched."""
    lake = lake or Lake(settings=settings)
    catalog = open_catalog(lake.settings)
    try:
        reg = P.get_registration(catalog, name)
        _drop_table(lake, name)
        P.delete_registration(catalog, name)
        _forget_catalog_table(catalog, name)
    finally:
        catalog.close()
    invalidate()
    return reg


def registrations(settings: Settings | None = None, lake: Lake | None = None) -> list[P.Registration]:
    lake = lake or Lake(settings=settings)
    catalog = open_catalog(lake.settings)
    try:
        return P.list_registrations(catalog)
    finally:
        catalog.close()


# --- name and format -----------------------------------------------------------------------------
def _check_name(name: str, lake: Lake) -> None:
    from sqlglot.tokens import Tokenizer, TokenType

    if not _NAME_RE.match(name):
        raise ConfigError(
            f"table name {name!r} is not a plain identifier",
            "use lower-case letters, digits and _ (starting with a letter), e.g. orders_2024",
        )
    if name in RESERVED_NAMES:
        raise ConfigError(f"{name!r} is a reference table of the workbench", "choose another name")
    if Tokenizer.KEYWORDS.get(name.upper(), TokenType.VAR) not in (TokenType.VAR,):
        raise ConfigError(f"{name!r} is an SQL keyword", f"choose another name, e.g. {name}_data")
    if lake.exists(name):
        raise ConfigError(
            f"a table {name!r} already exists in the lake",
            f"`workbench unregister {name}` first, or choose another name",
        )


def _normalise_url(url: str) -> str:
    if url.startswith("file://"):
        url = url[len("file://") :]
    if is_remote(url):
        if not url.startswith("s3://"):
            raise ConfigError(f"unsupported URL {url!r}", "use a local path or s3://bucket/prefix")
        return url.rstrip("/")
    return str(Path(url).expanduser().resolve())


def _fs_path(url: str) -> str:
    return url[len("s3://") :] if url.startswith("s3://") else url


def _uri(url: str, fs_path: str) -> str:
    return f"s3://{fs_path}" if url.startswith("s3://") else fs_path


def _guess_format(url: str, fs: fsspec.AbstractFileSystem) -> str:
    path = _fs_path(url)
    if not fs.exists(path):
        raise NotFoundError(f"{url} does not exist", "check the path (local folder/file or s3://bucket/prefix)")
    if fs.isdir(path) and fs.exists(path.rstrip("/") + "/_delta_log"):
        return "delta"
    files = data_files(url, fs)
    kinds = {_kind(f) for f in files}
    if kinds == {"csv"}:
        return "csv"
    if kinds <= {"parquet"}:
        return "parquet"
    raise DataError(
        f"{url} mixes file kinds ({', '.join(sorted(k or 'unknown' for k in kinds))})",
        "register one kind per table, or pass --format",
    )


def _kind(path: str) -> str | None:
    low = path.lower()
    if low.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if low.endswith((".csv", ".tsv", ".txt", ".csv.gz")):
        return "csv"
    return None


def data_files(url: str, fs: fsspec.AbstractFileSystem, kind: str | None = None) -> list[str]:
    """Data files under ``url`` (a file or a folder, recursively) as URIs; hidden and _-prefixed skipped."""
    path = _fs_path(url).rstrip("/")
    if not fs.exists(path):
        raise NotFoundError(f"{url} does not exist", "check the path (local folder/file or s3://bucket/prefix)")
    if not fs.isdir(path):
        return [_uri(url, path)]
    found = []
    for f in sorted(fs.find(path)):
        rel = f[len(path) :].lstrip("/")
        if any(part.startswith((".", "_")) for part in rel.split("/")):
            continue
        if kind is None or _kind(f) == kind:
            found.append(_uri(url, f))
    if not found:
        what = f"{kind} files" if kind else "data files"
        raise DataError(f"no {what} under {url}", "the folder is empty; point at the folder that holds the files")
    return found


def _same_storage(url: str, lake: Lake) -> None:
    if url.startswith("s3://") != lake.is_s3:
        raise ConfigError(
            f"{url} is on other storage than the lake ({lake.url}); it cannot be read in place",
            "add --copy to ingest it into the lake",
        )


# --- parquet in place --------------------------------------------------------------------------------
def hive_values(root: str, uri: str) -> dict[str, str]:
    """``key=value`` folders between ``root`` and the file (in order)."""
    from urllib.parse import unquote

    rel = uri[len(root) :].lstrip("/")
    parts = rel.split("/")[:-1]
    return dict(unquote(p).split("=", 1) for p in parts if "=" in p)


def _partition_type(values: list[str]) -> pa.DataType:
    if values and all(re.fullmatch(r"-?\d{1,9}", v) for v in values):
        return pa.int32()
    return pa.string()


def _register_parquet(name: str, url: str, fs: fsspec.AbstractFileSystem, lake: Lake) -> P.Registration:
    _same_storage(url, lake)
    files = data_files(url, fs, "parquet")
    root = url.rstrip("/") if fs.isdir(_fs_path(url)) else url.rsplit("/", 1)[0]
    layouts = {f: hive_values(root, f) for f in files}
    keys = {tuple(v) for v in layouts.values()}
    if len(keys) > 1:
        a, b = sorted(keys)[:2]
        raise DataError(
            f"{url} mixes partition layouts ({'/'.join(a) or 'none'} vs {'/'.join(b) or 'none'})",
            "every file must sit at the same depth of key=value folders",
        )
    part_cols = list(next(iter(keys)))
    metas, schema = _read_footers(files, fs)
    clash = [c for c in part_cols if c in schema.names]
    if clash:
        raise DataError(
            f"{url}: partition column {clash[0]!r} is also stored inside the files",
            "add --copy (the copy keeps one column), or remove the column from the files",
        )
    part_types = {c: _partition_type([layouts[f][c] for f in files]) for c in part_cols}
    full = pa.schema([*schema, *(pa.field(c, t) for c, t in part_types.items())])
    actions = [_add_action(f, fs, metas[f], layouts[f]) for f in files]
    _write_log(lake, name, full, part_cols, actions, {"origin": url, "format": "parquet", "mode": "in_place"})
    roots = [root.rstrip("/") + "/"]
    return P.Registration(
        name=name,
        origin_url=url,
        format="parquet",
        mode="in_place",
        roots=roots,
        partition_columns=part_cols,
        files=len(files),
        bytes=sum(a.size for a in actions),
        rows=sum(m.num_rows for m in metas.values()),
        registered_at=dt.datetime.now(dt.UTC),
        details={"column_warnings": column_warnings(full.names)},
    )


def _read_footers(files: list[str], fs: fsspec.AbstractFileSystem) -> tuple[dict[str, Any], pa.Schema]:
    """Footer metadata of every file (no data read); refuses files whose schemas differ."""
    metas: dict[str, Any] = {}
    first: pa.Schema | None = None
    for f in files:
        try:
            with fs.open(_fs_path(f), "rb") as fh:
                meta = pq.read_metadata(fh)
        except Exception as e:
            raise DataError(f"{f} is not a readable Parquet file: {e}", "the file is truncated or corrupt") from e
        schema = meta.schema.to_arrow_schema().remove_metadata()
        if first is None:
            first = schema
        elif not schema.equals(first):
            raise DataError(f"{f} has another schema than {files[0]}: {_schema_diff(first, schema)}", _MIXED_HINT)
        metas[f] = meta
    assert first is not None
    return metas, first


_MIXED_HINT = (
    "register files with one schema per table (re-export the odd files), or add --copy, "
    "which casts numeric columns to a common type"
)


def _schema_diff(a: pa.Schema, b: pa.Schema) -> str:
    for col in sorted(set(a.names) ^ set(b.names)):
        return f"column {col!r} only in {'the first' if col in a.names else 'this'} file"
    for f in a:
        other = b.field(f.name)
        if other.type != f.type:
            return f"column {f.name!r} is {other.type} here and {f.type} there"
    return "column order differs"


def _add_action(uri: str, fs: fsspec.AbstractFileSystem, meta: Any, partition: dict[str, str]) -> Any:
    from deltalake.writer import AddAction, DeltaJSONEncoder, get_file_stats_from_metadata

    info = fs.info(_fs_path(uri))
    try:
        stats = get_file_stats_from_metadata(meta, -1, None)
    except (pa.ArrowException, ValueError, TypeError):  # e.g. DECIMAL statistics: keep the row count
        stats = {"numRecords": meta.num_rows}
    path = uri if uri.startswith("s3://") else "file://" + uri
    return AddAction(
        path, int(info["size"]), dict(partition), int(time.time() * 1000), True, json.dumps(stats, cls=DeltaJSONEncoder)
    )


def _write_log(
    lake: Lake, name: str, schema: pa.Schema, part_cols: list[str], actions: list[Any], record: dict[str, Any]
) -> None:
    """Create ``<lake>/<name>`` holding only a Delta log over ``actions`` (removed again on failure)."""
    from deltalake import CommitProperties, DeltaTable

    try:
        DeltaTable.create(
            lake.table_uri(name),
            schema=schema,
            mode="error",
            partition_by=part_cols or None,
            storage_options=lake.storage_options,
            custom_metadata={REGISTERED_KEY: json.dumps(record)},
        )
        table = DeltaTable(lake.table_uri(name), storage_options=lake.storage_options)
        props = CommitProperties(custom_metadata={REGISTERED_KEY: json.dumps(record)})
        table._table.create_write_transaction(actions, "append", part_cols, schema, None, props, None)
    except Exception as e:
        _drop_table(lake, name)
        if isinstance(e, WorkbenchError):
            raise
        raise DataError(f"cannot register {name!r}: {e}", "check the files' column names and types") from e


# --- delta in place ---------------------------------------------------------------------------------
def _register_delta(name: str, url: str, lake: Lake) -> P.Registration:
    from deltalake import DeltaTable

    _same_storage(url, lake)
    options = lake.storage_options if url.startswith("s3://") else {}
    try:
        src = DeltaTable(url, storage_options=options)
    except Exception as e:
        raise DataError(
            f"{url} cannot be opened as a Delta table: {str(e).splitlines()[0]}",
            "the table may use a newer Delta protocol than this workbench reads; add --copy after "
            "exporting it to Parquet, or check the path",
        ) from e
    check_protocol(url, src)
    schema = src.schema().to_pyarrow()
    part_cols = list(src.metadata().partition_columns)
    adds = src.get_add_actions(flatten=True).to_pydict()
    actions = []
    from deltalake.writer import AddAction

    for i, rel in enumerate(adds["path"]):
        uri = rel if "://" in rel else f"{url.rstrip('/')}/{rel}"
        if not uri.startswith(("s3://", "file://")):
            uri = "file://" + uri
        parts = {c: (None if adds[f"partition.{c}"][i] is None else str(adds[f"partition.{c}"][i])) for c in part_cols}
        stats = {"numRecords": adds["num_records"][i]} if "num_records" in adds else {}
        actions.append(
            AddAction(uri, int(adds["size_bytes"][i]), parts, int(time.time() * 1000), True, json.dumps(stats))
        )
    record = {"origin": url, "format": "delta", "mode": "in_place", "source_version": int(src.version())}
    _write_log(lake, name, schema, part_cols, actions, record)
    roots = [url.rstrip("/") + "/"]
    return P.Registration(
        name=name,
        origin_url=url,
        format="delta",
        mode="in_place",
        roots=roots,
        partition_columns=part_cols,
        files=len(actions),
        bytes=sum(a.size for a in actions),
        rows=int(sum(adds.get("num_records", []) or [0])),
        registered_at=dt.datetime.now(dt.UTC),
        details={"source_version": int(src.version()), "column_warnings": column_warnings(schema.names)},
    )


def check_protocol(url: str, table: Any) -> None:
    """Refuse Delta features that a reader of the plain file list would silently get wrong."""
    proto = table.protocol()
    features = set(proto.reader_features or [])
    config = table.metadata().configuration or {}
    if proto.min_reader_version > 3:
        raise DataError(
            f"{url} needs Delta reader version {proto.min_reader_version}; this workbench reads up to 3",
            "export the table to Parquet and register that, or add --copy",
        )
    if proto.min_reader_version == 2 and config.get("delta.columnMapping.mode", "none") != "none":
        features.add("columnMapping")
    unsupported = sorted(features - SUPPORTED_READER_FEATURES)
    if unsupported:
        raise DataError(
            f"{url} uses Delta reader features this workbench does not read: {', '.join(unsupported)}",
            "rewrite the table without them (e.g. REORG/purge deletion vectors) or export it to Parquet",
        )


# --- shared -------------------------------------------------------------------------------------
def column_warnings(names: Sequence[str]) -> list[str]:
    """Columns that need double quotes in SQL (spaces, symbols, reserved words)."""
    from sqlglot.tokens import Tokenizer, TokenType

    out = []
    for n in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n):
            out.append(f'column {n!r} needs double quotes in SQL: "{n}"')
        elif Tokenizer.KEYWORDS.get(n.upper(), TokenType.VAR) != TokenType.VAR:
            out.append(f'column {n!r} is an SQL keyword; quote it in SQL: "{n}"')
    return out


def _drop_table(lake: Lake, name: str) -> None:
    """Remove ``<lake>/<name>`` (the log, and files the workbench wrote for a copy)."""
    path = lake.fs_path(lake.table_uri(name))
    try:
        if lake.fs.exists(path):
            lake.fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def _forget_catalog_table(catalog: Catalog, name: str) -> None:
    import sqlalchemy as sa

    from workbench.catalog import schema as S

    with catalog._tx() as conn:
        for table, col in (
            (S.columns, S.columns.c.table_name),
            (S.partition_stats, S.partition_stats.c.table_name),
            (S.versions, S.versions.c.table_name),
        ):
            conn.execute(sa.delete(table).where(col == name))
        conn.execute(sa.delete(S.tables).where(S.tables.c.name == name))


# --- copies (CSV, or --copy) --------------------------------------------------------------------------
def plain_name(column: str) -> str:
    """A column name usable unquoted in SQL: snake_case, keywords get a trailing ``_``."""
    from sqlglot.tokens import Tokenizer, TokenType

    out = re.sub(r"[^0-9a-zA-Z]+", "_", column.strip()).strip("_").lower() or "column"
    if out[0].isdigit():
        out = "c_" + out
    if Tokenizer.KEYWORDS.get(out.upper(), TokenType.VAR) != TokenType.VAR:
        out += "_"
    return out


def _read_csv(uri: str, fs: fsspec.AbstractFileSystem, encoding: str) -> pa.Table:
    import codecs
    import csv
    import io

    import pyarrow.csv as pacsv

    try:
        codecs.lookup(encoding)
    except LookupError as e:
        raise ConfigError(f"unknown encoding {encoding!r}", "use e.g. utf-8, latin-1, cp1252, utf-16") from e
    data = fs.cat_file(_fs_path(uri))
    if not data.strip():
        raise DataError(f"{uri} is empty", "re-export the file with a header and rows")
    if encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(
                f"{uri} is not UTF-8 (byte {e.start}: {data[e.start : e.start + 1]!r})",
                "pass the file's encoding, e.g. --encoding latin-1 (or cp1252, utf-16)",
            ) from e
    try:
        # every field as text: workbench.lake.types decides the types (leading zeros, US dates, $1,234)
        header = next(csv.reader(io.StringIO(data.decode(encoding, errors="replace"))), [])
        return pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=1 << 24),
            convert_options=pacsv.ConvertOptions(
                column_types={c: pa.string() for c in header},
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
                auto_dict_encode=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as e:
        msg = str(e).splitlines()[0]
        hint = (
            "a row has a different number of fields than the header (an unquoted comma or a cut line); fix that row"
            if "Expected" in msg and "columns" in msg
            else "fix or re-export the file (UTF-8 CSV with a header row)"
        )
        raise DataError(f"{uri} cannot be parsed as CSV: {msg}", hint) from e


def _normalise(table: pa.Table, counts: dict[str, int], notes: list[str]) -> pa.Table:
    """Trim strings, blanks to NULL, and give text columns their real type (``workbench.lake.types``)."""
    import pyarrow.compute as pc

    cols = []
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
            col = col.cast(pa.string())
            trimmed = pc.utf8_trim_whitespace(col)
            counts["trimmed_values"] += int(pc.sum(pc.not_equal(trimmed, col)).as_py() or 0)
            blank = pc.equal(trimmed, "")
            counts["blank_to_null"] += int(pc.sum(blank).as_py() or 0)
            inferred = infer_type(name, pc.if_else(blank, pa.scalar(None, pa.string()), trimmed))
            col = inferred.array
            if inferred.note and inferred.note not in notes:
                notes.append(inferred.note)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _copy_source_files(url: str, fs: fsspec.AbstractFileSystem, fmt: str, lake: Lake) -> list[str]:
    if fmt != "delta":
        return data_files(url, fs, "csv" if fmt == "csv" else "parquet")
    from deltalake import DeltaTable

    src = DeltaTable(url, storage_options=lake.storage_options if url.startswith("s3://") else {})
    check_protocol(url, src)
    if src.metadata().partition_columns:
        raise DataError(f"copying the partitioned Delta table {url} is not supported", "register it in place")
    return [u[len("file://") :] if u.startswith("file://") else u for u in src.file_uris()]


def _read_source(f: str, fs: fsspec.AbstractFileSystem, fmt: str, encoding: str, renamed: dict[str, str]) -> pa.Table:
    """One source file with plain column names (CSV fields still text; records the renames)."""
    if fmt == "csv":
        raw = _read_csv(f, fs, encoding)
    else:
        with fs.open(_fs_path(f), "rb") as fh:
            raw = pq.read_table(fh)
    names = [plain_name(c) for c in raw.column_names]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{f}: columns collide as {dup[0]!r} after normalising names", "rename those columns")
    renamed.update({c: n for c, n in zip(raw.column_names, names, strict=True) if c != n})
    return raw.rename_columns(names)


def _copy_into_lake(
    name: str, url: str, fs: fsspec.AbstractFileSystem, fmt: str, lake: Lake, partition_by: list[str], encoding: str
) -> P.Registration:
    """Read every file, normalise, unify schemas, write partitioned Parquet + one Delta commit."""
    import uuid

    import pyarrow.compute as pc

    from workbench.lake.delta import commit, partitions_of, write_data_file
    from workbench.lake.quality import TableQuality

    files = _copy_source_files(url, fs, fmt, lake)
    counts = {"trimmed_values": 0, "blank_to_null": 0}
    renamed: dict[str, str] = {}
    type_notes: list[str] = []
    parts = [_read_source(f, fs, fmt, encoding, renamed) for f in files]
    # typed once over all files: a folder of monthly exports gets one date order, not one per file
    data = _normalise(_unify(files, parts), counts, type_notes)
    data = _derive_time(data, partition_by)
    missing = [c for c in partition_by if c not in data.column_names]
    if missing:
        raise ConfigError(
            f"--partition-by names unknown column {missing[0]!r}", f"columns: {', '.join(data.column_names)}"
        )
    for c in partition_by:
        if data.column(c).null_count:
            raise DataError(f"partition column {c!r} has empty values", "fill them, or partition by another column")
    batch = uuid.uuid4().hex
    actions = []
    if partition_by:
        keys = data.select(partition_by).group_by(partition_by).aggregate([]).to_pylist()
        for i, key in enumerate(keys):
            mask = None
            for c, v in key.items():
                cond = pc.equal(data.column(c), pa.scalar(v, data.schema.field(c).type))
                mask = cond if mask is None else pc.and_(mask, cond)
            chunk = data.filter(mask)
            actions.append(write_data_file(lake, name, chunk, {c: str(v) for c, v in key.items()}, batch, i))
    else:
        actions.append(write_data_file(lake, name, data, {}, batch, 0))
    record = {"origin": url, "format": fmt, "mode": "copy", "files": files, "batch_id": batch}
    try:
        version = commit(lake, name, data.schema, partition_by, actions, record)
    except WorkbenchError:
        _drop_table(lake, name)
        raise
    quality = TableQuality(
        rows_read=data.num_rows,
        rows_written=data.num_rows,
        files=files,
        data_files_written=len(actions),
        version=version,
        touched_partitions=partitions_of(actions),
    )
    return P.Registration(
        name=name,
        origin_url=url,
        format=fmt,
        mode="copy",
        roots=[],
        partition_columns=partition_by,
        files=len(actions),
        bytes=sum(a.size for a in actions),
        rows=data.num_rows,
        registered_at=dt.datetime.now(dt.UTC),
        details={
            "quality": {**quality.__dict__, **counts},
            "renamed_columns": renamed,
            "types": {f.name: str(f.type) for f in data.schema},
            "type_notes": type_notes,
        },
    )


def _unify(files: list[str], parts: list[pa.Table]) -> pa.Table:
    """One table from per-file tables: same columns required, types promoted (int + float -> float)."""
    first = parts[0]
    for f, t in zip(files[1:], parts[1:], strict=True):
        if set(t.column_names) != set(first.column_names):
            odd = sorted(set(t.column_names) ^ set(first.column_names))[0]
            raise DataError(
                f"{f} has other columns than {files[0]} (column {odd!r})",
                "register files with the same header as one table, or register them as separate tables",
            )
    try:
        schema = pa.unify_schemas([t.select(first.column_names).schema for t in parts], promote_options="permissive")
        return pa.concat_tables([t.select(first.column_names).cast(schema) for t in parts])
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as e:
        raise DataError(f"files under one table have incompatible column types: {e}", _MIXED_HINT) from e


def _derive_time(data: pa.Table, partition_by: list[str]) -> pa.Table:
    """``--partition-by year,month`` on data with one date column derives those columns from it."""
    import pyarrow.compute as pc

    wanted = [c for c in ("year", "month") if c in partition_by and c not in data.column_names]
    if not wanted:
        return data
    dates = [f.name for f in data.schema if pa.types.is_date(f.type) or pa.types.is_timestamp(f.type)]
    if len(dates) != 1:
        raise ConfigError(
            f"cannot derive {wanted[0]!r}: the data has {len(dates)} date columns", "partition by existing columns"
        )
    col = data.column(dates[0])
    for c in wanted:
        data = data.append_column(c, (pc.year(col) if c == "year" else pc.month(col)).cast(pa.int32()))
    return data
