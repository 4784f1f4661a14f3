"""The HTTP API with a real OIDC provider on loopback: its access tokens identify the caller.

Opaque access tokens are checked at the provider's userinfo endpoint; JWTs (here the
provider's signed ID token, audience = the client) against its JWKS. Revoking a user's
tokens at the provider locks them out once the short userinfo cache lapses.
"""

from __future__ import annotations

import base64
import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fixtures import oidc as oidc_fixtures
from tests.fixtures.oidc import oidc_tokens
from tests.test_api import BY_REGION, ApiServer, api_settings, assert_rows, assert_unauthenticated, region_truth

oidc_issuer = oidc_fixtures.oidc_issuer  # the provider fixture, shared


@pytest.fixture(scope="module")
def oidc_api(assistant_lake: str, oidc_issuer: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    from workbench.config import OidcSettings

    oidc = OidcSettings(issuer=oidc_issuer, audience="api-client")
    settings = api_settings(assistant_lake, tmp_path_factory.mktemp("oidc_api_home"), oidc=oidc, login_attempts=50)
    with ApiServer(assistant_lake, settings) as server:
        yield server


def test_opaque_access_token_via_userinfo(oidc_api: ApiServer, oidc_issuer: str, assistant_lake: str) -> None:
    tokens = oidc_tokens(oidc_issuer, "north_analyst")
    assert tokens["access_token"].count(".") != 2  # opaque: only the provider can tell who it is
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION, "user": "admin"}, token=tokens["access_token"])
    assert status == 200, body
    assert_rows(body, region_truth(assistant_lake, ["North"]))
    admin = oidc_tokens(oidc_issuer, "admin")["access_token"]
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION}, token=admin)
    assert_rows(body, region_truth(assistant_lake))


def test_jwt_verified_against_jwks(oidc_api: ApiServer, oidc_issuer: str, assistant_lake: str) -> None:
    jwt = oidc_tokens(oidc_issuer, "north_analyst")["id_token"]
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION}, token=jwt)
    assert status == 200, body
    assert_rows(body, region_truth(assistant_lake, ["North"]))
    # the same token with its payload changed to claim admin: the signature no longer matches
    head, payload, sig = jwt.split(".")
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["preferred_username"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION}, token=f"{head}.{forged}.{sig}")
    assert_unauthenticated(status, body)
    # a token for another audience is refused
    other = oidc_tokens(oidc_issuer, "north_analyst", client_id="someone-else")["id_token"]
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION}, token=other)
    assert_unauthenticated(status, body)
    assert "audience" in body["error"]["message"].lower()


def test_tokens_revoked_at_the_provider_stop_working(
    oidc_api: ApiServer, oidc_issuer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from workbench.auth import oidc

    monkeypatch.setattr(oidc, "USERINFO_TTL_S", 0.0)
    token = oidc_tokens(oidc_issuer, "analyst")["access_token"]
    assert oidc_api.request("/api/sql", {"sql": BY_REGION}, token=token)[0] == 200
    req = urllib.request.Request(f"{oidc_issuer}/users/analyst/revoke-tokens", data=b"", method="POST")
    urllib.request.urlopen(req, timeout=30).close()
    status, body, _ = oidc_api.request("/api/sql", {"sql": BY_REGION}, token=token)
    assert_unauthenticated(status, body)


def test_token_of_another_issuer_is_refused(oidc_issuer: str) -> None:
    """The same provider under another name is another issuer: its tokens' ``iss`` does not match."""
    from workbench.auth.oidc import OidcProvider
    from workbench.config import OidcSettings
    from workbench.errors import AuthenticationError

    jwt = oidc_tokens(oidc_issuer, "admin")["id_token"]
    assert OidcProvider(OidcSettings(issuer=oidc_issuer)).authenticate(jwt) is not None
    other = OidcProvider(OidcSettings(issuer=oidc_issuer.replace("localhost", "127.0.0.1")))
    with pytest.raises(AuthenticationError) as err:
        other.authenticate(jwt)
    assert "issuer" in err.value.message.lower()
