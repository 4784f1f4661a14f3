"""Rollups: pre-aggregated Delta tables over ``sales``, built with Dask and refreshed per month.

Why: a group-by over 100M rows costs seconds; the same answer from a rollup of ~100k rows
costs milliseconds (DESIGN.md: 3.6 ms). A rollup keeps everything needed to re-aggregate
exactly: the sum of each measure, the row count (``rollup_rows``) and, where declared, the
min/max of a measure. Every rollup carries ``year`` and ``month`` (and a daily one ``date``),
so month, quarter and year groupings are covered by the daily rollup.

Layout: ``<lake>/rollups/<name>``, partitioned by ``year``. A build aggregates one base month
per Dask task (each task reads only that month's files from the Delta log), so a refresh after
an ingest recomputes only the months the ingest touched and replaces them with a single
Delta overwrite restricted by a predicate: readers see the old or the new month, never half.

Freshness lives in the rollup itself: each rollup commit stores the ``sales`` version it was
computed from (commit metadata ``workbench.rollup``). The router only uses a rollup whose
base version equals the current ``sales`` version, so a stale rollup can cost speed, never
correctness, and a lake copied elsewhere (or read with a fresh catalog) stays consistent.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from workbench.config import RollupSpec, Settings
from workbench.errors import ConfigError, DataError
from workbench.lake.delta import add_actions
from workbench.lake.schema import SALES
from workbench.lake.storage import Lake

BASE_TABLE = "sales"
PREFIX = "rollups"
#: commit metadata key holding {"base_version": int, "definition": {...}}
METADATA_KEY = "workbench.rollup"
#: row-count column (a name no analyst query uses, so aliases never collide with it)
ROWS = "rollup_rows"
#: columns every rollup groups by, whatever its declared dimensions
TIME_COLUMNS = ("year", "month")
PARTITION_BY = ["year"]

Month = tuple[int, int]


@dataclass(frozen=True)
class Rollup:
    """A resolved rollup: its columns, where it lives, and how it maps onto ``sales``."""

    name: str
    dimensions: tuple[str, ...]
    measures: tuple[str, ...]
    min_max: tuple[str, ...] = ()
    grain: str = "day"

    @property
    def table(self) -> str:
        """Lake table name (``Lake.table(...)``)."""
        return f"{PREFIX}/{self.name}"

    @property
    def view(self) -> str:
        """Name the engines bind the rollup to in rewritten SQL."""
        return f"rollup_{self.name}"

    @staticmethod
    def min_col(measure: str) -> str:
        return f"rollup_min_{measure}"

    @staticmethod
    def max_col(measure: str) -> str:
        return f"rollup_max_{measure}"

    def definition(self) -> dict[str, Any]:
        return {
            "base_table": BASE_TABLE,
            "dimensions": list(self.dimensions),
            "measures": list(self.measures),
            "min_max": list(self.min_max),
            "grain": self.grain,
        }


def resolve(spec: RollupSpec) -> Rollup:
    """A :class:`Rollup` from its configuration; unknown columns are a ConfigError."""
    known = set(SALES.names)
    dims = list(dict.fromkeys([*spec.dimensions, *TIME_COLUMNS]))
    min_max = list(getattr(spec, "min_max", None) or [])
    for col in [*dims, *spec.measures, *min_max]:
        if col not in known:
            raise ConfigError(
                f"rollup {spec.name!r} names unknown sales column {col!r}",
                f"use columns of sales: {', '.join(SALES.names)}",
            )
    numeric = {f.name for f in SALES if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)}
    for col in [*spec.measures, *min_max]:
        if col not in numeric:
            raise ConfigError(f"rollup {spec.name!r}: measure {col!r} is not numeric", "measures must be numbers")
    return Rollup(spec.name, tuple(dims), tuple(spec.measures), tuple(min_max), spec.grain)


def configured(settings: Settings) -> list[Rollup]:
    return [resolve(s) for s in settings.rollups]


# --- aggregation (one base month per task, in bounded batches) -----------------------------------------


#: base rows aggregated at once: a task's memory is bounded by this, not by the rows of a month
BATCH_ROWS = 1 << 20
#: partial rollup rows held per rollup before they are folded into one
COMBINE_ROWS = 1 << 19


def _iter_month(
    lake: Lake, files: list[str], columns: list[str], partition_types: dict[str, pa.DataType]
) -> Iterator[pa.Table]:
    """The needed columns of one month's files in batches, hive partition values added from the paths."""
    from urllib.parse import unquote

    fs = lake.fs if lake.is_s3 else None  # pyarrow's own local reader is faster than fsspec's
    stored = [c for c in columns if c not in partition_types]
    # files rewritten by deltalake 1.x (delete, optimize) carry view types (string_view): read as the lake schema
    lake_types = pa.schema([SALES.field(c) for c in stored])
    for uri in files:
        path = lake.fs_path(uri)
        parts = dict(seg.split("=", 1) for seg in path.split("/") if "=" in seg)
        source = fs.open(path, "rb") if fs is not None else path
        try:
            for batch in pq.ParquetFile(source).iter_batches(batch_size=BATCH_ROWS, columns=stored):
                t = pa.Table.from_batches([batch]).cast(lake_types)
                for col in columns:
                    if col in partition_types:
                        value = pa.scalar(unquote(parts[col])).cast(partition_types[col])
                        t = t.append_column(col, pa.repeat(value, t.num_rows))
                yield t.select(columns)
        finally:
            if fs is not None:
                source.close()  # type: ignore[union-attr]


