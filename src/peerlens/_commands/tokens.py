"""Personal access tokens of the JSON API: ``peerlens token create | list | revoke``.

A token is created by its user for themselves (signed in with their password, as every study
command), printed once, and stored only as a digest; see ``docs/web.md`` (API).
"""

from __future__ import annotations

from typing import Annotated

import typer

from peerlens._commands._signed_in import echo_table, signed_in
from peerlens._commands.study import Db, UserOpt

token_app = typer.Typer(
    help="Personal access tokens for the JSON API (your own).", no_args_is_help=True
)


def register(root: typer.Typer) -> None:
    """Attach the ``token`` command group to the root CLI."""
    root.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="What the token is for (shown in the list).")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="read, write, export or admin (repeat for several)."),
    ],
    days: Annotated[int, typer.Option("--days", help="Lifetime in days (1-366).")] = 90,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Create a token of your own and print it (once: only its digest is stored)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.tokens import create_token

        issued = create_token(store, name, scopes=scope, days=days, caller=me)
        typer.echo(
            f"token {issued.id} ({', '.join(issued.scopes)}), expires "
            f"{issued.expires_at:%Y-%m-%d %H:%M} UTC; shown this once:",
            err=True,
        )
        typer.echo(issued.token)


@token_app.command("list")
def token_list(db: Db = None, user: UserOpt = None) -> None:
    """List your tokens (tab-separated; never the tokens themselves)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.tokens import list_tokens

        echo_table(list_tokens(store, caller=me))


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="The token's id (from peerlens token list).")],
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Revoke one of your tokens, at once."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.tokens import revoke_token

        revoke_token(store, token_id, caller=me)
        typer.echo(f"revoked token {token_id}")
