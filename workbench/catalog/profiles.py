"""Registrations and profiles of user datasets ("bring your own data"), kept in the catalog.

Two tables of their own (``byod_registrations``, ``byod_profiles``) beside the core catalog
schema rather than new columns in it: the core tables describe *any* lake table and are
synced from the Delta log, while these hold what only a registration knows (where the
user's files live, which folders the engines may read, the quality report of a copy) and a
column profile that is expensive to compute (one scan) and therefore stored per Delta
version. Both backends (SQLite, PostgreSQL) run the same Core statements.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import JSON, BigInteger, Column, DateTime, Integer, MetaData, String, Table, Text

from workbench.catalog.store import Catalog
from workbench.errors import unknown_name

metadata = MetaData()

registrations = Table(
    "byod_registrations",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("origin_url", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("mode", String(16), nullable=False),  # in_place | copy
    #: folders (with a trailing /) the engines must be allowed to read for an in-place table
    Column("roots", JSON, nullable=False, default=list),
    Column("partition_columns", JSON, nullable=False, default=list),
    Column("files", Integer, nullable=False, default=0),
    Column("bytes", BigInteger, nullable=False, default=0),
    Column("rows", BigInteger),
    Column("registered_at", DateTime(timezone=True), nullable=False),
    Column("details", JSON, nullable=False, default=dict),
)

profiles = Table(
    "byod_profiles",
    metadata,
    Column("table_name", String(255), primary_key=True),
    Column("delta_version", BigInteger, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("profiled_at", DateTime(timezone=True), nullable=False),
)


@dataclass
class Registration:
    """One registered dataset: where it comes from and how it is read."""

    name: str
    origin_url: str
    format: str
    mode: str
    roots: list[str] = field(default_factory=list)
    partition_columns: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    rows: int | None = None
    registered_at: dt.datetime | None = None
    #: quality report of a copy, column renames, warnings
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ensure(catalog: Catalog) -> None:
    with catalog._tx() as conn:
        metadata.create_all(conn)


def save_registration(catalog: Catalog, reg: Registration) -> None:
    _ensure(catalog)
    row = reg.to_dict()
    with catalog._tx() as conn:
        conn.execute(registrations.delete().where(registrations.c.name == reg.name))
        conn.execute(registrations.insert().values(**row))


def delete_registration(catalog: Catalog, name: str) -> None:
    _ensure(catalog)
    with catalog._tx() as conn:
        conn.execute(registrations.delete().where(registrations.c.name == name))
        conn.execute(profiles.delete().where(profiles.c.table_name == name))


def list_registrations(catalog: Catalog) -> list[Registration]:
    _ensure(catalog)
    with catalog._tx() as conn:
        rows = conn.execute(sa.select(registrations).order_by(registrations.c.name)).mappings().all()
    return [Registration(**dict(r)) for r in rows]


def get_registration(catalog: Catalog, name: str) -> Registration:
    """The registration of ``name``; unknown names get "did you mean ...?"."""
    found = {r.name: r for r in list_registrations(catalog)}
    if name not in found:
        raise unknown_name("registered table", name, list(found))
    return found[name]


def save_profile(catalog: Catalog, table: str, version: int, profile: dict[str, Any]) -> None:
    _ensure(catalog)
    with catalog._tx() as conn:
        conn.execute(profiles.delete().where(profiles.c.table_name == table))
        conn.execute(
            profiles.insert().values(
                table_name=table, delta_version=version, profile=profile, profiled_at=dt.datetime.now(dt.UTC)
            )
        )


def load_profile(catalog: Catalog, table: str, version: int | None = None) -> dict[str, Any] | None:
    """The stored profile of ``table`` (only if taken at ``version`` when one is given)."""
    _ensure(catalog)
    with catalog._tx() as conn:
        row = conn.execute(sa.select(profiles).where(profiles.c.table_name == table)).mappings().first()
    if row is None or (version is not None and int(row["delta_version"]) != version):
        return None
    return dict(row["profile"])
