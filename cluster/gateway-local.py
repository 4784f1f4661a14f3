"""dask-gateway-server configuration for one machine (development, CI, a single big box).

Run:  dask-gateway-server -f cluster/gateway-local.py
Then: WORKBENCH_GATEWAY_URL=http://127.0.0.1:8000 WORKBENCH_GATEWAY_PROXY_ADDRESS=tcp://127.0.0.1:8786 \
      WORKBENCH_GATEWAY_AUTH=simple WORKBENCH_GATEWAY_PASSWORD=... workbench cluster

Everything listens on loopback only. Schedulers and workers are local processes of the
same Python environment (the one running the server), so the workbench package (whose cluster
tasks run DuckDB) is importable on workers without building an image. Knobs come from environment variables
so tests and people can change ports without editing this file:

GATEWAY_HTTP_ADDRESS   HTTP API + dashboard proxy          (default 127.0.0.1:8000)
GATEWAY_TCP_ADDRESS    scheduler proxy; clients must be given it as proxy_address
                                                         (default 127.0.0.1:8786)
GATEWAY_PASSWORD       shared password of the simple authenticator (unset = any password)
GATEWAY_WORKDIR        where cluster working directories go (default a temp folder)
GATEWAY_WORKER_CORES / GATEWAY_WORKER_MEMORY / GATEWAY_MAX_WORKERS / GATEWAY_IDLE_TIMEOUT
"""

import os
import sys
import tempfile

c = get_config()  # type: ignore[name-defined]  # noqa: F821  (injected by traitlets)

_bin = os.path.dirname(sys.executable)
_env = os.environ.get

# --- listening addresses: loopback only -------------------------------------------------------
c.Gateway.address = "127.0.0.1:0"  # private API server (the proxy talks to it)
c.Proxy.address = _env("GATEWAY_HTTP_ADDRESS", "127.0.0.1:8000")
c.Proxy.tcp_address = _env("GATEWAY_TCP_ADDRESS", "127.0.0.1:8786")

# --- auth: SimpleAuthenticator = HTTP Basic, optional shared password (testing / one user) ----
c.Gateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
if _env("GATEWAY_PASSWORD"):
    c.SimpleAuthenticator.password = _env("GATEWAY_PASSWORD")

# --- backend: local processes. UnsafeLocalBackend runs clusters as the server's user (fine for
# one developer or root in a container); LocalBackend switches to each authenticated user's
# Unix account and needs root plus matching accounts. -----------------------------------------
c.Gateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.LocalBackend.clusters_directory = _env("GATEWAY_WORKDIR") or tempfile.mkdtemp(prefix="dask-gateway-")

# ``dask scheduler`` / ``dask worker``: current distributed ships no dask-scheduler/dask-worker scripts
c.ClusterConfig.scheduler_cmd = [os.path.join(_bin, "dask"), "scheduler"]
c.ClusterConfig.worker_cmd = [os.path.join(_bin, "dask"), "worker"]
c.ClusterConfig.worker_cores = int(_env("GATEWAY_WORKER_CORES", "1"))
c.ClusterConfig.worker_memory = _env("GATEWAY_WORKER_MEMORY", "2 G")
c.ClusterConfig.scheduler_memory = "1 G"
c.ClusterConfig.cluster_max_workers = int(_env("GATEWAY_MAX_WORKERS", "2"))
# Idle clusters are shut down so a forgotten notebook does not hold the machine.
c.ClusterConfig.idle_timeout = float(_env("GATEWAY_IDLE_TIMEOUT", "1800"))
# Workers see the same lake settings as the client (S3 endpoint/keys come from the environment).
c.ClusterConfig.environment = {k: v for k, v in os.environ.items() if k.startswith(("WORKBENCH_S3__", "AWS_"))}
