"""Where the lake lives: one URL (local folder or ``s3://bucket/prefix``) behind fsspec and Delta.

Every reader goes through the Delta log, never a glob: :meth:`Lake.files` returns the data
files of the current (or a given) version, optionally pruned by partition filters, so
DuckDB and Dask read exactly what a commit made visible (DESIGN.md: reading DuckDB through
its own ``read_parquet`` over the file list is ~6x faster than through pyarrow datasets).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ServiceUnavailable, unknown_name

if TYPE_CHECKING:
    import fsspec
    from deltalake import DeltaTable

#: a Delta partition filter: (column, op, value) with op in =, !=, in, not in
PartitionFilter = tuple[str, str, Any]


def is_remote(url: str) -> bool:
    return "://" in url and not url.startswith("file://")


def s3_storage_options(settings: Settings) -> dict[str, str]:
    """delta-rs (object_store) options for the configured S3 endpoint and credentials."""
    s3 = settings.s3
    opts: dict[str, str] = {"AWS_REGION": s3.region}
    if s3.endpoint_url:
        opts["AWS_ENDPOINT_URL"] = s3.endpoint_url
    if s3.access_key_id is not None:
        opts["AWS_ACCESS_KEY_ID"] = s3.access_key_id.get_secret_value()
    if s3.secret_access_key is not None:
        opts["AWS_SECRET_ACCESS_KEY"] = s3.secret_access_key.get_secret_value()
    if s3.allow_http or (s3.endpoint_url or "").startswith("http://"):
        opts["AWS_ALLOW_HTTP"] = "true"
    # a silent endpoint must fail in bounded time (object_store's defaults wait minutes)
    opts["timeout"] = f"{int(settings.s3.timeout_s)}s"
    opts["connect_timeout"] = f"{int(settings.s3.connect_timeout_s)}s"
    # delta-rs needs a locking provider for concurrent S3 writers; one writer commits here.
    opts["AWS_S3_ALLOW_UNSAFE_RENAME"] = "true"
    return opts


def s3_fsspec_options(settings: Settings) -> dict[str, Any]:
    """s3fs keyword arguments for the same endpoint and credentials."""
    s3 = settings.s3
    kwargs: dict[str, Any] = {
        "client_kwargs": {"region_name": s3.region},
        "config_kwargs": {
            "connect_timeout": s3.connect_timeout_s,
            "read_timeout": s3.timeout_s,
            "retries": {"max_attempts": s3.max_attempts},
        },
    }
    if s3.endpoint_url:
        kwargs["client_kwargs"]["endpoint_url"] = s3.endpoint_url
    if s3.access_key_id is not None:
        kwargs["key"] = s3.access_key_id.get_secret_value()
    if s3.secret_access_key is not None:
        kwargs["secret"] = s3.secret_access_key.get_secret_value()
    return kwargs


def filesystem_for(url: str, settings: Settings | None = None) -> fsspec.AbstractFileSystem:
    """An fsspec filesystem for any URL the workbench accepts (local path or s3://)."""
    import fsspec

    settings = settings or get_settings()
    if url.startswith("s3://"):
        return fsspec.filesystem("s3", **s3_fsspec_options(settings))
    if is_remote(url):
        protocol = url.split("://", 1)[0]
        return fsspec.filesystem(protocol)
    return fsspec.filesystem("file")


class Lake:
    """The lake: Delta tables under one root URL."""

    def __init__(self, url: str | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        raw = url or self.settings.lake
        if raw.startswith("file://"):
            raw = raw[len("file://") :]
        if is_remote(raw):
            if not raw.startswith("s3://"):
                raise ConfigError(f"unsupported lake URL {raw!r}", "use a local folder or s3://bucket/prefix")
            self.url = raw.rstrip("/")
        else:
            self.url = str(Path(raw).expanduser().resolve())

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    # --- locations -----------------------------------------------------------------------
    @property
    def is_s3(self) -> bool:
        return self.url.startswith("s3://")

    def local_paths(self) -> list[str]:
        """Folders of this machine that lake tasks read (none for an ``s3://`` lake).

        A Dask worker that can see them can run ingest and rollup tasks
        (``workbench.cluster.client_for_paths``).
        """
        if self.is_s3:
            return []
        return [self.url] if Path(self.url).is_dir() else []

    @property
    def storage_options(self) -> dict[str, str]:
        """Options for deltalake (empty for local folders)."""
        return s3_storage_options(self.settings) if self.is_s3 else {}

    @cached_property
    def fs(self) -> fsspec.AbstractFileSystem:
        return filesystem_for(self.url, self.settings)

    def uri(self, *parts: str) -> str:
        """A URI below the lake root (``/`` joined, also for S3)."""
        return "/".join([self.url, *[p.strip("/") for p in parts if p]])

    def table_uri(self, name: str) -> str:
        return self.uri(name)

    def fs_path(self, uri: str) -> str:
        """The path fsspec expects for a lake URI (``bucket/key`` for S3)."""
        return uri[len("s3://") :] if uri.startswith("s3://") else uri

    # --- tables --------------------------------------------------------------------------
    def exists(self, name: str) -> bool:
        try:
            return bool(self.fs.exists(self.fs_path(self.uri(name, "_delta_log"))))
        except Exception as e:  # network / credentials
            raise ServiceUnavailable(f"cannot reach the lake at {self.url}: {e}", _reach_hint(self)) from e

    def tables(self, prefix: str = "") -> list[str]:
        """Names of the Delta tables at the lake root (and under ``prefix``, e.g. ``rollups``)."""
        base = self.fs_path(self.uri(prefix)) if prefix else self.fs_path(self.url)
        try:
            if not self.fs.exists(base):
                return []
            entries = self.fs.ls(base, detail=False)
        except Exception as e:
            raise ServiceUnavailable(f"cannot list the lake at {self.url}: {e}", _reach_hint(self)) from e
        names = []
        for entry in entries:
            name = entry.rstrip("/").rsplit("/", 1)[-1]
            if name.startswith((".", "_")):
                continue
            rel = f"{prefix}/{name}" if prefix else name
            if self.fs.exists(self.fs_path(self.uri(rel, "_delta_log"))):
                names.append(rel)
        return sorted(names)

    def table(self, name: str, version: int | None = None) -> DeltaTable:
        """Open a Delta table; unknown names get "did you mean ...?"."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.table_uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError as e:
            raise unknown_name("table", name, self.tables() + self.tables("rollups")) from e
        except OSError as e:
            raise ServiceUnavailable(f"cannot open table {name!r} at {self.url}: {e}", _reach_hint(self)) from e

    def files(
        self,
        name: str,
        partition_filters: Sequence[PartitionFilter] | None = None,
        version: int | None = None,
    ) -> list[str]:
        """Data files of a table version as absolute URIs, pruned by Delta partition filters."""
        return self.uris(self.table(name, version=version), partition_filters)

    @staticmethod
    def uris(dt: DeltaTable, partition_filters: Sequence[PartitionFilter] | None = None) -> list[str]:
        """Data files of an opened table as absolute URIs (one log replay serves its stats and files)."""
        filters = list(partition_filters) if partition_filters else None
        return [_normalise_uri(u) for u in dt.file_uris(partition_filters=filters)]

    def version(self, name: str) -> int:
        return int(self.table(name).version())


def _normalise_uri(uri: str) -> str:
    # a table registered in place (workbench.lake.register) holds absolute add paths, which
    # delta-rs appends to the table root as ".../<table>/file:/abs/path" or ".../s3:/bucket/key"
    for marker, prefix in (("/file:/", "/"), ("/s3:/", "s3://")):
        at = uri.find(marker, 1)
        if at > 0:
            return prefix + uri[at + len(marker) :].lstrip("/")
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("s3:/") and not uri.startswith("s3://"):  # deltalake 1.x, absolute add path on S3
        return "s3://" + uri[len("s3:/") :]
    return uri


def _reach_hint(lake: Lake) -> str:
    if lake.is_s3:
        return "check WORKBENCH_S3__ENDPOINT_URL and the S3 credentials, and that the endpoint is up"
    return f"check that {lake.url} exists and is readable"


def configure_process_env(settings: Settings | None = None) -> None:
    """Export AWS_* variables for libraries that only read the environment (pyarrow, DuckDB)."""
    settings = settings or get_settings()
    for key, value in s3_storage_options(settings).items():
        if key.startswith("AWS_") and key not in os.environ:
            os.environ[key] = value