def aggregate_month(lake: Lake, rollups: Sequence[Rollup], files: list[str]) -> dict[str, pa.Table]:
    """Every rollup's rows for one base month (a Dask task: reads that month's files once).

    Batches of ``BATCH_ROWS`` are aggregated as they are read and the partial aggregates
    combined (sums and counts add, minima and maxima of minima and maxima), so memory stays
    the same whether a month holds 300k rows or 3M.
    """
    needed = sorted({c for r in rollups for c in (*r.dimensions, *r.measures, *r.min_max)}, key=SALES.names.index)
    partition_types = {c: SALES.field(c).type for c in ("year", "month", "region")}
    partials: dict[str, list[pa.Table]] = {r.name: [] for r in rollups}
    combined_rows = dict.fromkeys(partials, 0)
    for data in _iter_month(lake, files, needed, partition_types):
        for r in rollups:
            parts = partials[r.name]
            parts.append(_group(data, r))
            # fold the partials once they outgrow twice the last fold: memory is bounded by the
            # month's distinct groups, not by its batches (was: one partial per 1M rows, all held)
            if len(parts) > 1 and sum(p.num_rows for p in parts) > max(COMBINE_ROWS, 2 * combined_rows[r.name]):
                partials[r.name] = [_combine(pa.concat_tables(parts), r)]
                combined_rows[r.name] = partials[r.name][0].num_rows
        del data
    out = {}
    for r in rollups:
        parts = partials[r.name]
        if not parts:
            out[r.name] = _group(_read_month_empty(needed), r)
        elif len(parts) == 1:
            out[r.name] = parts[0]
        else:
            out[r.name] = _combine(pa.concat_tables(parts), r)
    return out


def _combine(partial: pa.Table, rollup: Rollup) -> pa.Table:
    """Re-aggregate partial rollup rows of the same month (what the router does at query time)."""
    aggs: list[tuple[str, str]] = [(m, "sum") for m in (*rollup.measures, ROWS)]
    aggs += [(Rollup.min_col(m), "min") for m in rollup.min_max] + [(Rollup.max_col(m), "max") for m in rollup.min_max]
    grouped = partial.group_by(list(rollup.dimensions), use_threads=False).aggregate(aggs)
    out = {d: grouped[d] for d in rollup.dimensions}
    out.update({c: grouped[f"{c}_{fn}"] for c, fn in aggs})
    return pa.table(out).sort_by([(d, "ascending") for d in rollup.dimensions])


def _group(data: pa.Table, rollup: Rollup) -> pa.Table:
    aggs: list[tuple[Any, ...]] = [(m, "sum") for m in rollup.measures]
    aggs.append((rollup.dimensions[0], "count", pc.CountOptions(mode="all")))
    aggs += [(m, "min") for m in rollup.min_max] + [(m, "max") for m in rollup.min_max]
    grouped = data.group_by(list(rollup.dimensions), use_threads=False).aggregate(aggs)
    out = {d: grouped[d] for d in rollup.dimensions}
    out.update({m: grouped[f"{m}_sum"] for m in rollup.measures})
    out[ROWS] = grouped[f"{rollup.dimensions[0]}_count"]
    out.update({Rollup.min_col(m): grouped[f"{m}_min"] for m in rollup.min_max})
    out.update({Rollup.max_col(m): grouped[f"{m}_max"] for m in rollup.min_max})
    return pa.table(out).sort_by([(d, "ascending") for d in rollup.dimensions])


