"""Through a real dask-gateway-server: connect with the workbench settings, run Dask and DuckDB tasks.

Expected values are computed independently with pandas on the same data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.fixtures.gateway import GatewayServer
from workbench.cluster import close_client, cluster_info, get_client
from workbench.config import get_settings
from workbench.errors import ServiceUnavailable

pytestmark = pytest.mark.gateway


def _frame(n: int = 20_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "region": rng.choice(["North", "South", "East", "West", "Central"], n),
            "quantity": rng.integers(1, 10, n),
            "revenue": rng.gamma(2.0, 50.0, n).round(2),
        }
    )


def test_gateway_client_runs_dask_and_duckdb_tasks(gateway_env: GatewayServer) -> None:
    import dask.dataframe as dd
    import pyarrow as pa

    from workbench.sql.engines.dask_tasks import run_sql

    client = get_client()
    assert client is get_client(), "the client is reused process-wide"
    info = cluster_info(connect=False)
    assert info["kind"] == "gateway" and info["connected"]
    assert info["address"].startswith("gateway://")
    client.wait_for_workers(1, timeout=120)

    pdf = _frame()
    ddf = dd.from_pandas(pdf, npartitions=4)
    total = ddf.revenue.sum().compute()
    assert total == pytest.approx(pdf.revenue.sum())
    # the work really ran on gateway workers
    assert client.run(lambda: 1), "gateway workers are present"

    # the cluster engine's task: DuckDB on a gateway worker over an Arrow table sent to it
    sql = "SELECT region, SUM(revenue) AS revenue, COUNT(*) AS n FROM sales GROUP BY region"
    table = client.scatter(pa.Table.from_pandas(pdf, preserve_index=False))
    got = client.submit(run_sql, sql, [], {"sales": table}).result(timeout=120).to_pandas()
    got = got.sort_values("region").reset_index(drop=True)
    want = (
        pdf.groupby("region")
        .agg(revenue=("revenue", "sum"), n=("revenue", "size"))
        .reset_index()
        .sort_values("region")
        .reset_index(drop=True)
    )
    assert list(got.region) == list(want.region)
    np.testing.assert_allclose(got.revenue.to_numpy(dtype=float), want.revenue.to_numpy(dtype=float), rtol=1e-9)
    assert list(got.n.astype(int)) == list(want.n.astype(int))

    close_client()
    assert cluster_info(connect=False)["connected"] is False


def test_gateway_wrong_password_is_service_unavailable(
    gateway_server: GatewayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in gateway_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("WORKBENCH_GATEWAY_PASSWORD", "wrong")
    from workbench.config import reset_settings

    reset_settings()
    with pytest.raises(ServiceUnavailable) as exc:
        get_client(get_settings())
    assert "WORKBENCH_GATEWAY" in exc.value.hint
    close_client()


def test_ingest_and_dask_engine_through_the_lake_on_gateway(
    gateway_env: GatewayServer, landing_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ingest the landing files on the gateway cluster's workers, then query with engine="dask".

    The cluster engine's answer (partial aggregates in DuckDB tasks on the gateway's workers)
    must equal the DuckDB engine's on the same lake version.
    """
    import workbench
    from workbench.config import Settings, reset_settings
    from workbench.lake.ingest import ingest
    from workbench.lake.storage import Lake

    monkeypatch.setenv("WORKBENCH_LAKE", str(tmp_path / "lake"))
    reset_settings()
    client = get_client()
    report = ingest(str(landing_dir), Lake(str(tmp_path / "lake"), settings=Settings(lake=str(tmp_path / "lake"))))
    assert report.ran_on == client.scheduler_info()["address"], "the ingest tasks ran on the gateway's workers"
    assert report.rows_written > 0

    wb = workbench.connect(str(tmp_path / "lake"))
    sql = (
        "SELECT region, channel, SUM(revenue) AS revenue, COUNT(*) AS n FROM sales "
        "WHERE year = 2023 GROUP BY region, channel ORDER BY region, channel"
    )
    on_dask = wb.sql(sql, engine="dask")
    on_duckdb = wb.sql(sql, engine="duckdb")
    assert on_dask.engine == "dask" and on_duckdb.engine == "duckdb"
    assert get_client() is client, "the dask engine used the process-wide gateway client"
    assert "route: split aggregate" in (wb.sql(sql, engine="dask", explain=True).explain or "")
    got = on_dask.df.sort_values(["region", "channel"]).reset_index(drop=True)
    want = on_duckdb.df.sort_values(["region", "channel"]).reset_index(drop=True)
    assert len(got) == len(want) > 0
    assert list(got.region) == list(want.region) and list(got.channel) == list(want.channel)
    np.testing.assert_allclose(got.revenue.astype(float), want.revenue.astype(float), rtol=1e-9)
    assert list(got.n.astype(int)) == list(want.n.astype(int))
