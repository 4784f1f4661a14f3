"""The summary index: FAISS vectors plus texts and metadata, stored in the lake.

Stored as ``<lake>/_index/summaries.faiss`` (a serialised inner-product index over
L2-normalised vectors, i.e. cosine similarity) and ``<lake>/_index/summaries.json`` (texts,
metadata, the embedder's name). Both go through fsspec so an ``s3://`` lake works the same;
the embedder recorded at build time is the one used to search, so vectors always match.

Search is hybrid: vector similarity, plus a boost for summaries whose metadata names what
the question names (a category, a region, a year, a quarter). Hashed features already favour
exact names; the boost makes "Electronics in 2023" reliably cite an Electronics 2023 summary, and a
small penalty for scopes the question does not name prefers the summary at its level.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from workbench.assistant.retrieval.embedder import Embedder, get_embedder
from workbench.errors import DataError, ServiceUnavailable
from workbench.lake.storage import Lake

INDEX_DIR = "_index"
VECTORS = "summaries.faiss"
META = "summaries.json"

#: metadata keys compared with the question text, and the boost when one matches
_BOOSTED = ("category", "region", "year", "quarter_label", "month_label", "channel")
_BOOST = 0.15
#: penalty for a scope the question does not name (prefer "Electronics 2023" over one region's quarter)
_UNNAMED = 0.05


@dataclass
class Source:
    """A retrieved summary, cited by an answer."""

    id: str
    text: str
    score: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "score": round(float(self.score), 4)}


def _as_lake(lake: Lake | str | None) -> Lake:
    return lake if isinstance(lake, Lake) else Lake(lake)


class SummaryIndex:
    """Build, save, load and search the summaries of one lake."""

    def __init__(
        self,
        lake: Lake | str | None,
        embedder: Embedder | None = None,
        records: list[dict[str, Any]] | None = None,
        vectors: Any = None,
    ) -> None:
        self.lake = _as_lake(lake)
        self.embedder = embedder or get_embedder(self.lake.settings)
        self.records: list[dict[str, Any]] = records or []
        #: what the summaries were computed from, e.g. ``{"sales": 3}`` (Delta versions)
        self.sources: dict[str, Any] = {}
        self._index = vectors

    # --- building ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls, lake: Lake | str | None, records: list[dict[str, Any]], embedder: Embedder | None = None
    ) -> SummaryIndex:
        """Embed ``records`` (each with ``id``, ``text`` and metadata) into a new index."""
        import faiss

        self = cls(lake, embedder, records)
        # a record's ``key`` (its scope in words) is embedded when present: numbers in the text
        # are noise for matching a question to the period/category/region it is about
        texts = [r.get("key") or r["text"] for r in records]
        matrix = self.embedder.embed(texts) if texts else np.zeros((0, max(self.embedder.dim, 1)), np.float32)
        index = faiss.IndexFlatIP(int(matrix.shape[1]))
        if len(texts):
            index.add(matrix)
        self._index = index
        return self

    def save(self) -> None:
        import faiss

        fs = self.lake.fs
        folder = self.lake.fs_path(self.lake.uri(INDEX_DIR))
        try:
            fs.makedirs(folder, exist_ok=True)
            # the metadata is written last: a reader that finds it finds matching vectors
            with fs.open(f"{folder}/{VECTORS}", "wb") as f:
                f.write(faiss.serialize_index(self._index).tobytes())
            meta = {
                "embedder": self.embedder.name,
                "dim": int(self._index.d),
                "sources": self.sources,
                "records": self.records,
            }
            with fs.open(f"{folder}/{META}", "w") as f:
                f.write(json.dumps(meta, default=str))
        except OSError as e:
            raise ServiceUnavailable(
                f"cannot write the summary index under {self.lake.url}: {e}", "check that the lake is writable"
            ) from e

    # --- loading -----------------------------------------------------------------------------
    @classmethod
    def exists(cls, lake: Lake | str | None) -> bool:
        lake = _as_lake(lake)
        return bool(lake.fs.exists(lake.fs_path(lake.uri(INDEX_DIR, META))))

    @classmethod
    def load(cls, lake: Lake | str | None) -> SummaryIndex:
        """The stored index; DataError with a hint when it was never built."""
        import faiss

        lake = _as_lake(lake)
        folder = lake.fs_path(lake.uri(INDEX_DIR))
        if not cls.exists(lake):
            raise DataError(f"no summary index in {lake.url}", "run an ingest or `build_summaries(wb)` first")
        try:
            with lake.fs.open(f"{folder}/{META}", "r") as f:
                meta = json.loads(f.read())
            with lake.fs.open(f"{folder}/{VECTORS}", "rb") as f:
                raw = f.read()
        except (OSError, ValueError) as e:
            raise DataError(
                f"the summary index in {lake.url} is unreadable: {e}", "rebuild it with `build_summaries(wb)`"
            ) from e
        index = faiss.deserialize_index(np.frombuffer(raw, dtype=np.uint8))
        embedder = get_embedder(lake.settings, name=meta["embedder"])
        if int(index.ntotal) != len(meta["records"]):
            raise DataError(
                f"the summary index in {lake.url} holds {index.ntotal} vectors for {len(meta['records'])} texts",
                "rebuild it with `build_summaries(wb)`",
            )
        loaded = cls(lake, embedder, meta["records"], index)
        loaded.sources = dict(meta.get("sources") or {})
        return loaded

    def __len__(self) -> int:
        return len(self.records)

    # --- searching ---------------------------------------------------------------------------
    def search(self, text: str, k: int = 5) -> list[Source]:
        """The ``k`` summaries most relevant to ``text``, best first."""
        if not self.records or self._index is None or k <= 0:
            return []
        query = self.embedder.embed([text])
        pool = min(len(self.records), max(k * 50, 20_000))
        scores, ids = self._index.search(query, pool)
        mentioned = _mentions(text)
        ranked: list[tuple[float, int]] = []
        for score, i in zip(scores[0], ids[0], strict=False):
            if i < 0:
                continue
            ranked.append((float(score) + _boost(self.records[int(i)], mentioned), int(i)))
        ranked.sort(key=lambda t: -t[0])
        return [
            Source(
                self.records[i]["id"],
                self.records[i]["text"],
                s,
                {k_: v for k_, v in self.records[i].items() if k_ not in ("id", "text", "key")},
            )
            for s, i in ranked[:k]
        ]


def _mentions(text: str) -> str:
    return " " + re.sub(r"\s+", " ", text.lower()) + " "


def _boost(record: dict[str, Any], mentioned: str) -> float:
    bonus = 0.0
    for key in _BOOSTED:
        value = record.get(key)
        if value is None:
            continue
        if re.search(rf"(?<![a-z0-9]){re.escape(str(value).lower())}(?![a-z0-9])", mentioned):
            bonus += _BOOST
        else:
            bonus -= _UNNAMED
    return bonus
