"""``workbench users ...`` and ``workbench token ...``: credentials for the served surfaces."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from workbench.cli.output import handles_errors, json_option

if TYPE_CHECKING:
    from workbench.auth.tokens import TokenStore


@click.group("users")
def users_group() -> None:
    """Dashboard logins in the local users file (salted scrypt hashes, never plaintext)."""


@users_group.command("add")
@click.argument("name")
@click.option("--replace", is_flag=True, help="set a new password for an existing user")
@click.option("--password-stdin", is_flag=True, help="read the password from stdin (scripts) instead of a prompt")
@handles_errors
def users_add(name: str, replace: bool, password_stdin: bool) -> None:
    """Add NAME (a user of policies.yaml) to the users file; prompts for the password."""
    import sys

    from workbench.auth.users import UsersFile
    from workbench.config import get_settings

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    users = UsersFile.for_settings(get_settings())
    users.add(name, password, replace=replace)
    click.echo(f"{'updated' if replace else 'added'} {name} in {users.path}")


@users_group.command("list")
@json_option
@handles_errors
def users_list(as_json: bool) -> None:
    """Users of the users file (names and creation times only)."""
    from workbench.auth.users import UsersFile
    from workbench.cli.output import to_json
    from workbench.config import get_settings

    users = UsersFile.for_settings(get_settings()).users()
    rows = [{"user": n, "created": u.get("created")} for n, u in sorted(users.items())]
    click.echo(to_json(rows) if as_json else "\n".join(f"{r['user']}\t{r['created']}" for r in rows) or "no users")


@users_group.command("remove")
@click.argument("name")
@handles_errors
def users_remove(name: str) -> None:
    """Remove NAME from the users file (their signed-in sessions end when their cookie expires)."""
    from workbench.auth.users import UsersFile
    from workbench.config import get_settings

    UsersFile.for_settings(get_settings()).remove(name)
    click.echo(f"removed {name}")


@click.group("token")
def token_group() -> None:
    """API bearer tokens, stored hashed in the catalog."""


def _store() -> TokenStore:
    from workbench.auth.tokens import TokenStore
    from workbench.catalog import open_catalog
    from workbench.config import get_settings

    return TokenStore(open_catalog(get_settings()))


@token_group.command("create")
@click.option("--user", "user", required=True, help="the user (of policies.yaml) the token acts as")
@click.option("--expires", default=None, help="lifetime, e.g. 30d, 12h, 2w; default auth.token_days")
@click.option("--note", default=None, help="what the token is for (shown by `token list`)")
@json_option
@handles_errors
def token_create(user: str, expires: str | None, note: str | None, as_json: bool) -> None:
    """Create a token for USER and print it once (only its hash is kept)."""
    import datetime as dt

    from workbench.auth.tokens import parse_duration
    from workbench.cli.output import to_json
    from workbench.config import get_settings
    from workbench.security.policies import policy_for_user

    settings = get_settings()
    policy_for_user(user, settings)  # an unknown user fails here, with did-you-mean
    days = settings.auth.token_days
    lifetime = parse_duration(expires) if expires else (dt.timedelta(days=days) if days else None)
    store = _store()
    token, info = store.create(user, lifetime, note)
    if as_json:
        click.echo(to_json({"token": token, **info.to_dict()}))
        return
    click.echo(token)
    until = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
    click.echo(f"token {info.id} for {user}, expires {until}; shown once, store it now", err=True)


@token_group.command("list")
@click.option("--user", "user", default=None, help="only this user's tokens")
@json_option
@handles_errors
def token_list(user: str | None, as_json: bool) -> None:
    """Tokens with their user, status and times (never their secret)."""
    from workbench.cli.output import to_json

    store = _store()
    rows = [t.to_dict() for t in store.list(user)]
    if as_json:
        click.echo(to_json(rows))
        return
    for r in rows:
        click.echo(f"{r['id']}\t{r['user']}\t{r['status']}\texpires {r['expires_at'] or 'never'}\t{r['note'] or ''}")
    if not rows:
        click.echo("no tokens")


@token_group.command("revoke")
@click.argument("token_id")
@handles_errors
def token_revoke(token_id: str) -> None:
    """Revoke the token TOKEN_ID (from `token list`); it is refused from the next request on."""
    store = _store()
    info = store.revoke(token_id)
    click.echo(f"revoked token {info.id} of {info.user}")


COMMANDS: list[click.Command] = [users_group, token_group]
