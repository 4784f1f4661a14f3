"""The one Dask connection of a process: LocalCluster, an existing scheduler, or dask-gateway.

Every Dask computation (ingest, the cluster SQL engine, rollup refresh) goes through
:func:`get_client` so a laptop and a Kubernetes deployment run the same code; only settings
change. Which cluster is chosen, in order:

1. ``settings.gateway_url`` (``WORKBENCH_GATEWAY_URL``): a new cluster on dask-gateway, scaled
   to ``gateway_workers``, with the configured auth. With a separate scheduler proxy port the
   client needs ``gateway_proxy_address`` (DESIGN.md pitfall), so it is always passed through.
2. ``settings.scheduler`` (``WORKBENCH_SCHEDULER``): a client to a scheduler someone else runs.
3. otherwise a LocalCluster bound to 127.0.0.1 (workers and dashboard never listen publicly).

The client is created lazily and reused process-wide; asking again with settings that point
elsewhere closes the old connection first. Clusters this module created are shut down by
:func:`close_client` (and at exit), so a gateway cluster is never left running and billing.
"""

from __future__ import annotations

import atexit
import getpass
import logging
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from workbench.config import Settings, get_settings
from workbench.errors import ConfigError, ServiceUnavailable

if TYPE_CHECKING:
    from distributed import Client

log = logging.getLogger(__name__)
#: seconds a batch job waits for the first worker of a configured cluster before running locally
WORKERS_TIMEOUT_S = 120

#: seconds to wait for a scheduler or gateway before declaring it unreachable
CONNECT_TIMEOUT_S = 20


@dataclass
class _Connection:
    kind: str  # "local" | "scheduler" | "gateway"
    target: str  # what the settings pointed at (for reuse decisions and display)
    client: Client
    cluster: Any = None  # LocalCluster or GatewayCluster we own, None for an external scheduler
    gateway: Any = None  # the dask_gateway.Gateway, closed with the connection


_lock = threading.RLock()
_current: _Connection | None = None


def cluster_kind(settings: Settings | None = None) -> str:
    """Which kind of cluster the settings select, without connecting."""
    s = settings or get_settings()
    if s.gateway_url:
        return "gateway"
    if s.scheduler:
        return "scheduler"
    return "local"


def _target(settings: Settings) -> str:
    kind = cluster_kind(settings)
    if kind == "gateway":
        return f"{settings.gateway_url}|{settings.gateway_proxy_address or ''}|{settings.gateway_username or ''}"
    if kind == "scheduler":
        return str(settings.scheduler)
    return f"local:{settings.n_workers}x{settings.threads_per_worker}:{settings.worker_memory}"


def get_client(settings: Settings | None = None) -> Client:
    """The process-wide Dask client, created on first use and reused afterwards.

    Raises :class:`ServiceUnavailable` when a configured scheduler or gateway cannot be
    reached, and :class:`ConfigError` when gateway auth settings are incomplete.
    """
    global _current
    s = settings or get_settings()
    with _lock:
        target = _target(s)
        if _current is not None:
            if _current.target == target and _current.client.status == "running":
                return _current.client
            close_client()
        kind = cluster_kind(s)
        if kind == "gateway":
            _current = _connect_gateway(s, target)
        elif kind == "scheduler":
            _current = _connect_scheduler(s, target)
        else:
            _current = _start_local(s, target)
        return _current.client


def client_for_paths(settings: Settings, paths: list[str], purpose: str) -> Client | None:
    """The configured cluster's client when every worker can read ``paths``, else None.

    For batch jobs that work on files of this machine (ingest staging, a local lake). Only an
    explicitly configured cluster (``WORKBENCH_SCHEDULER`` / ``WORKBENCH_GATEWAY_URL``) is used:
    starting a LocalCluster for a batch job costs more than the threads it would replace. The
    check runs on the workers themselves (a gateway or scheduler on this host, or a shared file
    system, passes). Otherwise, or when the cluster cannot be reached, the caller runs on local
    threads and the log says why: a batch job never fails for want of a cluster.
    """
    if cluster_kind(settings) == "local":
        return None
    try:
        client = get_client(settings)
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)  # a new gateway cluster is still scaling
        seen = client.run(_all_dirs, list(paths))
    except Exception as e:  # unreachable scheduler or gateway: run locally rather than not at all
        log.warning("%s runs on local threads: the configured Dask cluster is unavailable (%s)", purpose, e)
        return None
    blind = [w for w, ok in seen.items() if not ok]
    if not seen or blind:
        log.warning(
            "%s runs on local threads: %d of %d Dask workers cannot see %s "
            "(workers on other machines need a shared file system or an s3:// lake)",
            purpose,
            len(blind),
            len(seen),
            ", ".join(paths),
        )
        return None
    return client


