"""API bearer tokens, stored hashed in the catalog (``api_tokens``), listed without secrets, revocable.

A token reads ``wb_<id>_<secret>``: the id is public (``workbench token list`` shows it, the
audit log names it), the secret is shown once at creation and only its SHA-256 is kept. The
secret is 256 random bits, so a fast hash is enough (a password needs scrypt; a random key
does not), and each request costs one primary-key lookup.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from workbench.auth.identity import Identity
from workbench.catalog import schema as S
from workbench.errors import AuthenticationError, DataError, NotFoundError, ServiceUnavailable

PREFIX = "wb_"
#: last-used times are written at most this often per token (not once per request)
_TOUCH_EVERY = dt.timedelta(minutes=1)


@dataclass
class TokenInfo:
    """What ``token list`` shows: everything but the secret."""

    id: str
    user: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    last_used_at: dt.datetime | None
    note: str | None

    def status(self, now: dt.datetime | None = None) -> str:
        now = now or _now()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        iso = lambda v: v.isoformat() if v else None  # noqa: E731
        return {
            "id": self.id,
            "user": self.user,
            "status": self.status(),
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
            "revoked_at": iso(self.revoked_at),
            "last_used_at": iso(self.last_used_at),
            "note": self.note,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a workbench token, None for anything else (e.g. an OIDC token)."""
    if not token.startswith(PREFIX):
        return None
    parts = token[len(PREFIX) :].split("_", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


class TokenStore:
    """Create, list, revoke and verify tokens in the catalog database."""

    method = "token"

    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self._touched: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()

    def _begin(self) -> Any:
        """A catalog transaction (its schema ensured; database outages become ServiceUnavailable)."""
        return self.catalog._tx()

    def create(
        self, user: str, expires_in: dt.timedelta | None = None, note: str | None = None
    ) -> tuple[str, TokenInfo]:
        """A new token for ``user``: returns the full token (shown once) and its listing."""
        if not user:
            raise DataError("a token needs a user", "pass --user NAME (a user of policies.yaml)")
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = _now()
        info = TokenInfo(token_id, user, now, now + expires_in if expires_in else None, None, None, note)
        row = {**info.__dict__, "secret_sha256": _digest(secret)}
        with self._begin() as conn:
            conn.execute(sa.insert(S.api_tokens).values(**row))
        return f"{PREFIX}{token_id}_{secret}", info

    def list(self, user: str | None = None) -> list[TokenInfo]:
        query = sa.select(S.api_tokens).order_by(S.api_tokens.c.created_at)
        if user:
            query = query.where(S.api_tokens.c.user == user)
        with self._begin() as conn:
            return [_info(r) for r in conn.execute(query).mappings()]

    def any_active(self) -> bool:
        """Whether some token is neither revoked nor expired (then the API demands one)."""
        t = S.api_tokens
        live = sa.and_(t.c.revoked_at.is_(None), sa.or_(t.c.expires_at.is_(None), t.c.expires_at > _now()))
        with self._begin() as conn:
            return conn.execute(sa.select(t.c.id).where(live).limit(1)).first() is not None

    def revoke(self, token_id: str) -> TokenInfo:
        """Revoke by id (or by the full token); revoking twice keeps the first time."""
        parsed = parse(token_id)
        token_id = parsed[0] if parsed else token_id
        table = S.api_tokens
        with self._begin() as conn:
            found = conn.execute(sa.select(table).where(table.c.id == token_id)).mappings().first()
            if found is None:
                raise NotFoundError(f"no API token {token_id!r}", "see `workbench token list` for token ids")
            if found["revoked_at"] is None:
                conn.execute(sa.update(table).where(table.c.id == token_id).values(revoked_at=_now()))
            return _info(conn.execute(sa.select(table).where(table.c.id == token_id)).mappings().one())

    def authenticate(self, credential: str) -> Identity | None:
        """The identity of a valid token; None if it is not a workbench token; raises if invalid."""
        parsed = parse(credential)
        if parsed is None:
            return None
        token_id, secret = parsed
        table = S.api_tokens
        with self._begin() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == token_id)).mappings().first()
        expected = row["secret_sha256"] if row is not None else _digest("")
        if not hmac.compare_digest(_digest(secret), expected) or row is None:
            raise AuthenticationError("invalid API token", "create one with `workbench token create --user NAME`")
        info = _info(row)
        status = info.status()
        if status != "active":
            raise AuthenticationError(
                f"API token {token_id} is {status}", "ask an administrator for a new one (`workbench token create`)"
            )
        self._touch(token_id)
        return Identity(info.user, self.method, credential=token_id, expires_at=info.expires_at)

    def _touch(self, token_id: str) -> None:
        now = _now()
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and now - last < _TOUCH_EVERY:
                return
            self._touched[token_id] = now
        try:
            with self._begin() as conn:
                conn.execute(sa.update(S.api_tokens).where(S.api_tokens.c.id == token_id).values(last_used_at=now))
        except ServiceUnavailable:
            pass  # a last-used time is informative; it never fails a request


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row["id"],
        user=row["user"],
        created_at=_utc(row["created_at"]) or _now(),
        expires_at=_utc(row["expires_at"]),
        revoked_at=_utc(row["revoked_at"]),
        last_used_at=_utc(row["last_used_at"]),
        note=row["note"],
    )


def parse_duration(text: str) -> dt.timedelta:
    """``30d``, ``12h``, ``45m``, ``90s`` or ``2w`` as a timedelta (``--expires``)."""
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    text = text.strip().lower()
    try:
        value = float(text[:-1])
        unit = units[text[-1]]
    except (ValueError, KeyError, IndexError) as e:
        raise DataError(f"cannot read the duration {text!r}", "write e.g. 30d, 12h, 45m or 2w") from e
    if value <= 0:
        raise DataError(f"duration {text!r} is not positive", "write e.g. 30d, 12h, 45m or 2w")
    return dt.timedelta(**{unit: value})
