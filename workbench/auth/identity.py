"""The authenticated identity and the one interface every way of authenticating implements."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Identity:
    """A user the workbench has verified, and how.

    ``name`` is the login the access policies know (``policies.yaml`` ``users:``); ``method``
    says how it was verified (``token``, ``oidc``, ``password``, ``local``) so the audit log can
    tell a token from a dashboard login; ``credential`` names the credential without revealing
    it (a token id, an OIDC subject).
    """

    name: str
    method: str
    credential: str = ""
    expires_at: dt.datetime | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.method}{': ' + self.credential if self.credential else ''})"


class Authenticator(Protocol):
    """Turns the credential of an ``Authorization: Bearer`` header into an :class:`Identity`.

    Returns None when the credential is not of its kind (the next authenticator tries);
    raises :class:`~workbench.errors.AuthenticationError` when it is of its kind but invalid
    (expired, revoked, bad signature), so a bad token is never tried elsewhere.
    """

    method: str

    def authenticate(self, credential: str) -> Identity | None: ...
