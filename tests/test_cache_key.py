"""SQL normalisation: equivalent spellings share a text; anything that changes a result does not."""

from __future__ import annotations

import pytest

from workbench.cache import normalise_sql, referenced_tables
from workbench.errors import QueryRefused

SAME = [
    ("select region from sales", "SELECT   Region\nFROM SALES  -- comment"),
    ("select a from t where x = 1 and y = 2 and z = 3", "select a from t where z = 3 and x = 1 and y = 2"),
    ("select a from t where (x = 1 and y = 2) or k = 1", "select a from t where (y = 2 and x = 1) or k = 1"),
    ("select a from t where r in ('N', 'E')", "select a from t where r in ('E', 'N')"),
    (
        "select s.a, st.b from sales s join stores st on s.k = st.k",
        "select x.a, y.b from sales as x join stores y on x.k = y.k",
    ),
    ("select sum(x) as total from t", "select sum(x) total from t"),
]
DIFFERENT = [
    ("select a, b from t", "select b, a from t"),
    ("select a from t order by a", "select a from t order by a desc"),
    ("select a from t limit 10", "select a from t limit 11"),
    ("select a from t where r = 'North'", "select a from t where r = 'north'"),
    ('select "A" from t', "select a from t"),
]


@pytest.mark.parametrize(("left", "right"), SAME)
def test_equivalent_spellings_normalise_alike(left: str, right: str) -> None:
    assert normalise_sql(left) == normalise_sql(right)


@pytest.mark.parametrize(("left", "right"), DIFFERENT)
def test_result_changing_differences_are_kept(left: str, right: str) -> None:
    assert normalise_sql(left) != normalise_sql(right)


def test_unparsable_sql_is_refused() -> None:
    with pytest.raises(QueryRefused):
        normalise_sql("select from where (")


def test_referenced_tables_skip_ctes() -> None:
    sql = "with m as (select * from sales) select * from m join Stores s on true join rollups.monthly_store r on true"
    assert referenced_tables(sql) == ["rollups/monthly_store", "sales", "stores"]
