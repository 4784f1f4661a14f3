"""Summaries computed from the lake match plain DuckDB on the same files, and are searchable."""

from __future__ import annotations

import pytest

from tests.test_graph_llm import expected
from workbench.assistant.retrieval import SummaryIndex
from workbench.errors import DataError
from workbench.lake.storage import Lake


@pytest.fixture(scope="module")
def index(assistant_lake: str) -> SummaryIndex:
    return SummaryIndex.load(Lake(assistant_lake))


def _record(index: SummaryIndex, rid: str) -> dict:
    return next(r for r in index.records if r["id"] == rid)


def test_one_summary_per_period_and_scope(index: SummaryIndex, assistant_lake: str) -> None:
    years = expected(assistant_lake, "SELECT COUNT(DISTINCT year) FROM sales")[0][0]
    months = expected(assistant_lake, "SELECT COUNT(*) FROM (SELECT DISTINCT year, month FROM sales)")[0][0]
    quarters = expected(
        assistant_lake, "SELECT COUNT(*) FROM (SELECT DISTINCT year, (month - 1) // 3, category, region FROM sales)"
    )[0][0]
    quarter_regions = expected(
        assistant_lake, "SELECT COUNT(*) FROM (SELECT DISTINCT year, (month - 1) // 3, region FROM sales)"
    )[0][0]
    year_cats = expected(assistant_lake, "SELECT COUNT(*) FROM (SELECT DISTINCT year, category FROM sales)")[0][0]
    assert len(index) == years + months + quarters + quarter_regions + year_cats
    assert len({r["id"] for r in index.records}) == len(index)


def test_figures_match_duckdb(index: SummaryIndex, assistant_lake: str) -> None:
    total_2023, total_2022 = (
        expected(assistant_lake, f"SELECT SUM(revenue) FROM sales WHERE year = {y}")[0][0] for y in (2023, 2022)
    )
    rec = _record(index, "year:2023")
    assert rec["revenue"] == pytest.approx(total_2023)
    assert rec["growth_yoy"] == pytest.approx((total_2023 - total_2022) / total_2022 * 100)
    q = expected(
        assistant_lake,
        "SELECT SUM(revenue) FROM sales WHERE year = 2023 AND month BETWEEN 10 AND 12 "
        "AND category = 'Toys' AND region = 'North'",
    )[0][0]
    assert _record(index, "quarter:2023-Q4:Toys:North")["revenue"] == pytest.approx(q)
    m = expected(assistant_lake, "SELECT SUM(revenue) FROM sales WHERE year = 2024 AND month = 11")[0][0]
    assert _record(index, "month:2024-11")["revenue"] == pytest.approx(m)
    assert "November 2024" in _record(index, "month:2024-11")["text"]


@pytest.mark.parametrize(
    ("question", "expected_id"),
    [
        ("How did Electronics do in 2023?", "year:2023:Electronics"),
        ("Clothing revenue in the North region in Q4 2023", "quarter:2023-Q4:Clothing:North"),
        ("What happened to sales in November 2024?", "month:2024-11"),
        ("total revenue in 2022", "year:2022"),
    ],
)
def test_search_finds_the_summary_in_scope(index: SummaryIndex, question: str, expected_id: str) -> None:
    assert index.search(question, k=3)[0].id == expected_id


@pytest.mark.s3
def test_index_round_trip_on_s3(s3_lake_url: str) -> None:
    """The index is written and read through fsspec, so an s3:// lake works (moto on loopback)."""
    from workbench.assistant.retrieval.index import INDEX_DIR, META

    lake = Lake(s3_lake_url)
    records = [
        {"id": "a", "text": "Books, year 2023: revenue $1.0K", "category": "Books", "year": 2023},
        {"id": "b", "text": "Toys, year 2022: revenue $2.0K", "category": "Toys", "year": 2022},
    ]
    SummaryIndex.build(lake, records).save()
    assert lake.fs.exists(lake.fs_path(lake.uri(INDEX_DIR, META)))
    assert SummaryIndex.exists(s3_lake_url)
    assert SummaryIndex.load(s3_lake_url).search("Books 2023", 1)[0].id == "a"


def test_a_stale_index_is_rebuilt_on_the_next_question(assistant_lake: str, tmp_path) -> None:
    import json
    import shutil

    import workbench
    from workbench.assistant import ask
    from workbench.assistant.retrieval.index import INDEX_DIR, META

    lake = tmp_path / "lake"
    shutil.copytree(assistant_lake, lake)
    meta_file = lake / INDEX_DIR / META
    meta = json.loads(meta_file.read_text())
    current = meta["sources"]
    assert current == {"sales": Lake(str(lake)).version("sales")}
    meta["sources"] = {"sales": -1}  # as if an ingest landed after the index was built
    meta_file.write_text(json.dumps(meta))
    with workbench.connect(str(lake)) as wb:
        answer = ask(wb, "What was the total revenue in 2023?")
    assert answer.ok and answer.sources
    assert json.loads(meta_file.read_text())["sources"] == current


def test_a_corrupt_index_is_rebuilt(assistant_lake: str, tmp_path) -> None:
    import json
    import shutil

    import workbench
    from workbench.assistant import ask
    from workbench.assistant.retrieval.index import INDEX_DIR, META

    lake = tmp_path / "lake"
    shutil.copytree(assistant_lake, lake)
    meta_file = lake / INDEX_DIR / META
    meta = json.loads(meta_file.read_text())
    meta["records"] = meta["records"][:1]  # texts and vectors disagree
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(DataError, match="rebuild"):
        SummaryIndex.load(str(lake))
    with workbench.connect(str(lake)) as wb:
        answer = ask(wb, "What was the total revenue in 2023?")
    assert answer.ok and answer.sources[0].id == "year:2023"
