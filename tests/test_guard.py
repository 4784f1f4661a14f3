"""The read-only guard: hostile statements are refused, analyst queries pass, nothing changes."""

from __future__ import annotations

import pytest

from workbench.errors import QueryRefused
from workbench.sql.guard import check_sql

HOSTILE = [
    "SELECT * FROM '/etc/passwd'",
    'SELECT * FROM "/etc/passwd"',
    "SELECT * FROM 'data.parquet'",
    "SELECT * FROM 's3://bucket/key.parquet'",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_csv_auto('/etc/passwd')",
    "SELECT * FROM read_parquet('lake/sales/*.parquet')",
    "SELECT * FROM read_parquet(['a.parquet', 'b.parquet'])",
    "SELECT * FROM parquet_scan('x.parquet')",
    "SELECT * FROM read_json('x.json')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_blob('/etc/hostname')",
    "SELECT * FROM glob('/*')",
    "SELECT * FROM delta_scan('lake/sales')",
    "SELECT * FROM sales, read_csv('/etc/passwd')",
    "SELECT (SELECT count(*) FROM read_csv('/etc/passwd')) AS n FROM sales",
    "WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x",
    "SELECT * FROM sales WHERE region IN (SELECT * FROM read_text('/etc/passwd'))",
    "SELECT * FROM sales UNION ALL SELECT * FROM '/etc/passwd'",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_tables",
    "SELECT * FROM sqlite_master",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM duckdb_extensions()",
    "SELECT current_setting('threads')",
    "SELECT getenv('HOME')",
    "SELECT * FROM pragma_version()",
    "SELECT * FROM main.sales",
    "SELECT * FROM other_db.main.sales",
    "SELECT * FROM secret_table",
    "SELECT * FROM range(10)",
    "SELECT * FROM generate_series(1, 10)",
    "DROP TABLE sales",
    "DELETE FROM sales",
    "DELETE FROM sales WHERE year = 2023",
    "UPDATE sales SET revenue = 0",
    "INSERT INTO sales SELECT * FROM sales",
    "CREATE TABLE x AS SELECT * FROM sales",
    "CREATE VIEW v AS SELECT * FROM sales",
    "CREATE MACRO m(x) AS x",
    "ALTER TABLE sales ADD COLUMN x INT",
    "TRUNCATE sales",
    "COPY sales TO '/tmp/out.csv'",
    "COPY (SELECT * FROM sales) TO '/tmp/out.parquet' (FORMAT parquet)",
    "ATTACH '/tmp/x.db' AS x",
    "DETACH x",
    "INSTALL httpfs",
    "LOAD httpfs",
    "PRAGMA version",
    "SET threads = 1",
    "SET enable_external_access = true",
    "RESET threads",
    "CALL pragma_version()",
    "EXPORT DATABASE '/tmp/x'",
    "IMPORT DATABASE '/tmp/x'",
    "USE main",
    "CHECKPOINT",
    "VACUUM",
    "SELECT 1; DROP TABLE sales",
    "SELECT * FROM sales; SELECT * FROM stores",
    "SELECT * INTO newtable FROM sales",
    "SELECT * FROM sales FOR UPDATE",
    "SELECT * FROM sales WHERE year = ?",
    "SELECT nextval('seq')",
    "SELECT setseed(0.5)",
    "SELECT version()",
    "SELECT system('ls')",
    "SELECT load_extension('x')",
    "",
    "   ",
    "SELEC * FROM sales",
]

SAFE = [
    "SELECT SUM(revenue) FROM sales WHERE year = 2023",
    "WITH m AS (SELECT month, SUM(revenue) AS r FROM sales GROUP BY month) SELECT * FROM m ORDER BY r DESC",
    "SELECT region FROM sales UNION SELECT region FROM stores",
    "SELECT category, RANK() OVER (ORDER BY SUM(revenue) DESC) FROM sales GROUP BY category",
    "SELECT p.brand, COUNT(*) FROM sales s JOIN products p USING (product_id) GROUP BY 1",
    "SELECT DATE_TRUNC('month', date) AS m, COUNT(*) FROM sales GROUP BY 1",
    "SELECT CASE WHEN discount > 0.2 THEN 'high' ELSE 'low' END AS d, COUNT(*) FROM sales GROUP BY d",
    "SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM sales s WHERE s.customer_id = c.customer_id)",
    "FROM sales SELECT COUNT(*)",
]


@pytest.mark.parametrize("sql", HOSTILE)
def test_hostile_statement_is_refused(sql: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    assert info.value.message
    assert info.value.hint


def test_there_are_at_least_40_hostile_statements() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize("sql", SAFE)
def test_analyst_query_passes(sql: str) -> None:
    guarded = check_sql(sql)
    assert guarded.tables <= {"sales", "products", "stores", "customers"}
    assert guarded.tables


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("SELECT * FROM '/etc/passwd'", "file path"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("DROP TABLE sales", "DROP"),
        ("SELECT 1; SELECT 2", "multiple statements"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT * FROM information_schema.tables", "system table"),
        ("COPY sales TO 'x.csv'", "COPY"),
        ("SELECT * FROM sale", "sales"),
    ],
)
def test_refusal_names_the_construct(sql: str, named: str) -> None:
    with pytest.raises(QueryRefused) as info:
        check_sql(sql)
    assert named.lower() in str(info.value).lower()
