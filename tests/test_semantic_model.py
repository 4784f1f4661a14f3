"""The semantic model file, name lookups, the settings hook, and the lake vocabulary."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from workbench.errors import ConfigError, NotFoundError
from workbench.semantic.model import DEFAULT_MODEL, SemanticModel, load_model
from workbench.semantic.query import Comparison, Filter, SemanticQuery, TimeRange


def test_default_model_covers_the_issue_vocabulary() -> None:
    model = load_model()
    metrics = "revenue profit cost units transactions average_order_value profit_margin discount_rate"
    metrics += " revenue_per_customer growth"
    assert set(metrics.split()) <= set(model.metrics)
    dims = "date week month quarter year region category subcategory brand product store city store_type channel"
    dims += " payment_method customer_segment loyalty_tier"
    assert set(dims.split()) <= set(model.dimensions)
    assert {(j.left, j.right, j.column) for j in model.joins} == {
        ("sales", "products", "product_id"),
        ("sales", "stores", "store_id"),
        ("sales", "customers", "customer_id"),
    }


@pytest.mark.parametrize(
    ("word", "metric"),
    [("sales", "revenue"), ("orders", "transactions"), ("AOV", "average_order_value"), ("margin", "profit_margin"),
     ("units sold", "units"), ("average discount", "discount_rate")],
)  # fmt: skip
def test_synonyms(word: str, metric: str) -> None:
    assert load_model().metric(word).name == metric


def test_unknown_names_say_did_you_mean() -> None:
    model = load_model()
    with pytest.raises(NotFoundError) as e:
        model.metric("proft")
    assert "profit" in e.value.hint
    with pytest.raises(NotFoundError) as e:
        model.dimension("chanel")
    assert "channel" in e.value.hint


def test_model_comes_from_settings_when_set(tmp_path: Path) -> None:
    custom = tmp_path / "m.yaml"
    custom.write_text(DEFAULT_MODEL.read_text().replace("name: retail", "name: custom"))
    assert load_model(settings=SimpleNamespace(semantic_model=str(custom))).name == "custom"
    assert load_model(settings=SimpleNamespace()).name == "retail"


def test_invalid_model_files_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "fact: sales\ntables: {sales: {alias: s}}\nmetrics: {x: {sql: SUM(a), table: nope}}\ndimensions: {}\n"
    )
    with pytest.raises(ConfigError) as e:
        SemanticModel.load(bad)
    assert "nope" in e.value.message
    with pytest.raises(ConfigError):
        SemanticModel.load(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("fact: [")
    with pytest.raises(ConfigError):
        SemanticModel.load(tmp_path / "broken.yaml")


def test_query_validation_and_periods() -> None:
    assert TimeRange(year=2023, quarter=4).describe() == "Q4 2023"
    assert TimeRange(year=2024, month=3).bounds()[1].isoformat() == "2024-03-31"
    with pytest.raises(ValueError):
        TimeRange(quarter=2)
    with pytest.raises(ValueError):
        Filter(dimension="year", op="between", values=[2022])
    with pytest.raises(ValueError):
        Comparison(kind="vs", dimension="region", members=["North"])
    with pytest.raises(ValueError):
        SemanticQuery(metrics=[])
    q = SemanticQuery.model_validate({"metrics": ["revenue"], "filters": [{"dimension": "region", "values": "North"}]})
    assert q.filters[0].values == ["North"]


def test_vocabulary_is_read_from_the_lake_once(small_lake: str) -> None:
    from workbench.semantic import vocabulary
    from workbench.session import Workbench

    model = load_model()
    with Workbench.open(lake=small_lake) as wb:
        vocabulary._memory.clear()  # other tests of the session may have read this lake already
        vocab = vocabulary.load_vocabulary(wb, model)
        assert vocab["category"] == sorted(
            ["Electronics", "Clothing", "Home & Garden", "Grocery", "Sports & Outdoors", "Beauty", "Toys", "Books"]
        )
        assert vocab["region"] == ["Central", "East", "North", "South", "West"]
        assert set(vocab["channel"]) == {"In-Store", "Online", "Mobile"}
        assert "customer_segment" in vocab and "product" not in vocab  # names are not a vocabulary
        vocabulary._memory.clear()
        cached = list((wb.settings.home_path / "vocabulary").glob("*.json"))
        assert cached, "the vocabulary is cached on disk per table version"
        assert vocabulary.load_vocabulary(wb, model) == vocab
        latest = vocabulary.latest_date(wb, model)
        expected = wb.sql("SELECT MAX(date) FROM sales").df.iloc[0, 0]
        assert str(latest) == str(expected)[:10]
