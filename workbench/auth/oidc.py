"""OpenID Connect: the provider's discovery document, and its access tokens as API credentials.

A JWT access token is verified locally against the provider's JWKS (signature, issuer, expiry,
audience when configured); an opaque one is sent to the provider's userinfo endpoint, whose
answer is kept for a short while so each request does not cost a round trip. Either way the
user is the configured claim (``auth.oidc.username_claim``), which names a user of
``policies.yaml``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from functools import cached_property
from typing import Any

import httpx
import jwt

from workbench.auth.identity import Identity
from workbench.config import OidcSettings
from workbench.errors import AuthenticationError, ConfigError, ServiceUnavailable

#: seconds an opaque token's userinfo answer is trusted before asking the provider again
USERINFO_TTL_S = 30.0
_TIMEOUT = httpx.Timeout(10.0)


class OidcProvider:
    """One configured provider: discovery, JWKS verification and userinfo, with small caches."""

    method = "oidc"

    def __init__(self, settings: OidcSettings) -> None:
        if not settings.issuer:
            raise ConfigError("no OIDC issuer configured", "set WORKBENCH_AUTH__OIDC__ISSUER (auth.oidc.issuer)")
        self.settings = settings
        self.issuer = settings.issuer.rstrip("/")
        self._userinfo: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    @cached_property
    def discovery(self) -> dict[str, Any]:
        """The issuer's ``/.well-known/openid-configuration`` (read once)."""
        url = f"{self.issuer}/.well-known/openid-configuration"
        try:
            resp = httpx.get(url, timeout=_TIMEOUT)
            resp.raise_for_status()
            doc: dict[str, Any] = resp.json()
        except (httpx.HTTPError, ValueError) as e:
            raise ServiceUnavailable(
                f"cannot read the OIDC discovery document {url}: {e.__class__.__name__}",
                "check WORKBENCH_AUTH__OIDC__ISSUER and that the provider is reachable",
            ) from e
        if doc.get("issuer", "").rstrip("/") != self.issuer:
            raise ConfigError(
                f"the provider at {self.issuer} calls itself {doc.get('issuer')!r}",
                "set WORKBENCH_AUTH__OIDC__ISSUER to exactly the provider's issuer URL",
            )
        return doc

    def endpoint(self, name: str) -> str:
        url = self.discovery.get(name)
        if not url:
            raise ConfigError(f"the OIDC provider {self.issuer} publishes no {name}", "use a standard OIDC provider")
        return str(url)

    @cached_property
    def _jwks(self) -> jwt.PyJWKClient:
        return jwt.PyJWKClient(self.endpoint("jwks_uri"), cache_keys=True, lifespan=3600, timeout=10)

    def authenticate(self, credential: str) -> Identity | None:
        claims = self._jwt_claims(credential) if credential.count(".") == 2 else self._userinfo_claims(credential)
        name = claims.get(self.settings.username_claim)
        if not isinstance(name, str) or not name:
            raise AuthenticationError(
                f"the OIDC token has no {self.settings.username_claim!r} claim",
                "set WORKBENCH_AUTH__OIDC__USERNAME_CLAIM to the claim holding the login (e.g. email, sub)",
            )
        return Identity(name, self.method, credential=str(claims.get("sub", "")))

    def _jwt_claims(self, token: str) -> dict[str, Any]:
        algorithms = self.discovery.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in algorithms if a != "none"]
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            # a token without a key id may be signed by any of the provider's signing keys
            keys = [self._jwks.get_signing_key(kid)] if kid else self._jwks.get_signing_keys()
            claims = self._decode(token, keys, algorithms)
        except jwt.PyJWKClientConnectionError as e:
            raise ServiceUnavailable(
                f"cannot read the OIDC provider's keys: {e}", "check that the provider is reachable"
            ) from e
        except (jwt.PyJWTError, jwt.PyJWKClientError) as e:
            raise AuthenticationError(
                f"invalid OIDC token: {e}", "sign in again at the provider for a fresh access token"
            ) from e
        return claims

    def _decode(self, token: str, keys: list[jwt.PyJWK], algorithms: list[str]) -> dict[str, Any]:
        error: jwt.PyJWTError = jwt.InvalidSignatureError("no signing key")
        for key in keys:
            try:
                return dict(
                    jwt.decode(
                        token,
                        key.key,
                        algorithms=algorithms,
                        issuer=self.discovery["issuer"],
                        audience=self.settings.audience,
                        options={"require": ["exp", "iss"], "verify_aud": bool(self.settings.audience)},
                    )
                )
            except jwt.InvalidSignatureError as e:
                error = e
        raise error

    def _userinfo_claims(self, token: str) -> dict[str, Any]:
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._userinfo.get(key)
            if hit is not None and now - hit[0] < USERINFO_TTL_S:
                return hit[1]
        try:
            resp = httpx.get(
                self.endpoint("userinfo_endpoint"), headers={"Authorization": f"Bearer {token}"}, timeout=_TIMEOUT
            )
        except httpx.HTTPError as e:
            raise ServiceUnavailable(
                f"cannot reach the OIDC userinfo endpoint: {e.__class__.__name__}", "check that the provider is up"
            ) from e
        if resp.status_code in (400, 401, 403):
            raise AuthenticationError(
                "the OIDC provider does not accept this access token", "sign in again for a fresh access token"
            )
        if resp.status_code != 200:
            raise ServiceUnavailable(f"the OIDC userinfo endpoint answered {resp.status_code}", "retry later")
        claims: dict[str, Any] = resp.json()
        with self._lock:
            self._userinfo = {k: v for k, v in self._userinfo.items() if now - v[0] < USERINFO_TTL_S}
            self._userinfo[key] = (now, claims)
        return claims