def _all_dirs(paths: list[str]) -> bool:
    return all(os.path.isdir(p) for p in paths)


def close_client() -> None:
    """Close the client and shut down any cluster this process started (idempotent)."""
    global _current
    with _lock:
        conn, _current = _current, None
        if conn is None:
            return
        try:
            conn.client.close()
        except Exception as e:  # closing is best effort: the cluster may already be gone
            log.debug("closing the Dask client: %s", e)
        if conn.cluster is not None:
            try:
                if conn.kind == "gateway":
                    conn.cluster.shutdown()
                    _close_quietly(conn.cluster.gateway)
                else:
                    conn.cluster.close()
            except Exception as e:
                log.debug("closing the Dask cluster: %s", e)
        if conn.gateway is not None:
            _close_quietly(conn.gateway)


def _close_unstarted_clusters(error: BaseException) -> None:
    """Close the Gateway client of a GatewayCluster that failed to start.

    ``Gateway.new_cluster`` builds a ``GatewayCluster`` with a Gateway client of its own; when
    the cluster cannot start, nothing closes that client and a later garbage collection runs its
    ``__del__``, which stops its loop runner under distributed's class-wide ``LoopRunner`` lock.
    If that collection happens while another loop runner is starting (holding the lock), the
    process deadlocks: seen with distributed 2026.8 / dask-gateway 2026.3 in the test suite. The
    half-built cluster is only reachable from the failure's traceback (it has already left
    ``GatewayCluster._instances``), so its frames are where its client is found.
    """
    from dask_gateway import Gateway, GatewayCluster

    tb = error.__traceback__
    while tb is not None:
        for value in list(tb.tb_frame.f_locals.values()):
            client = vars(value).get("gateway") if isinstance(value, GatewayCluster) else value
            if isinstance(client, Gateway):
                _close_quietly(client)
        tb = tb.tb_next


def _close_quietly(gateway: Any) -> None:
    """Close a ``dask_gateway.Gateway`` once.

    dask-gateway 2024.1 closes again in ``__del__`` after its loop has stopped and raises;
    dropping ``_loop_runner`` after the first close makes ``__del__`` skip that second close.
    """
    if gateway is None or not hasattr(gateway, "_loop_runner"):
        return
    try:
        gateway.close()
    except Exception as e:
        log.debug("closing the gateway: %s", e)
    try:
        del gateway._loop_runner
    except AttributeError:
        pass


atexit.register(close_client)


def dashboard_link() -> str | None:
    """The dashboard URL of the current connection (None when not connected)."""
    with _lock:
        if _current is None:
            return None
        if _current.cluster is not None and getattr(_current.cluster, "dashboard_link", None):
            return str(_current.cluster.dashboard_link)
        try:
            return str(_current.client.dashboard_link)
        except Exception as e:
            log.debug("no dashboard link: %s", e)
            return None


def cluster_info(settings: Settings | None = None, connect: bool = True) -> dict[str, Any]:
    """What ``workbench cluster`` shows: kind, address, workers, threads, memory, dashboard.

    With ``connect=False`` nothing is started; only the configured kind and target are
    reported (plus the live details when a connection already exists).
    """
    s = settings or get_settings()
    info: dict[str, Any] = {"kind": cluster_kind(s), "target": _display_target(s), "connected": False}
    client = get_client(s) if connect else (_current.client if _current is not None else None)
    if client is None:
        return info
    workers = client.scheduler_info().get("workers", {})
    info.update(
        connected=True,
        address=client.scheduler.address if client.scheduler is not None else None,
        workers=len(workers),
        threads=sum(int(w.get("nthreads", 0)) for w in workers.values()),
        memory_bytes=sum(int(w.get("memory_limit", 0) or 0) for w in workers.values()),
        dashboard=dashboard_link(),
    )
    if _current is not None and _current.kind == "gateway" and _current.cluster is not None:
        info["gateway_cluster"] = _current.cluster.name
    return info


