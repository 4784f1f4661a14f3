"""The API's authenticator chain: bearer header -> :class:`Identity`, with a rate limit on failures.

Which authenticators run is configuration (``settings.auth``): workbench tokens always (they
live in the catalog), OIDC access tokens when an issuer is set. With no authentication
configured at all the API serves the local user only, and :mod:`workbench.auth.binding` keeps
it on loopback.
"""

from __future__ import annotations

import time
from typing import Any

from workbench.auth.identity import Authenticator, Identity
from workbench.auth.ratelimit import Limiter
from workbench.config import Settings
from workbench.errors import AuthenticationError, RateLimited

BEARER = "bearer "


def dashboard_auth_mode(settings: Settings) -> str | None:
    """How dashboard viewers sign in: ``oidc``, ``users`` (the local users file) or None."""
    from workbench.auth.users import UsersFile

    if settings.auth.oidc.issuer:
        return "oidc"
    if UsersFile.for_settings(settings).users():
        return "users"
    return None


def auth_required(settings: Settings, tokens: Any = None) -> bool:
    """Whether served surfaces demand credentials (``auth.required``, else: is anything configured)."""
    if settings.auth.required is not None:
        return settings.auth.required
    if dashboard_auth_mode(settings) is not None:
        return True
    return bool(tokens.any_active()) if tokens is not None else False


class ApiAuth:
    """Resolve the caller of one API request from its ``Authorization`` header.

    Whether credentials are required is re-checked every few seconds while it is not: a token
    created while the server runs without authentication switches it to requiring tokens. Once
    required, always required until a restart (revoking every token never reopens the API).
    """

    RECHECK_S = 5.0

    def __init__(self, authenticators: list[Authenticator], settings: Settings, tokens: Any = None) -> None:
        self.authenticators = authenticators
        self.settings = settings
        self.tokens = tokens
        self.local_user = settings.user
        self.limiter = Limiter(settings.auth.login_attempts, settings.auth.login_window_s)
        self._required = auth_required(settings, tokens)
        self._checked = time.monotonic()

    @property
    def required(self) -> bool:
        if self._required or self.settings.auth.required is not None:
            return self._required
        if time.monotonic() - self._checked > self.RECHECK_S:
            self._required = auth_required(self.settings, self.tokens)
            self._checked = time.monotonic()
        return self._required

    def identify(self, header: str | None, client: str) -> Identity:
        """The caller's identity; raises AuthenticationError (HTTP 401) or RateLimited (429)."""
        if not self.required:
            return Identity(self.local_user, "local")
        if not header or not header.lower().startswith(BEARER) or not header[len(BEARER) :].strip():
            raise AuthenticationError(
                "authentication required",
                "send `Authorization: Bearer <token>`; create a token with `workbench token create --user NAME`",
            )
        key = f"client:{client}"
        self.limiter.check(key)
        credential = header[len(BEARER) :].strip()
        try:
            identity = self._authenticate(credential)
        except RateLimited:
            raise
        except AuthenticationError:
            self.limiter.failed(key)
            raise
        self.limiter.succeeded(key)
        return identity

    def _authenticate(self, credential: str) -> Identity:
        for auth in self.authenticators:
            found = auth.authenticate(credential)
            if found is not None:
                return found
        raise AuthenticationError(
            "unknown kind of bearer token",
            "use a token from `workbench token create` or an access token of the configured OIDC provider",
        )


def api_authenticator(settings: Settings, catalog: Any = None) -> ApiAuth:
    """The authenticators ``settings`` configure, in order: workbench tokens, then OIDC."""
    from workbench.auth.tokens import TokenStore

    if catalog is None:
        from workbench.observability.recording import catalog_for

        catalog = catalog_for(settings)
    tokens = TokenStore(catalog)
    chain: list[Authenticator] = [tokens]
    if settings.auth.oidc.issuer:
        from workbench.auth.oidc import OidcProvider

        chain.append(OidcProvider(settings.auth.oidc))
    return ApiAuth(chain, settings, tokens)
