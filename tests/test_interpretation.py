"""The interpretation sentence and the coverage check (issue 12, items 1 and 2)."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from workbench.assistant.interpret import interpret
from workbench.assistant.planners.base import PlanContext
from workbench.assistant.planners.coverage import check
from workbench.assistant.planners.lexicon import Lexicon
from workbench.cli import main
from workbench.semantic.model import load_model
from workbench.semantic.query import Comparison, Filter, OrderBy, SemanticQuery, TimeRange

MODEL = load_model()
VOCAB = {
    "channel": ["Online", "In-Store", "Mobile"],
    "region": ["North", "South", "East", "West", "Central"],
    "loyalty_tier": ["Bronze", "Silver", "Gold"],
    "store_type": ["Standard", "Outlet", "Flagship"],
}
CONTEXT = PlanContext(model=MODEL, latest_date=dt.date(2024, 12, 31), vocabulary=VOCAB)
LEXICON = Lexicon(MODEL, VOCAB)


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        (
            SemanticQuery(
                metrics=["profit"],
                dimensions=["region"],
                time_range=TimeRange(year=2024),
                order=[OrderBy(by="profit", direction="desc")],
                limit=3,
            ),
            "Top 3 regions by profit, 2024, highest first",
        ),
        (
            SemanticQuery(
                metrics=["profit"], dimensions=["category"], order=[OrderBy(by="profit", direction="asc")], limit=1
            ),
            "The category with the lowest profit, all data, lowest first",
        ),
        (
            SemanticQuery(
                metrics=["revenue"],
                dimensions=["store_type"],
                filters=[Filter(dimension="region", values=["East"])],
                time_range=TimeRange(start=dt.date(2023, 1, 1), end=dt.date(2023, 6, 30), label="H1 2023"),
            ),
            "Revenue by store type, where region is East, H1 2023",
        ),
        (
            SemanticQuery(metrics=["revenue"], share=Filter(dimension="channel", values=["Online", "Mobile"])),
            "Share of revenue where channel is Online or Mobile, all data",
        ),
        (
            SemanticQuery(metrics=["revenue"], time_range=TimeRange(year=2024), comparison=Comparison(kind="yoy")),
            "Revenue growth year over year, 2024 vs 2023",
        ),
        (SemanticQuery(metrics=["average_order_value"]), "Average order value, all data"),
    ],
)
def test_the_plan_reads_back_as_one_sentence(query: SemanticQuery, sentence: str) -> None:
    assert interpret(query, MODEL) == sentence


def test_a_dropped_number_is_not_covered() -> None:
    top1 = SemanticQuery(
        metrics=["revenue"], dimensions=["channel"], order=[OrderBy(by="revenue", direction="desc")], limit=1
    )
    cov = check("which 4 channels had the most revenue", top1, CONTEXT, LEXICON)
    assert [p.text for p in cov.missing] == ["4"]
    assert check(
        "which 4 channels had the most revenue", top1.model_copy(update={"limit": 4}), CONTEXT, LEXICON
    ).complete


def test_a_dropped_dimension_or_value_is_not_covered() -> None:
    total = SemanticQuery(metrics=["revenue"], filters=[Filter(dimension="region", values=["East"])])
    cov = check("store type revenue in the East", total, CONTEXT, LEXICON)
    assert [p.text for p in cov.missing] == ["store type"]
    cov = check("revenue in the East for Online", total, CONTEXT, LEXICON)
    assert [p.text for p in cov.missing] == ["online"]
    assert "online" in cov.explain() and "revenue" in cov.explain()


def test_dates_and_value_nouns_need_no_part_of_their_own() -> None:
    q = SemanticQuery(
        metrics=["customer_count"],
        filters=[Filter(dimension="loyalty_tier", values=["Gold"])],
        time_range=TimeRange(year=2024, quarter=4),
    )
    assert check("how many Gold customers in Q4 2024", q, CONTEXT, LEXICON).complete


def test_ask_shows_the_interpretation_and_declines_what_it_did_not_understand(small_lake: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["--lake", small_lake, "ask", "top 3 regions by profit in 2024", "--json"])
    body = json.loads(ok.output)
    assert body["status"] == "ok" and body["interpretation"] == "Top 3 regions by profit, 2024, highest first"
    text = runner.invoke(main, ["--lake", small_lake, "ask", "top 3 regions by profit in 2024"])
    assert text.output.startswith("Answered: Top 3 regions by profit, 2024, highest first")
    # the words the parser cannot place are not silently ignored: nothing is shown
    bad = runner.invoke(main, ["--lake", small_lake, "ask", "revenue by region for left-handed shoppers", "--json"])
    body = json.loads(bad.output)
    assert body["status"] == "failed" and body["rows"] == [] and body["sql"] is None


def test_ranking_share_and_growth_words_need_their_shape_in_the_plan() -> None:
    total = SemanticQuery(metrics=["profit"], filters=[Filter(dimension="channel", values=["Online"])])
    cov = check("how much of our profit came from Online, in percent?", total, CONTEXT, LEXICON)
    assert [p.kind for p in cov.missing] == ["share"]
    by_region = SemanticQuery(metrics=["revenue"], dimensions=["region"])
    assert [p.text for p in check("the weakest regions by revenue", by_region, CONTEXT, LEXICON).missing] == ["weakest"]
    assert [p.kind for p in check("did revenue grow by region", by_region, CONTEXT, LEXICON).missing] == ["growth"]
    # a threshold is a filter, not a ranking; "20 %" is the number's unit, not a share
    discounted = SemanticQuery(metrics=["revenue"], filters=[Filter(dimension="discount", op=">", values=[0.2])])
    assert check("revenue with a discount of more than 20 %", discounted, CONTEXT, LEXICON).complete