# --- build and refresh --------------------------------------------------------------------------------


@dataclass
class RollupBuild:
    """What one build/refresh did (returned to the ingest hook and the CLI)."""

    name: str
    mode: str  # "build" | "refresh" | "skipped"
    months: list[Month] = field(default_factory=list)
    rows: int = 0
    base_version: int | None = None
    version: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "months": [list(m) for m in self.months]}


def base_months(lake: Lake, version: int) -> dict[Month, list[str]]:
    """The data files of each (year, month) in ``sales`` at ``version`` (one read of the Delta log)."""
    dt = lake.table(BASE_TABLE, version=version)
    actions = add_actions(dt).to_pydict()
    root = lake.table_uri(BASE_TABLE)
    out: dict[Month, list[str]] = {}
    for path, y, m in zip(actions["path"], actions["partition.year"], actions["partition.month"], strict=True):
        out.setdefault((int(y), int(m)), []).append(f"{root}/{path}")
    return dict(sorted(out.items()))


def rollup_state(lake: Lake, rollup: Rollup) -> dict[str, Any] | None:
    """The rollup's last commit metadata (``base_version``, ``definition``), None when absent."""
    if not lake.exists(rollup.table):
        return None
    for entry in lake.table(rollup.table).history(1):
        raw = entry.get(METADATA_KEY)
        if raw:
            return dict(json.loads(raw))
    return None


def build(
    lake: Lake,
    settings: Settings,
    months: Iterable[Month] | None = None,
    *,
    rollups: Sequence[Rollup] | None = None,
    previous_version: int | None = None,
    client: Any = None,
) -> list[RollupBuild]:
    """Build the configured rollups, or refresh only ``months`` when that is exact.

    A refresh is exact when the rollup was computed from ``previous_version`` (the ``sales``
    version before the commit that touched ``months``); otherwise (first build, a missed
    refresh, a delete in between) the rollup is rebuilt from every month.
    """

    rollups = list(rollups) if rollups is not None else configured(settings)
    if not rollups or not lake.exists(BASE_TABLE):
        return []
    t0 = time.perf_counter()
    version = lake.version(BASE_TABLE)
    files_of = base_months(lake, version)
    all_months = list(files_of)
    wanted = sorted(set(months)) if months is not None else None
    plans: dict[str, tuple[bool, list[Month]]] = {}
    for r in rollups:
        state = rollup_state(lake, r)
        fresh = (
            state is not None
            and wanted is not None
            and state.get("definition") == r.definition()
            and state.get("base_version") in {previous_version, version}
        )
        if fresh and wanted is not None:
            plans[r.name] = (True, [m for m in wanted if m in set(all_months)])
        else:
            plans[r.name] = (False, all_months)
    todo = sorted({m for _, ms in plans.values() for m in ms})
    staging = Path(tempfile.mkdtemp(prefix="rollups-", dir=settings.home_path))
    try:
        staged = _aggregate_to(staging, lake, rollups, todo, files_of, client, max(1, settings.n_workers))
        out = []
        for r in rollups:
            incremental, ms = plans[r.name]
            full = not incremental
            reader = _staged_reader(staging, r, ms)
            rows = sum(staged[r.name].get(m, 0) for m in ms)
            new_version = _write(lake, r, reader, None if full else ms, version)
            if not full:
                new_version = compact(lake, r, {y for y, _ in ms}, version) or new_version
            out.append(
                RollupBuild(
                    r.name,
                    "build" if full else "refresh",
                    ms,
                    rows,
                    version,
                    new_version,
                    round(time.perf_counter() - t0, 3),
                )
            )
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


#: months aggregated per round: bounds memory to a few months' aggregates at any lake size
MONTHS_PER_ROUND = 4


