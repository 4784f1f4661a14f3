"""A local spool for log rows the catalog database could not take.

"The catalog database briefly unavailable" must not fail a query: rows that cannot be written
go to a JSON-lines file in the workbench home (and stay in memory when even that fails), and are
replayed in order on the next successful write.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


class Spool:
    """Append-only JSON-lines buffer of ``(kind, row)`` pairs waiting for the database."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._memory: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def add(self, kind: str, row: dict[str, Any]) -> None:
        record = {"kind": kind, "row": {k: _encode(v) for k, v in row.items()}}
        with self._lock:
            if self.path is not None:
                try:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    with self.path.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(record, default=str) + "\n")
                    return
                except OSError as e:
                    log.warning("cannot write the catalog spool %s (%s); keeping the row in memory", self.path, e)
            self._memory.append(record)

    def __len__(self) -> int:
        return len(self._memory) + len(self._read_file())

    def _read_file(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        out = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    log.warning("skipping a corrupt line in the catalog spool %s", self.path)
        return out

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        """Remove and return everything spooled (file first, oldest first).

        The file is renamed before reading so a concurrent writer starts a fresh file instead
        of appending to rows being replayed.
        """
        with self._lock:
            records: list[dict[str, Any]] = []
            if self.path is not None and self.path.exists():
                claimed = self.path.with_name(f"{self.path.name}.{os.getpid()}.replay")
                try:
                    os.replace(self.path, claimed)
                    records = [json.loads(x) for x in claimed.read_text(encoding="utf-8").splitlines() if x.strip()]
                    claimed.unlink()
                except (OSError, json.JSONDecodeError) as e:
                    log.warning("cannot read the catalog spool %s: %s", self.path, e)
            records += self._memory
            self._memory = []
        return [(r["kind"], {k: _decode(k, v) for k, v in r["row"].items()}) for r in records]


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _decode(key: str, value: Any) -> Any:
    if key == "ts" and isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    return value
