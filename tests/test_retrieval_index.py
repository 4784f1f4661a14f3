"""Embedder and FAISS summary index, without a lake table (records made here)."""

from __future__ import annotations

import numpy as np

from tests.fixtures.llm_server import ScriptedLLM
from workbench.assistant.retrieval import HashingEmbedder, OpenAIEmbedder, SummaryIndex, get_embedder
from workbench.lake.storage import Lake

RECORDS = [
    {"id": f"year:{y}:{c}", "text": f"{c}, year {y}: revenue $1.0M, up 3.0% vs {y - 1}.", "year": y, "category": c}
    for y in (2022, 2023, 2024)
    for c in ("Electronics", "Clothing", "Books", "Toys")
] + [
    {
        "id": "month:2023-11",
        "text": "November 2023, all categories and regions: revenue $2.0M.",
        "year": 2023,
        "month_label": "November 2023",
    },
]


def test_hashing_embedder_is_normalised_and_deterministic() -> None:
    emb = HashingEmbedder(dim=256)
    a = emb.embed(["Electronics revenue in 2023", "Electronics revenue in 2023", ""])
    assert a.shape == (3, 256) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a[:2], axis=1), 1.0)
    assert np.array_equal(a[0], a[1])
    assert not a[2].any()
    sim = emb.embed(["Electronics 2023"]) @ emb.embed(["Electronics, year 2023: revenue", "Books, year 2022"]).T
    assert sim[0, 0] > sim[0, 1]


def test_default_embedder_is_local() -> None:
    assert isinstance(get_embedder(), HashingEmbedder)


def test_index_round_trip_and_search(tmp_path) -> None:
    lake = Lake(str(tmp_path / "lake"))
    SummaryIndex.build(lake, RECORDS).save()
    assert SummaryIndex.exists(lake)
    index = SummaryIndex.load(lake)
    assert len(index) == len(RECORDS)
    hits = index.search("How did Toys do in 2023?", k=3)
    assert hits[0].id == "year:2023:Toys"
    assert hits[0].to_dict().keys() == {"id", "text", "score"}
    assert index.search("anything", k=0) == []


def test_openai_embedder_against_the_scripted_server(scripted_llm: ScriptedLLM, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_EMBEDDING_MODEL", "text-embedding-3-small")
    embedder = get_embedder()
    assert isinstance(embedder, OpenAIEmbedder)
    lake = Lake(str(tmp_path / "lake"))
    SummaryIndex.build(lake, RECORDS, embedder).save()
    loaded = SummaryIndex.load(lake)
    assert loaded.embedder.name == "openai:text-embedding-3-small"
    hits = loaded.search(RECORDS[5]["text"], k=1)
    assert hits[0].id == RECORDS[5]["id"]
