"""The local users file: logins with salted scrypt password hashes, for small teams without OIDC.

A JSON object ``{"users": {name: {"hash": "scrypt$n$r$p$salt$digest", "created": iso}}}``
written with mode 0600. No plaintext password is ever stored or logged; verification costs
the same whether the user exists or not, so timing does not reveal which logins exist.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
import threading
from functools import cache
from pathlib import Path
from typing import Any

from workbench.config import Settings
from workbench.errors import ConfigError, DataError, NotFoundError

#: scrypt cost (about 50 ms and 16 MiB per check: slow for guessing, fine for a login)
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
MIN_PASSWORD = 8


def hash_password(password: str) -> str:
    """A self-describing salted scrypt hash (parameters travel with it, so they can be raised)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


@cache
def _dummy_hash() -> str:
    """A hash no password matches, checked for unknown users so they cost as much as known ones."""
    return hash_password(secrets.token_urlsafe(24))


def verify_password(password: str, encoded: str) -> bool:
    """Constant-time check of ``password`` against a :func:`hash_password` value."""
    try:
        scheme, n, r, p, salt, digest = encoded.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def users_path(settings: Settings) -> Path:
    return (
        Path(settings.auth.users_file).expanduser() if settings.auth.users_file else settings.home_path / "users.json"
    )


class UsersFile:
    """Read, add and check logins of the users file (re-read when it changes on disk)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._users: dict[str, dict[str, Any]] = {}

    @classmethod
    def for_settings(cls, settings: Settings) -> UsersFile:
        return cls(users_path(settings))

    def users(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            stamp = self.path.stat().st_mtime if self.path.exists() else None
            if stamp != self._stamp:
                self._users = self._read() if stamp is not None else {}
                self._stamp = stamp
            return dict(self._users)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(self.path.read_text())
            users = raw["users"]
            assert isinstance(users, dict)
        except (OSError, ValueError, KeyError, AssertionError) as e:
            raise ConfigError(
                f"cannot read the users file {self.path}: {e}",
                "recreate it with `workbench users add NAME`, or fix WORKBENCH_AUTH__USERS_FILE",
            ) from e
        return users

    def add(self, name: str, password: str, replace: bool = False) -> None:
        """Add (or with ``replace``, reset the password of) ``name``; written atomically, mode 0600."""
        if not name or any(c.isspace() for c in name):
            raise DataError(f"invalid user name {name!r}", "use a login without spaces, as in policies.yaml")
        if len(password) < MIN_PASSWORD:
            raise DataError("password too short", f"use at least {MIN_PASSWORD} characters")
        users = self.users()
        if name in users and not replace:
            raise DataError(f"user {name!r} already exists", "pass --replace to set a new password")
        users[name] = {"hash": hash_password(password), "created": dt.datetime.now(dt.UTC).isoformat()}
        self._write(users)

    def remove(self, name: str) -> None:
        users = self.users()
        if users.pop(name, None) is None:
            raise NotFoundError(f"no user {name!r} in {self.path}", "see `workbench users list`")
        self._write(users)

    def _write(self, users: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"users": users}, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)

    def check(self, name: str, password: str) -> bool:
        """True when ``password`` is ``name``'s; unknown users cost a hash too (no timing oracle)."""
        entry = self.users().get(name)
        ok = verify_password(password, entry["hash"] if entry else _dummy_hash())
        return ok and entry is not None
