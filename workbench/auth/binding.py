"""Safe defaults for serving: without authentication, loopback only."""

from __future__ import annotations

import ipaddress

from workbench.errors import ConfigError

HOW_TO_CONFIGURE = (
    "configure authentication first: `workbench users add NAME` (dashboard logins from the local users file), "
    "`workbench token create --user NAME` (API tokens), or an OIDC provider via WORKBENCH_AUTH__OIDC__ISSUER, "
    "WORKBENCH_AUTH__OIDC__CLIENT_ID and WORKBENCH_AUTH__OIDC__CLIENT_SECRET; or bind to 127.0.0.1"
)


def is_loopback(address: str) -> bool:
    if address.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(what: str, address: str, authenticated: bool, user: str) -> str:
    """The start-up notice for ``what`` on ``address``; refuses a non-loopback bind without auth."""
    if authenticated:
        return f"{what}: authentication required on {address}"
    if not is_loopback(address):
        raise ConfigError(f"refusing to serve the {what} on {address} without authentication", HOW_TO_CONFIGURE)
    return (
        f"{what}: no authentication configured, so bound to loopback ({address}) only; "
        f"every request acts as user {user!r}"
    )
