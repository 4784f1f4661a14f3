"""Sign-in for the served dashboard, on Panel's own auth providers.

``dashboard_auth(settings)`` returns the ``pn.serve`` keyword arguments for the configured
mode: Panel's generic OAuth provider pointed at the OIDC issuer's endpoints, or a login page
checked against the local users file (salted scrypt hashes; Panel's own basic auth compares
plaintext, so its handler's check is replaced) with failed attempts rate-limited per user and
per client address. Either way the signed ``user`` cookie expires after
``auth.session_hours`` and ``pn.state.user`` names the viewer whose policy every query of the
session runs under.
"""

from __future__ import annotations

import secrets
from typing import Any

import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler

from workbench.auth.ratelimit import Limiter
from workbench.auth.resolve import dashboard_auth_mode
from workbench.auth.users import UsersFile
from workbench.config import Settings
from workbench.errors import RateLimited


def cookie_secret(settings: Settings) -> str:
    """The key signing session cookies: configured, or generated once into ``home`` (mode 0600)."""
    if settings.auth.cookie_secret is not None:
        return settings.auth.cookie_secret.get_secret_value()
    path = settings.home_path / "cookie.key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


class UsersLoginHandler(BasicLoginHandler):
    """Panel's login page, checked against the users file and rate-limited."""

    users: UsersFile
    limiter: Limiter

    def post(self) -> None:
        username = self.get_argument("username", "")
        password = self.get_argument("password", "")
        keys = (f"user:{username}", f"client:{self.request.remote_ip}")
        try:
            self.limiter.check(*keys)
        except RateLimited as e:
            self._fail(f"{e.message}: {e.hint}")
            return
        if not self.users.check(username, password):
            self.limiter.failed(*keys)
            self._fail("Invalid username or password!")
            return
        self.limiter.succeeded(*keys)
        self.set_current_user(username)
        self.redirect(self.get_cookie("next_url", "/") or "/")

    def _fail(self, message: str) -> None:
        self.redirect(self.request.path + "?error=" + tornado.escape.url_escape(message))


class UsersAuthProvider(BasicAuthProvider):
    """Panel's basic-auth provider with :class:`UsersLoginHandler` as its login page."""

    def __init__(self, users: UsersFile, limiter: Limiter, **kwargs: Any) -> None:
        # set before Panel's constructor, which validates the login handler
        self._handler: Any = type("BoundUsersLoginHandler", (UsersLoginHandler,), {"users": users, "limiter": limiter})
        super().__init__(**kwargs)

    @property
    def login_handler(self) -> type[UsersLoginHandler]:
        self._handler._login_endpoint = self._login_endpoint
        self._handler._login_template = self._login_template
        return self._handler  # type: ignore[no-any-return]


def dashboard_auth(settings: Settings) -> dict[str, Any]:
    """``pn.serve`` keyword arguments signing viewers in; empty when no sign-in is configured."""
    import panel as pn

    mode = dashboard_auth_mode(settings)
    if mode is None:
        return {}
    # Panel's unit is days; its config maps the public name onto the parameter behind it
    pn.config.oauth_expiry = settings.auth.session_hours / 24  # type: ignore[misc]
    common: dict[str, Any] = {"cookie_secret": cookie_secret(settings)}
    if mode == "users":
        users = UsersFile.for_settings(settings)
        limiter = Limiter(settings.auth.login_attempts, settings.auth.login_window_s)
        return {**common, "auth_provider": UsersAuthProvider(users, limiter)}
    return {**common, **_oidc_kwargs(settings)}


def _oidc_kwargs(settings: Settings) -> dict[str, Any]:
    from workbench.auth.oidc import OidcProvider
    from workbench.errors import ConfigError

    oidc = settings.auth.oidc
    if not oidc.client_id or oidc.client_secret is None:
        raise ConfigError(
            "OIDC sign-in needs a client id and secret",
            "set WORKBENCH_AUTH__OIDC__CLIENT_ID and WORKBENCH_AUTH__OIDC__CLIENT_SECRET (from your provider)",
        )
    provider = OidcProvider(oidc)
    params = {
        "AUTHORIZE_URL": provider.endpoint("authorization_endpoint"),
        "TOKEN_URL": provider.endpoint("token_endpoint"),
        "USER_URL": provider.endpoint("userinfo_endpoint"),
        "USER_KEY": oidc.username_claim,
        "scope": oidc.scope.split(),
    }
    kwargs: dict[str, Any] = {
        "oauth_provider": "generic",
        "oauth_key": oidc.client_id,
        "oauth_secret": oidc.client_secret.get_secret_value(),
        "oauth_extra_params": params,
        "oauth_jwt_user": oidc.username_claim,
    }
    if oidc.redirect_uri:
        kwargs["oauth_redirect_uri"] = oidc.redirect_uri
    return kwargs


def viewer(settings: Settings, signed_in: bool) -> str:
    """The user the current dashboard session runs as; with sign-in, only ``pn.state.user``.

    Fails closed: with sign-in configured, a session without a signed-in user (or Panel's
    ``guest``) gets no data at all instead of the configured default user's.
    """
    import panel as pn

    from workbench.errors import AuthenticationError

    if not signed_in:
        return settings.user
    user = pn.state.user
    if not user or user == "guest":
        raise AuthenticationError("this dashboard session is not signed in", "reload the page and sign in")
    return str(user)


def session_seconds_left(settings: Settings) -> float | None:
    """Seconds until this browser session's sign-in expires (from its signed cookie's timestamp).

    None when the session has no valid signed ``user`` cookie. Tornado only checks the cookie's
    age when the websocket opens, so a page left open would outlive its sign-in without this.
    """
    import time

    import panel as pn
    from tornado.web import decode_signed_value

    raw = pn.state.cookies.get("user") if pn.state.cookies else None
    secret = pn.config.cookie_secret
    max_days = settings.auth.session_hours / 24
    if not raw or not secret or decode_signed_value(secret, "user", raw, max_age_days=max_days) is None:
        return None
    try:  # tornado's v2 format: 2|<len>:<key version>|<len>:<timestamp>|...
        issued = int(str(raw).split("|")[2].split(":", 1)[1])
    except (IndexError, ValueError):
        return None
    return issued + settings.auth.session_hours * 3600 - time.time()


def end_at_expiry(page: Any, settings: Settings) -> None:
    """Replace ``page`` (a Panel template) by a sign-in notice when the session's sign-in expires."""
    import panel as pn

    left = session_seconds_left(settings)
    if left is None or pn.state.curdoc is None:
        return

    def expire() -> None:
        note = pn.pane.Alert(
            "Your session has expired. Reload the page to sign in again.",
            name="Session expired",
            alert_type="warning",
            css_classes=["wb-session-expired"],
        )
        # a served template's areas are fixed; the layouts inside them can be emptied
        for area in (page.sidebar, page.main):
            for layout in area:
                if hasattr(layout, "objects"):
                    layout.objects = []
        page.main[0].objects = [note]

    pn.state.curdoc.add_timeout_callback(expire, max(0, int(left * 1000)))
