"""Who is asking: authentication for the served dashboard and the HTTP API.

Every served surface resolves an :class:`Identity` from credentials (a bearer token, an OIDC
access token, a dashboard login), never from a field the caller fills in. Each way of
authenticating is an :class:`Authenticator`; :func:`api_authenticator` chains the ones
configured in ``settings.auth``. The identity's ``name`` is the user of ``policies.yaml`` whose
policy filters every query.
"""

from __future__ import annotations

from workbench.auth.identity import Authenticator, Identity
from workbench.auth.resolve import ApiAuth, api_authenticator, auth_required

__all__ = ["ApiAuth", "Authenticator", "Identity", "api_authenticator", "auth_required"]