def _aggregate_to(
    staging: Path,
    lake: Lake,
    rollups: Sequence[Rollup],
    months: list[Month],
    files_of: dict[Month, list[str]],
    client: Any,
    workers: int,
) -> dict[str, dict[Month, int]]:
    """Aggregate ``months`` in rounds and spill each rollup's rows per month as Arrow IPC.

    Returns the rows spilled per rollup and month (what each commit will hold).

    Why rounds and spilling: holding every month's aggregates until the commit made the peak
    memory grow with the lake (2.6 GB for a full build at 100M rows, the product x store
    rollup alone 6.7M rows); now a round holds ``MONTHS_PER_ROUND`` months.
    """
    import dask

    staged: dict[str, dict[Month, int]] = {r.name: {} for r in rollups}
    for start in range(0, len(months), MONTHS_PER_ROUND):
        chunk = months[start : start + MONTHS_PER_ROUND]
        tasks = [dask.delayed(aggregate_month)(lake, rollups, files_of[m]) for m in chunk]
        if client is not None:
            results = client.gather(client.compute(tasks))
        else:
            results = dask.compute(*tasks, scheduler="threads", num_workers=workers)
        for month, tables in zip(chunk, results, strict=True):
            for name, table in tables.items():
                folder = staging / name
                folder.mkdir(exist_ok=True)
                with pa.ipc.new_file(folder / f"{month[0]:04d}-{month[1]:02d}.arrow", table.schema) as sink:
                    sink.write_table(table)
                staged[name][month] = table.num_rows
        del results
    return staged


def _staged_reader(staging: Path, rollup: Rollup, months: list[Month]) -> pa.RecordBatchReader:
    """The staged rows of ``months`` for one rollup, streamed batch by batch."""
    paths = [staging / rollup.name / f"{y:04d}-{m:02d}.arrow" for y, m in months]
    paths = [p for p in paths if p.exists()]
    if not paths:
        empty = _group(_read_month_empty([*rollup.dimensions, *rollup.measures, *rollup.min_max]), rollup)
        return pa.RecordBatchReader.from_batches(empty.schema, empty.to_batches())
    with pa.ipc.open_file(paths[0]) as f:
        schema = f.schema

    def batches() -> Iterator[pa.RecordBatch]:
        for path in paths:
            with pa.memory_map(str(path)) as source, pa.ipc.open_file(source) as f:
                for i in range(f.num_record_batches):
                    yield f.get_batch(i)

    return pa.RecordBatchReader.from_batches(schema, batches())


def _read_month_empty(columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], SALES.field(c).type) for c in columns})


#: a year partition holding more files than this is compacted after a refresh
COMPACT_AT_FILES = 4


def compact(lake: Lake, rollup: Rollup, years: Iterable[int], base_version: int) -> int | None:
    """Merge the small files that refreshes leave in ``years``; the new version, None if nothing to do.

    Why: a refresh replaces its months with a predicate overwrite, which adds a file to the year
    partition each time (measured: 4 files per year after 4 batches, ~12 after a year of monthly
    batches), and every rollup query then opens them all. Compaction is a Delta commit of its own
    carrying the same ``workbench.rollup`` metadata, so the rollup stays fresh for the router;
    readers see the files before or after, never half.
    """
    from deltalake import CommitProperties

    if not lake.exists(rollup.table):
        return None
    dt = lake.table(rollup.table)
    per_year = Counter(str(y) for y in add_actions(dt).to_pydict().get("partition.year", []))
    crowded = sorted(str(y) for y in set(years) if per_year.get(str(y), 0) > COMPACT_AT_FILES)
    if not crowded:
        return None
    meta = {METADATA_KEY: json.dumps({"base_version": base_version, "definition": rollup.definition()})}
    for year in crowded:
        dt.optimize.compact(
            partition_filters=[("year", "=", year)], commit_properties=CommitProperties(custom_metadata=meta)
        )
    return lake.version(rollup.table)


def _write(
    lake: Lake, rollup: Rollup, data: pa.RecordBatchReader, months: list[Month] | None, base_version: int
) -> int:
    """One Delta commit: the whole rollup (``months=None``) or just those months, atomically."""
    from deltalake import CommitProperties, write_deltalake

    meta = {METADATA_KEY: json.dumps({"base_version": base_version, "definition": rollup.definition()})}
    kwargs: dict[str, Any] = {
        "partition_by": PARTITION_BY,
        "mode": "overwrite",
        "storage_options": lake.storage_options or None,
        "commit_properties": CommitProperties(custom_metadata=meta),
    }
    if months is not None and lake.exists(rollup.table):
        if not months:
            return lake.version(rollup.table)
        kwargs["predicate"] = " OR ".join(f"(year = {y} AND month = {m})" for y, m in months)
    else:
        kwargs["schema_mode"] = "overwrite"
    try:
        write_deltalake(lake.table_uri(rollup.table), data, **kwargs)
    except Exception as e:  # delta-rs raises its own exception types (and OSError for storage)
        raise DataError(
            f"cannot write rollup {rollup.name!r}: {e}", "check the lake is writable; rebuild with `workbench rollups`"
        ) from e
    return lake.version(rollup.table)
