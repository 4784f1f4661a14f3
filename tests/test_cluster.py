"""Cluster selection, reuse and errors without a gateway (LocalCluster, scheduler address)."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from workbench.cli import main
from workbench.cluster import close_client, cluster_info, cluster_kind, dashboard_link, get_client
from workbench.config import get_settings
from workbench.errors import ServiceUnavailable


@pytest.fixture
def small_local(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORKBENCH_N_WORKERS", "1")
    monkeypatch.setenv("WORKBENCH_WORKER_MEMORY", "1GB")
    from workbench.config import reset_settings

    reset_settings()
    yield
    close_client()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_kind_follows_settings() -> None:
    assert cluster_kind(get_settings()) == "local"
    assert cluster_kind(get_settings(scheduler="tcp://127.0.0.1:1")) == "scheduler"
    assert cluster_kind(get_settings(scheduler="tcp://x:1", gateway_url="http://127.0.0.1:1")) == "gateway"


def test_local_cluster_loopback_reused_and_closed(small_local: None) -> None:
    client = get_client()
    assert client is get_client()
    assert client.scheduler.address.startswith("tcp://127.0.0.1:")
    link = dashboard_link()
    assert link is not None and "127.0.0.1" in link
    info = cluster_info(connect=False)
    assert info["kind"] == "local" and info["workers"] == 1
    assert client.submit(sum, [1, 2, 3]).result() == 6

    close_client()
    assert dashboard_link() is None


def test_existing_scheduler_by_address(small_local: None) -> None:
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://", host="127.0.0.1", dashboard_address=None
    ) as lc:
        client = get_client(get_settings(scheduler=lc.scheduler_address))
        assert client.submit(lambda: 41 + 1).result() == 42
        info = cluster_info(get_settings(scheduler=lc.scheduler_address), connect=False)
        assert info["kind"] == "scheduler" and info["address"] == lc.scheduler_address
        close_client()
        assert lc.scheduler is not None and lc.status.name == "running", "an external scheduler is not ours to close"


def test_unreachable_scheduler_is_service_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("workbench.cluster.CONNECT_TIMEOUT_S", 2)
    with pytest.raises(ServiceUnavailable) as exc:
        get_client(get_settings(scheduler=f"tcp://127.0.0.1:{_closed_port()}"))
    assert "WORKBENCH_SCHEDULER" in exc.value.hint


def test_unreachable_gateway_is_service_unavailable() -> None:
    import gc

    from dask_gateway import Gateway

    with pytest.raises(ServiceUnavailable):
        get_client(get_settings(gateway_url=f"http://127.0.0.1:{_closed_port()}", gateway_auth="simple"))
    # no Gateway client is left for a later garbage collection to close: its __del__ stops a loop
    # runner under distributed's class-wide lock and deadlocked the next Client start (seen here)
    open_clients = [g for g in gc.get_objects() if isinstance(g, Gateway) and hasattr(g, "_loop_runner")]
    assert open_clients == []


def test_cli_cluster_json_without_connecting() -> None:
    result = CliRunner().invoke(main, ["cluster", "--no-connect", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert body["kind"] == "local" and body["connected"] is False


def test_cli_cluster_error_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SCHEDULER", f"tcp://127.0.0.1:{_closed_port()}")
    monkeypatch.setattr("workbench.cluster.CONNECT_TIMEOUT_S", 2)
    from workbench.config import reset_settings

    reset_settings()
    result = CliRunner().invoke(main, ["cluster", "--json"])
    assert result.exit_code == 7
    assert json.loads(result.output)["error"]["type"] == "service_unavailable"
