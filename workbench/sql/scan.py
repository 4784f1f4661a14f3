"""What a query will read: the pruned file list and byte count of each lake table it uses.

Files come from the Delta log (``Lake.files`` with partition filters), sizes from the Delta
add actions, so ``files_scanned``/``bytes_scanned`` are exact before anything is read, and a
router can use the bytes as its cost estimate. A :class:`Snapshot` caches the log per table
version so repeated queries do not re-read it; a new commit is picked up on the next query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from workbench.lake.delta import add_actions
from workbench.lake.storage import Lake
from workbench.sql import pruning
from workbench.sql.versions import delta_version

#: Arrow/Delta primitive type -> DuckDB type for hive partition columns
_DUCK_TYPES = {
    "integer": "INTEGER",
    "long": "BIGINT",
    "short": "SMALLINT",
    "byte": "TINYINT",
    "string": "VARCHAR",
    "date": "DATE",
    "double": "DOUBLE",
    "float": "FLOAT",
    "boolean": "BOOLEAN",
}


@dataclass
class TableMeta:
    """One Delta table version: sizes and partition values of its files."""

    name: str
    version: int
    uri: str
    partition_columns: list[str]
    partition_types: dict[str, str]
    sizes: dict[str, int]
    values: dict[str, list[Any]]
    total_bytes: int


@dataclass
class TableScan:
    """The files one table contributes to a query."""

    name: str
    version: int
    files: list[str]
    bytes: int
    partition_types: dict[str, str] = field(default_factory=dict)
    #: one file to take the schema from when pruning left no file (an empty view keeps its columns)
    schema_files: list[str] = field(default_factory=list)


class Snapshot:
    """Delta metadata of the lake tables, refreshed when a table's version changes."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._meta: dict[str, TableMeta] = {}

    def meta(self, name: str) -> TableMeta:
        """The table's metadata at its latest version; the log is listed, not replayed, when unchanged."""
        cached = self._meta.get(name)
        if cached is not None and cached.version == delta_version(self.lake, name):
            return cached
        dt = self.lake.table(name)
        version = int(dt.version())
        parts = list(dt.metadata().partition_columns)
        types = {}
        for f in dt.schema().fields:
            if f.name in parts:
                types[f.name] = _DUCK_TYPES.get(str(getattr(f.type, "type", f.type)), "VARCHAR")
        actions = add_actions(dt).to_pydict()
        sizes = dict(zip(actions["path"], actions["size_bytes"], strict=True))
        values = {c: sorted({v for v in actions.get(f"partition.{c}", []) if v is not None}, key=str) for c in parts}
        meta = TableMeta(name, version, self.lake.table_uri(name), parts, types, sizes, values, sum(sizes.values()))
        self._meta[name] = meta
        return meta

    def plan(self, tree: exp.Expression, tables: Iterable[str] | Mapping[str, str]) -> dict[str, TableScan]:
        """Pruned scans for the query ``tree``: one per name it reads.

        ``tables`` is a set of lake tables, or a mapping from the name the query uses to the
        Delta table behind it (a rollup view ``rollup_daily`` reads ``rollups/daily``); the
        one scan planner for base tables and rollups alike.
        """
        sources = dict(tables) if isinstance(tables, Mapping) else {t: t for t in tables}
        metas = {name: self.meta(table) for name, table in sorted(sources.items())}
        conds = pruning.collect(tree, {t: m.partition_columns for t, m in metas.items() if m.partition_columns})
        scans: dict[str, TableScan] = {}
        for name, meta in metas.items():
            refs = conds[name].references if name in conds else [[]]
            files: set[str] = set()
            for ref in refs:
                files |= set(self._files(meta, ref))
            ordered = sorted(files)
            size = sum(self.file_size(meta, f) for f in ordered)
            schema = [] if ordered else self.lake.files(meta.name, version=meta.version)[:1]
            scans[name] = TableScan(name, meta.version, ordered, size, meta.partition_types, schema)
        return scans

    def _files(self, meta: TableMeta, conds: list[pruning.Condition]) -> list[str]:
        filters = pruning.delta_filters(conds, meta.values) if conds else []
        if any(not vals for _, _, vals in filters):
            return []
        return self.lake.files(meta.name, filters or None, version=meta.version)

    @staticmethod
    def file_size(meta: TableMeta, uri: str) -> int:
        rel = uri[len(meta.uri) + 1 :] if uri.startswith(meta.uri) else uri
        if rel in meta.sizes:
            return meta.sizes[rel]
        if f"file://{rel}" in meta.sizes:  # registered in place: absolute add path
            return meta.sizes[f"file://{rel}"]
        from urllib.parse import unquote

        for path, size in meta.sizes.items():
            if unquote(path) == unquote(rel):
                return size
        return 0
