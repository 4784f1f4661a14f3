"""Access policies: a restricted user never sees another region's rows, whatever SQL they write.

Every evasion attempt is rewritten for ``north_analyst`` and run on plain DuckDB over small
in-memory tables holding all five regions. The expected answer is computed independently:
the *original* query run on a second database that only holds what a North analyst may see
(North sales/stores/customers, all products, no personal fields). Each result is also
scanned for markers that only other regions' rows carry.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot

from workbench.errors import AccessDenied, ConfigError, NotFoundError
from workbench.security.policies import (
    RETAIL_SCHEMA,
    Policy,
    PolicySet,
    apply_policy,
    apply_policy_sql,
    load_policies,
    policy_fingerprint,
    policy_for_user,
)

REPO = Path(__file__).resolve().parents[1]
REGIONS = ["North", "South", "East", "West", "Central"]
OTHER = [r for r in REGIONS if r != "North"]
OTHER_MARKERS = tuple(r.upper()[:3] + "-" for r in OTHER)  # prefixes of other regions' ids

ROLLUPS = {
    "rollup_region_month": ["year", "month", "region", "revenue"],
    "rollups/daily": ["date", "region", "revenue"],
    "rollup_category": ["category", "revenue"],
}
SCHEMA = {**RETAIL_SCHEMA, **ROLLUPS}


def _data() -> dict[str, list[tuple[Any, ...]]]:
    rng = random.Random(42)
    stores = []
    for region in REGIONS:
        for i in range(2):
            sid = f"{region.upper()[:3]}-ST{i}"
            stores.append((sid, f"{region} store {i}", f"City{i}", "ST", region, "Standard", "2020-01-01"))
    customers = []
    for i in range(30):
        home = REGIONS[i % 5]
        customers.append(
            (f"C{i:03d}", f"Person {i}", f"p{i}@example.com", "Consumer", "Gold", "Town", home, "2021-05-01")
        )
    products = [
        (f"P{i}", f"Product {i}", ["Electronics", "Books"][i % 2], "Sub", "Brand", 5.0 + i, 10.0 + i) for i in range(8)
    ]
    sales = []
    for n in range(1500):
        store = rng.choice(stores)
        region = store[4]
        month = rng.randint(1, 12)
        qty = rng.randint(1, 5)
        price = 10.0 + rng.randint(0, 90)
        # other regions sell far more, so any leak shows in aggregates too
        scale = 1.0 if region == "North" else 1000.0
        revenue = round(qty * price * scale, 2)
        sales.append(
            (
                f"{region.upper()[:3]}-T{n:05d}", f"2024-{month:02d}-15", 2024, month, region, store[0],
                rng.choice(["In-Store", "Online", "Mobile"]), rng.choice(customers)[0], rng.choice(products)[0],
                rng.choice(["Electronics", "Books"]), qty, price, 0.0, revenue, revenue * 0.6, revenue * 0.4, 40.0,
                rng.choice(["Card", "Cash"]),
            )
        )  # fmt: skip
    return {"sales": sales, "stores": stores, "customers": customers, "products": products}


def _load(con: duckdb.DuckDBPyConnection, data: dict[str, list[tuple[Any, ...]]], north_only: bool) -> None:
    types = {"date": "DATE", "opened_date": "DATE", "signup_date": "DATE", "year": "INTEGER", "month": "INTEGER",
             "quantity": "INTEGER", "unit_price": "DOUBLE", "discount": "DOUBLE", "revenue": "DOUBLE",
             "cost": "DOUBLE", "profit": "DOUBLE", "profit_margin": "DOUBLE", "unit_cost": "DOUBLE",
             "list_price": "DOUBLE"}  # fmt: skip
    for table, rows in data.items():
        cols = RETAIL_SCHEMA[table]
        ddl = ", ".join(f"{c} {types.get(c, 'VARCHAR')}" for c in cols)
        con.execute(f"CREATE TABLE {table} ({ddl})")
        con.executemany(f"INSERT INTO {table} VALUES ({', '.join('?' * len(cols))})", rows)
    if north_only:
        for table in ("sales", "stores", "customers"):
            con.execute(f"DELETE FROM {table} WHERE region <> 'North'")
        con.execute("ALTER TABLE customers DROP COLUMN customer_name")
        con.execute("ALTER TABLE customers DROP COLUMN email")
    con.execute("CREATE TABLE rollup_region_month AS SELECT year, month, region, SUM(revenue) AS revenue "
                "FROM sales GROUP BY ALL")  # fmt: skip
    con.execute('CREATE TABLE "rollups/daily" AS SELECT date, region, SUM(revenue) AS revenue FROM sales GROUP BY ALL')
    con.execute("CREATE TABLE rollup_category AS SELECT category, SUM(revenue) AS revenue FROM sales GROUP BY ALL")


@pytest.fixture(scope="module")
def dbs() -> tuple[duckdb.DuckDBPyConnection, duckdb.DuckDBPyConnection]:
    data = _data()
    full, north = duckdb.connect(), duckdb.connect()
    _load(full, data, north_only=False)
    _load(north, data, north_only=True)
    return full, north


@pytest.fixture(scope="module")
def policies() -> PolicySet:
    ps = load_policies(REPO / "policies.yaml")
    assert ps is not None
    return ps


@pytest.fixture(scope="module")
def north(policies: PolicySet) -> Policy:
    return policies.policy_for("north_analyst")


def _canon(rows: list[tuple[Any, ...]]) -> list[tuple[str, ...]]:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "nan" if math.isnan(v) else f"{v:.6g}"
        return repr(v)

    return sorted(tuple(cell(v) for v in row) for row in rows)


def _leaks(rows: list[tuple[Any, ...]]) -> list[Any]:
    bad = []
    for row in rows:
        for v in row:
            text = str(v)
            if any(r in text for r in OTHER) or any(m in text for m in OTHER_MARKERS) or "@example.com" in text:
                bad.append(v)
    return bad


# (id, sql): the result must equal the original query on the North-only database
MATCH = [
    ("star", "SELECT * FROM sales"),
    ("group_region", "SELECT region, SUM(revenue) AS r FROM sales GROUP BY region"),
    ("aggregate_all", "SELECT COUNT(*), SUM(revenue), MAX(revenue) FROM sales"),
    ("where_other", "SELECT * FROM sales WHERE region = 'South'"),
    ("or_true", "SELECT * FROM sales WHERE region <> 'North' OR 1 = 1"),
    ("upper_case", "SELECT * FROM SALES"),
    ("quoted", 'SELECT * FROM "sales"'),
    ("quoted_upper", 'SELECT * FROM "SALES"'),
    ("schema_qualified", "SELECT * FROM main.sales"),
    ("catalog_qualified", "SELECT * FROM memory.main.sales"),
    ("alias_star", "SELECT s.* FROM sales s"),
    ("alias_named_north", "SELECT * FROM sales AS north"),
    ("quoted_alias", 'SELECT * FROM sales AS "sales"'),
    ("derived", "SELECT * FROM (SELECT * FROM sales) t"),
    ("derived_nested", "SELECT * FROM (SELECT * FROM (SELECT * FROM sales) a) b"),
    ("derived_named_sales", "SELECT * FROM (SELECT * FROM stores) AS sales"),
    # DuckDB itself rejects a CTE reading the table it shadows ("circular reference"); the
    # rewrite resolves it lexically to the real table, so the reference spells that out.
    ("cte_shadow", "WITH sales AS (SELECT * FROM sales) SELECT * FROM sales", "main"),
    ("cte_shadow_qualified", "WITH sales AS (SELECT * FROM main.sales) SELECT * FROM sales"),
    ("cte_other_name", "WITH x AS (SELECT * FROM sales) SELECT region, COUNT(*) FROM x GROUP BY 1"),
    ("cte_named_sales_over_stores", "WITH sales AS (SELECT * FROM stores) SELECT * FROM sales"),
    ("cte_chain", "WITH a AS (SELECT * FROM sales), b AS (SELECT * FROM a) SELECT * FROM b"),
    ("cte_nested", "WITH s AS (WITH sales AS (SELECT * FROM sales) SELECT * FROM sales) SELECT * FROM s", "main"),
    (
        "cte_inner_shadow",
        "WITH q AS (SELECT * FROM stores) SELECT * FROM (WITH stores AS (SELECT * FROM q) SELECT * FROM stores) z",
        # DuckDB binds q's `stores` to the inner CTE when inlining q (circular); lexically it is the table
        "WITH q AS (SELECT * FROM main.stores) SELECT * FROM (WITH stores AS (SELECT * FROM q) SELECT * FROM stores) z",
    ),
    ("cte_case", "WITH Sales AS (SELECT region FROM SALES) SELECT * FROM sales", "main"),
    (
        "cte_in_where",
        "SELECT * FROM stores WHERE store_id IN (WITH stores AS (SELECT * FROM stores) SELECT store_id FROM stores)",
        "main",
    ),
    ("union_all", "SELECT * FROM sales UNION ALL SELECT * FROM sales"),
    ("union_regions", "SELECT region FROM sales UNION SELECT region FROM stores"),
    ("union_dims", "SELECT region FROM stores UNION ALL SELECT region FROM customers"),
    ("intersect", "SELECT * FROM sales INTERSECT SELECT * FROM sales"),
    ("except", "SELECT * FROM sales EXCEPT SELECT * FROM sales WHERE region = 'North'"),
    ("in_subquery_other", "SELECT * FROM sales WHERE store_id IN (SELECT store_id FROM stores WHERE region='South')"),
    (
        "join_through_stores",
        "SELECT st.region, SUM(s.revenue) FROM sales s JOIN stores st ON s.store_id = st.store_id GROUP BY 1",
    ),
    ("stores_left_join", "SELECT st.* FROM stores st LEFT JOIN sales s ON s.store_id = st.store_id"),
    ("stores_all", "SELECT * FROM stores"),
    ("customers_by_region", "SELECT c.region, COUNT(*) FROM customers c GROUP BY 1"),
    ("customers_join", "SELECT c.customer_id, c.region FROM customers c JOIN sales s USING (customer_id)"),
    ("customers_star", "SELECT * FROM customers"),
    ("scalar_subquery", "SELECT (SELECT SUM(revenue) FROM sales) AS total"),
    ("window_partition", "SELECT region, SUM(revenue) OVER (PARTITION BY region) AS w FROM sales"),
    ("window_all", "SELECT DISTINCT SUM(revenue) OVER () FROM sales"),
    (
        "lateral",
        "SELECT s.transaction_id, l.n FROM sales s, LATERAL (SELECT COUNT(*) AS n FROM sales s2 "
        "WHERE s2.region <> s.region) l",
    ),
    ("products_join", "SELECT * FROM products p JOIN sales s USING (product_id)"),
    (
        "products_left_join",
        "SELECT p.category, SUM(s.revenue) FROM products p LEFT JOIN sales s ON p.product_id = s.product_id GROUP BY 1",
    ),
    ("comments", "SELECT * FROM /* other regions */ sales -- WHERE region = 'South'"),
    ("in_regions_of_stores", "SELECT * FROM sales WHERE region IN (SELECT region FROM stores)"),
    ("exists_other", "SELECT EXISTS (SELECT 1 FROM sales WHERE region = 'South') AS e"),
    ("count_distinct", "SELECT COUNT(DISTINCT region) FROM sales"),
    ("qualify", "SELECT * FROM sales QUALIFY row_number() OVER (PARTITION BY region ORDER BY transaction_id) = 1"),
    ("pivot", "SELECT * FROM sales PIVOT (SUM(revenue) FOR region IN ('North', 'South'))"),
    (
        "recursive_helper",
        "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT r.n, COUNT(*) FROM sales, r GROUP BY 1",
    ),
    ("from_first", "FROM sales"),
    ("ilike_all", "SELECT * FROM sales WHERE region ILIKE '%'"),
    ("rollup_grouping", "SELECT region, channel, SUM(revenue) FROM sales GROUP BY ROLLUP (region, channel)"),
    ("list_agg", "SELECT list(DISTINCT region) FROM sales"),
    ("positional_aliases", "SELECT e FROM sales AS t(a, b, c, d, e)"),
    ("rollup_table", "SELECT * FROM rollup_region_month"),
    ("rollup_path_table", 'SELECT region, SUM(revenue) FROM "rollups/daily" GROUP BY 1'),
    ("rollup_join", "SELECT r.region, r.revenue FROM rollup_region_month r JOIN stores s ON r.region = s.region"),
]

# (id, sql): must be refused with AccessDenied before anything runs
DENY = [
    ("rollup_without_region", "SELECT * FROM rollup_category"),
    ("read_parquet", "SELECT * FROM read_parquet('lake/sales/**/*.parquet')"),
    ("query_table", "SELECT * FROM query_table('sales')"),
    ("catalog_function", "SELECT * FROM duckdb_tables()"),
    ("information_schema", "SELECT * FROM information_schema.tables"),
    ("summarize", "SUMMARIZE sales"),
    ("pivot_statement", "PIVOT sales ON region USING SUM(revenue)"),
    ("stacked", "SELECT 1; SELECT * FROM sales"),
    ("pii_column", "SELECT email FROM customers"),
    ("pii_in_aggregate", "SELECT COUNT(DISTINCT customer_name) FROM customers"),
    ("pii_via_alias", "SELECT c.email FROM sales s JOIN customers c USING (customer_id)"),
    ("unknown_table", "SELECT * FROM sales_backup"),
    ("file_path", "SELECT * FROM 'lake/sales/part-0.parquet'"),
]

# (id, sql): may be refused or fail, but anything returned must hold North rows only
SAFE = [
    ("recursive_shadow", "WITH RECURSIVE sales AS (SELECT * FROM sales) SELECT * FROM sales"),
    ("sample", "SELECT * FROM sales USING SAMPLE 100%"),
]


def test_at_least_forty_evasion_attempts() -> None:
    assert len(MATCH) + len(DENY) + len(SAFE) >= 40


def _qualify_cte_bodies(sql: str) -> str:
    """The reference query for a CTE that reads the table it shadows: qualify the real table.

    Inside each CTE body, a table named like the CTE (or like a later CTE of the same WITH)
    is the real table; DuckDB would call it circular, so spell it ``main.<table>``.
    """
    tree = sqlglot.parse_one(sql, read="duckdb")
    for cte in tree.find_all(sqlglot.exp.CTE):
        with_ = cte.parent
        names = {c.alias.lower() for c in with_.expressions} if with_ is not None else set()
        for table in cte.this.find_all(sqlglot.exp.Table):
            inner = {c.alias.lower() for c in cte.this.find_all(sqlglot.exp.CTE)}
            if table.name.lower() in names and table.name.lower() not in inner and not table.args.get("db"):
                table.set("db", sqlglot.exp.to_identifier("main"))
    return tree.sql(dialect="duckdb")


@pytest.mark.parametrize("case", MATCH, ids=[m[0] for m in MATCH])
def test_north_analyst_sees_only_north(case: tuple[str, ...], dbs: tuple[Any, Any], north: Policy) -> None:
    name, sql = case[0], case[1]
    full, north_db = dbs
    rewritten = apply_policy_sql(sql, north, schema=SCHEMA)
    got = full.execute(rewritten).fetchall()
    reference = sql if len(case) < 3 else _qualify_cte_bodies(sql) if case[2] == "main" else case[2]
    want = north_db.execute(reference).fetchall()
    assert not _leaks(got), f"{name}: other regions leaked: {_leaks(got)[:5]}"
    assert _canon(got) == _canon(want), f"{name}: differs from the North-only answer\n{rewritten}"


@pytest.mark.parametrize(("name", "sql"), DENY, ids=[d[0] for d in DENY])
def test_north_analyst_refused(name: str, sql: str, north: Policy) -> None:
    with pytest.raises(AccessDenied) as exc:
        apply_policy_sql(sql, north, schema=SCHEMA)
    assert exc.value.hint


@pytest.mark.parametrize(("name", "sql"), SAFE, ids=[s[0] for s in SAFE])
def test_north_analyst_safe_either_way(name: str, sql: str, dbs: tuple[Any, Any], north: Policy) -> None:
    full, _ = dbs
    try:
        rows = full.execute(apply_policy_sql(sql, north, schema=SCHEMA)).fetchall()
    except (AccessDenied, duckdb.Error):
        return
    assert not _leaks(rows)


def test_customers_star_hides_personal_fields(dbs: tuple[Any, Any], north: Policy) -> None:
    full, _ = dbs
    cur = full.execute(apply_policy_sql("SELECT * FROM customers", north, schema=SCHEMA))
    cols = [d[0] for d in cur.description]
    assert "email" not in cols and "customer_name" not in cols and "region" in cols


def test_admin_is_unchanged_and_sees_everything(dbs: tuple[Any, Any], policies: PolicySet) -> None:
    full, _ = dbs
    admin = policies.policy_for("admin")
    sql = "SELECT region, COUNT(*) FROM sales GROUP BY 1"
    tree = sqlglot.parse_one(sql, read="duckdb")
    assert apply_policy(tree, admin) is tree
    assert {r[0] for r in full.execute(sql).fetchall()} == set(REGIONS)
    assert full.execute("SELECT email FROM customers LIMIT 1").fetchall()


def test_analyst_all_regions_without_pii(dbs: tuple[Any, Any], policies: PolicySet) -> None:
    full, _ = dbs
    analyst = policies.policy_for("analyst")
    rows = full.execute(apply_policy_sql("SELECT DISTINCT region FROM sales", analyst)).fetchall()
    assert {r[0] for r in rows} == set(REGIONS)
    with pytest.raises(AccessDenied):
        apply_policy_sql("SELECT customer_name FROM customers", analyst)


def test_unknown_user_did_you_mean(policies: PolicySet) -> None:
    with pytest.raises(NotFoundError) as exc:
        policies.policy_for("north_analist")
    assert "north_analyst" in exc.value.hint


def test_fingerprint_stable_and_distinct(policies: PolicySet) -> None:
    a = policies.policy_for("north_analyst")
    assert policy_fingerprint(a) == policy_fingerprint(policies.policy_for("north_analyst"))
    assert len({policy_fingerprint(policies.policy_for(u)) for u in ("admin", "analyst", "north_analyst")}) == 3


def test_invalid_policies_file(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("roles: {r: {all_access: true}}\nusers: {u: {role: nope}}\n")
    with pytest.raises(ConfigError):
        load_policies(bad)
    bad.write_text("roles: {r: {row_filter: x}}\nusers: {}\n")
    with pytest.raises(ConfigError):
        load_policies(bad)


def test_settings_pick_the_policies_file(monkeypatch: pytest.MonkeyPatch) -> None:
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_POLICIES", str(REPO / "policies.yaml"))
    reset_settings()
    assert policy_for_user("north_analyst").row_filters == (("region", ("North",)),)
    monkeypatch.setenv("WORKBENCH_POLICIES", "")
    monkeypatch.chdir(REPO.parent)  # no policies.yaml here: everything allowed
    reset_settings()
    assert policy_for_user("anyone").all_access


# --- through the workbench session (router: guard -> policy -> rollups/cache -> engine) ----------

SESSION_ATTEMPTS = [
    "SELECT DISTINCT region FROM sales",
    "WITH sales AS (SELECT * FROM sales) SELECT DISTINCT region FROM sales",
    "SELECT st.region FROM stores st JOIN sales s ON s.store_id = st.store_id GROUP BY 1",
    "SELECT region FROM sales UNION SELECT region FROM stores",
    "SELECT region, SUM(revenue) FROM sales GROUP BY region",
    "SELECT DISTINCT region FROM (SELECT * FROM SALES) AS t",
]


def _session_regions(wb: Any, sql: str, user: str, engine: str = "duckdb") -> set[str]:
    df = wb.sql(sql, engine=engine, user=user).df
    col = "region" if "region" in df.columns else df.columns[0]
    return {str(v) for v in df[col]}


@pytest.fixture
def policy_wb(small_lake: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    import workbench
    from workbench.config import reset_settings

    monkeypatch.setenv("WORKBENCH_POLICIES", str(REPO / "policies.yaml"))
    reset_settings()
    wb = workbench.connect(small_lake)
    yield wb
    wb.close()


@pytest.mark.parametrize("sql", SESSION_ATTEMPTS)
def test_session_enforces_policy_duckdb(policy_wb: Any, sql: str) -> None:
    assert _session_regions(policy_wb, sql, "north_analyst") <= {"North"}


def test_session_admin_sees_all_regions(policy_wb: Any) -> None:
    assert _session_regions(policy_wb, "SELECT DISTINCT region FROM sales", "admin") == set(REGIONS)


def test_session_pii_denied(policy_wb: Any) -> None:
    with pytest.raises(AccessDenied):
        policy_wb.sql("SELECT email FROM customers", engine="duckdb", user="north_analyst")


@pytest.mark.slow
@pytest.mark.parametrize("sql", SESSION_ATTEMPTS[:3])
def test_session_enforces_policy_dask(policy_wb: Any, sql: str) -> None:
    from workbench.cluster import close_client

    try:
        assert _session_regions(policy_wb, sql, "north_analyst", engine="dask") <= {"North"}
    finally:
        close_client()


@pytest.mark.parametrize("cache", [True, False])
def test_pipeline_without_its_access_policy_step_refuses(policy_wb: Any, cache: bool) -> None:
    """The policy is not a switch: a pipeline missing the step refuses every query, for admins too."""
    from workbench.sql import pipeline

    steps = tuple(s for s in pipeline.STEPS if s is not pipeline.access_policy)
    for user in ("north_analyst", "admin"):
        ctx = pipeline.QueryContext(sql="SELECT DISTINCT region FROM sales", user=user, use_cache=cache)
        with pytest.raises(AccessDenied):
            pipeline.run(policy_wb.router, ctx, steps)
    assert _session_regions(policy_wb, "SELECT DISTINCT region FROM sales", "north_analyst") == {"North"}