def _display_target(s: Settings) -> str:
    kind = cluster_kind(s)
    if kind == "gateway":
        proxy = f" (proxy {s.gateway_proxy_address})" if s.gateway_proxy_address else ""
        return f"{s.gateway_url}{proxy}"
    if kind == "scheduler":
        return str(s.scheduler)
    return f"LocalCluster {s.n_workers} workers x {s.threads_per_worker} threads, {s.worker_memory} each"


# --- the three ways to connect ------------------------------------------------------------------


def _start_local(s: Settings, target: str) -> _Connection:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=s.n_workers,
        threads_per_worker=s.threads_per_worker,
        memory_limit=s.worker_memory,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
        processes=True,
    )
    return _Connection("local", target, Client(cluster), cluster)


def _connect_scheduler(s: Settings, target: str) -> _Connection:
    from distributed import Client

    try:
        client = Client(s.scheduler, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as e:
        raise ServiceUnavailable(
            f"cannot reach the Dask scheduler at {s.scheduler}: {e}",
            "check WORKBENCH_SCHEDULER (tcp://host:8786) and that the scheduler is running; "
            "unset it to use a LocalCluster",
        ) from e
    return _Connection("scheduler", target, client)


def gateway_auth(s: Settings) -> Any:
    """The dask-gateway client auth object for ``settings.gateway_auth``.

    ``simple`` (the server's SimpleAuthenticator) and ``basic`` both speak HTTP Basic;
    ``jupyterhub`` takes the API token from ``gateway_password`` or ``JUPYTERHUB_API_TOKEN``;
    ``kerberos`` uses the ticket cache (``kinit`` first). None = dask-gateway's own config.
    """
    from dask_gateway.auth import BasicAuth, JupyterHubAuth, KerberosAuth

    password = s.gateway_password.get_secret_value() if s.gateway_password is not None else None
    if s.gateway_auth in ("simple", "basic"):
        return BasicAuth(username=s.gateway_username or getpass.getuser(), password=password)
    if s.gateway_auth == "jupyterhub":
        token = password or os.environ.get("JUPYTERHUB_API_TOKEN")
        if not token:
            raise ConfigError(
                "jupyterhub gateway auth needs an API token",
                "set WORKBENCH_GATEWAY_PASSWORD or JUPYTERHUB_API_TOKEN",
            )
        return JupyterHubAuth(api_token=token)
    if s.gateway_auth == "kerberos":
        return KerberosAuth()
    return None


def _new_gateway(gateway_cls: Any, s: Settings, auth: Any) -> Any:
    """Create the Gateway client; retried once because its IO-loop thread may not start within
    distributed's fixed 10 s on a saturated machine (an AssertionError, not a real failure)."""
    for attempt in (1, 2):
        try:
            return gateway_cls(s.gateway_url, proxy_address=s.gateway_proxy_address, auth=auth)
        except AssertionError as e:
            if attempt == 2:
                raise ServiceUnavailable(
                    "the dask-gateway client could not start its event loop", "the machine is overloaded; retry"
                ) from e
    raise AssertionError("unreachable")


def _connect_gateway(s: Settings, target: str) -> _Connection:
    from dask_gateway import Gateway

    auth = gateway_auth(s)
    hint = (
        "check WORKBENCH_GATEWAY_URL, WORKBENCH_GATEWAY_PROXY_ADDRESS (needed when the scheduler "
        "proxy has its own port) and the auth settings (WORKBENCH_GATEWAY_AUTH/_USERNAME/_PASSWORD)"
    )
    gateway = _new_gateway(Gateway, s, auth)
    try:
        cluster = gateway.new_cluster()
    except Exception as e:  # aiohttp, HTTP 401/403, timeouts: all mean "gateway not usable"
        _close_quietly(gateway)
        _close_unstarted_clusters(e)
        raise ServiceUnavailable(f"cannot create a cluster on dask-gateway {s.gateway_url}: {e}", hint) from e
    try:
        cluster.scale(s.gateway_workers)
        client = cluster.get_client(set_as_default=True)
    except Exception as e:
        try:
            cluster.shutdown()
        except Exception as shutdown_error:
            log.debug("shutting down the half-started gateway cluster: %s", shutdown_error)
        _close_quietly(cluster.gateway)
        _close_quietly(gateway)
        raise ServiceUnavailable(
            f"dask-gateway cluster {cluster.name} started but the client cannot reach its scheduler: {e}", hint
        ) from e
    return _Connection("gateway", target, client, cluster, gateway)
