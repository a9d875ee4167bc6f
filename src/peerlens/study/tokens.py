"""Personal access tokens: a staff member's credentials for the JSON API.

A signed-in staff member creates tokens for themselves (:func:`create_token`), each with a name,
one or more scopes (:data:`~peerlens.study.policy.TOKEN_SCOPES`: ``read``, ``write``,
``export``, ``admin``) and an expiry of at most :data:`MAX_DAYS` days. The token
(``plk_`` and ``secrets.token_urlsafe(32)``, 256 random bits) is shown once; only its sha256 is
stored (:class:`~peerlens.study.models.ApiToken`), so a copy of the database holds no usable
token. A token is 256 random bits, not a password chosen by a person: no guess or precomputed
table reaches it, so a fast hash suffices and a slow one (argon2) would only slow every request
(see ``docs/security.md``).

A token acts for its user within both the user's *current* roles and the token's scopes: the
study API's :func:`~peerlens.study.policy.authorize` reads the token in each operation's own
transaction, so a revoked or expired token, a role taken away or a deactivated account takes
effect at once, and no scope ever adds a right the user lacks. Tokens never manage their
user's own tokens: creating, listing and revoking them needs the user's own signed-in session
(or the CLI).

A global admin lists every user's tokens (:func:`list_all_tokens`) and revokes any of them
(:func:`revoke_any_token`), from a session or with a token of the ``admin`` scope, so that a
leaked token or one of someone who left is stopped without their help. To anyone else a token
that is not their own reads exactly as one that does not exist (:class:`NotFound`, "unknown
token N"), so that token ids are no oracle.

Creating and revoking a token are audited (name, scopes, expiry; never the token); each use
records when it was last used (:func:`resume_token`, at most once a minute).
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from peerlens.study import _limits, audit
from peerlens.study.errors import NotFound, PermissionDenied, StudyError
from peerlens.study.keys import api_token_mac, token_row_valid
from peerlens.study.models import ApiToken, User, as_utc, utcnow
from peerlens.study.policy import (
    TOKEN_REFUSED,
    TOKEN_SCOPES,
    Caller,
    active_user,
    authorize,
    guarded,
    token_digest,
)
from peerlens.study.storage import Store
from peerlens.study.vault import VaultKey

__all__ = [
    "ALL_TOKEN_COLUMNS",
    "DEFAULT_DAYS",
    "MAX_DAYS",
    "SCOPES",
    "TOKEN_COLUMNS",
    "TOKEN_PREFIX",
    "TOKEN_REFUSED",
    "IssuedToken",
    "create_token",
    "list_all_tokens",
    "list_tokens",
    "resume_token",
    "revoke_any_token",
    "revoke_token",
]

#: The scopes a token may be given (``any``, what every token may do, is not one to choose).
SCOPES = tuple(x for x in TOKEN_SCOPES if x != "any")
#: What every token starts with (so that a token pasted by mistake is easy to find and scan for).
TOKEN_PREFIX = "plk_"
#: The lifetime of a token when none is given, in days.
DEFAULT_DAYS = 90
#: The longest lifetime a token may have, in days.
MAX_DAYS = 366
#: Columns of :func:`list_tokens`.
TOKEN_COLUMNS = (
    "id",
    "name",
    "scopes",
    "state",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
)
#: Columns of :func:`list_all_tokens`: the token's user, then :data:`TOKEN_COLUMNS`.
ALL_TOKEN_COLUMNS = ("user", *TOKEN_COLUMNS)
#: How often a token's last use is written (fewer writes; the time is that much coarser).
_TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class IssuedToken:
    """A new token: its id, name, scopes and expiry, and the token itself (shown once; only its
    sha256 is stored, so it cannot be read back)."""

    id: int
    name: str
    scopes: tuple[str, ...]
    expires_at: dt.datetime
    token: str = field(repr=False)


def _scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(sorted({str(x).strip() for x in scopes} - {""}))
    if not chosen:
        raise StudyError(f"a token needs at least one scope: {', '.join(SCOPES)}")
    unknown = [x for x in chosen if x not in SCOPES]
    if unknown:
        raise StudyError(
            f"unknown token scope(s) {', '.join(map(repr, unknown))}: use {', '.join(SCOPES)}"
        )
    return chosen


@guarded("token.create")
def create_token(
    store: Store,
    name: str,
    *,
    scopes: Iterable[str],
    days: int = DEFAULT_DAYS,
    caller: Caller,
) -> IssuedToken:
    """Create a personal access token of the caller's own.

    Parameters
    ----------
    name
        What the token is for (shown in the token list), 1-100 characters.
    scopes
        Some of ``read``, ``write``, ``export``, ``admin``
        (:data:`~peerlens.study.policy.TOKEN_SCOPES`).
    days
        Its lifetime, 1 to :data:`MAX_DAYS` days.
    caller
        The user the token acts for; a caller authenticated by a token may not create one.

    Returns
    -------
    IssuedToken
        With the token, shown this once.

    Raises
    ------
    StudyError
        No or an unknown scope, an empty or too long name, a lifetime out of range.
    """
    chosen = _scopes(scopes)
    name = name.strip()
    if not name:
        raise StudyError("a token needs a name (what it is for)")
    _limits.check(ApiToken.name, name, "name")
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise StudyError(f"a token's lifetime: 1 to {MAX_DAYS} days, not {days!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + dt.timedelta(days=days)
    with store.transaction() as s:
        grant = authorize(s, caller, "token.create")
        user = active_user(s, caller)
        row = ApiToken(
            user_id=user.id,
            name=name,
            token_sha256=token_digest(token),
            scopes=" ".join(chosen),
            expires_at=expires,
            revoked_at=None,
        )
        row.token_mac = api_token_mac(store.vault_key(s), row)
        s.add(row)
        s.flush()
        audit.record(
            s,
            grant.actor,
            "token.create",
            "api_token",
            str(row.id),
            new={"name": name, "scopes": list(chosen), "expires_at": expires.isoformat()},
        )
        return IssuedToken(row.id, name, chosen, expires, token)


def _state(row: ApiToken, now: dt.datetime) -> str:
    if row.revoked_at is not None:
        return "revoked"
    expires = as_utc(row.expires_at)
    return "expired" if expires is None or expires <= now else "active"


def _row(r: ApiToken, now: dt.datetime) -> dict[str, object]:
    return {
        "id": r.id,
        "name": r.name,
        "scopes": r.scopes,
        "state": _state(r, now),
        "created_at": as_utc(r.created_at),
        "expires_at": as_utc(r.expires_at),
        "last_used_at": as_utc(r.last_used_at),
        "revoked_at": as_utc(r.revoked_at),
    }


@guarded("token.list")
def list_tokens(store: Store, *, caller: Caller) -> pd.DataFrame:
    """The caller's own tokens, newest first (:data:`TOKEN_COLUMNS`; never the tokens)."""
    now = utcnow()
    with store.transaction() as s:
        authorize(s, caller, "token.list")
        user = active_user(s, caller)
        rows = s.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id.desc())
        ).all()
        return pd.DataFrame([_row(r, now) for r in rows], columns=list(TOKEN_COLUMNS))


@guarded("token.list_all")
def list_all_tokens(store: Store, *, caller: Caller) -> pd.DataFrame:
    """Every user's tokens, newest first (:data:`ALL_TOKEN_COLUMNS`; never the tokens): a
    global admin's only.

    Raises
    ------
    PermissionDenied
        The caller is not a global admin (or their token lacks the ``admin`` scope).
    """
    now = utcnow()
    with store.transaction() as s:
        authorize(s, caller, "token.list_all")
        rows = s.execute(
            select(ApiToken, User.username)
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id.desc())
        ).all()
        return pd.DataFrame(
            [{"user": name, **_row(r, now)} for r, name in rows], columns=list(ALL_TOKEN_COLUMNS)
        )


@guarded("token.revoke")
def revoke_token(store: Store, token_id: int, *, caller: Caller) -> None:
    """Revoke the caller's own token ``token_id`` (at once; revoking it again changes nothing).

    Raises
    ------
    NotFound
        No token of the caller's has that id (another user's reads the same, also to an admin:
        :func:`revoke_any_token` revokes those).
    """
    with store.transaction() as s:
        grant = authorize(s, caller, "token.revoke")
        user = active_user(s, caller)
        row = _token_row(s, token_id)
        if row is None or row.user_id != user.id:
            raise NotFound(f"unknown token {token_id!r}")
        _revoke(s, store.vault_key(s), grant.actor, row, None)


@guarded("token.revoke_any")
def revoke_any_token(
    store: Store, token_id: int, *, caller: Caller, reason: str | None = None
) -> str:
    """Revoke token ``token_id`` of any user (a global admin's only); return its user's name.

    Revoking it again changes nothing. The audit entry names the token's user and name (never
    the token) and the ``reason`` given.

    Raises
    ------
    NotFound
        No such token; to a caller who is not a global admin, every token id reads so,
        whether it exists or not.
    PermissionDenied
        A global admin's token without the ``admin`` scope.
    """
    with store.transaction() as s:
        try:
            # The user's roles first: to a user who may not revoke others' tokens, no token id
            # is told to exist.
            authorize(s, replace(caller, token=None), "token.revoke_any")
        except (PermissionDenied, TypeError):
            raise NotFound(f"unknown token {token_id!r}") from None
        # Then the token's scopes (an admin's token without ``admin`` is told which it needs).
        grant = authorize(s, caller, "token.revoke_any")
        row = _token_row(s, token_id)
        owner = s.get(User, row.user_id) if row is not None else None
        if row is None or owner is None:
            raise NotFound(f"unknown token {token_id!r}")
        _revoke(s, store.vault_key(s), grant.actor, row, reason, owner=owner.username)
        return owner.username


def _token_row(s: Session, token_id: object) -> ApiToken | None:
    """The token of id ``token_id``; ``None`` when there is none, or when no token can have that
    id (not a whole number, or beyond the id column's range, which PostgreSQL would refuse with
    an error instead of finding nothing)."""
    if not isinstance(token_id, int) or isinstance(token_id, bool):
        return None
    low, high = _limits.int_range(ApiToken.id)
    return s.get(ApiToken, token_id) if low <= token_id <= high else None


def _revoke(
    s: Session,
    key: VaultKey,
    actor: str,
    row: ApiToken,
    reason: str | None,
    *,
    owner: str | None = None,
) -> None:
    """Revoke ``row`` now (nothing when already revoked) and audit it."""
    if row.revoked_at is not None:
        return
    row.revoked_at = utcnow()
    row.token_mac = api_token_mac(key, row)
    change: dict[str, object] = {"name": row.name}
    if owner is not None:
        change["user"] = owner
    audit.record(s, actor, "token.revoke", "api_token", str(row.id), new=change, reason=reason)


def revoke_all_of(s: Session, key: VaultKey, actor: str, user: User, why: str) -> int:
    """Revoke every live token of ``user`` in ``s`` (a ``token.revoke`` entry each, naming
    ``why``); return how many.

    For :func:`peerlens.study.set_password` and :func:`peerlens.study.set_active`: whoever had
    the account's password or a session could have made a token, which must not outlive the
    remedy that ends the sessions (review 8, R8-2). Called inside an operation the caller was
    authorized for."""
    now = utcnow()
    live = [
        row
        for row in s.scalars(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        )
        if (as_utc(row.expires_at) or now) > now
    ]
    for row in live:
        _revoke(s, key, actor, row, why, owner=user.username)
    return len(live)


def resume_token(store: Store, token: str) -> Caller:
    """The caller a presented token acts for, while the token is live.

    Like :func:`~peerlens.study.users.authenticate`, this authenticates (the token is the
    credential) and takes no caller; what the returned caller may do is decided by each study
    function, within the user's roles and the token's scopes.

    Raises
    ------
    PermissionDenied
        With :data:`TOKEN_REFUSED` for an unknown, expired or revoked token, or a deactivated
        account.
    """
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX):
        raise PermissionDenied(TOKEN_REFUSED)
    now = utcnow()
    with store.transaction() as s:
        row = s.scalars(
            select(ApiToken).where(ApiToken.token_sha256 == token_digest(token))
        ).first()
        # A row written without the vault key (SQL), or moved to another user, given other
        # scopes, a later expiry or its revocation undone, is no token.
        forged = row is None or not token_row_valid(s, row)
        user = s.get(User, row.user_id) if row is not None and not forged else None
        if row is None or user is None or not user.is_active or _state(row, now) != "active":
            raise PermissionDenied(TOKEN_REFUSED)
        used = as_utc(row.last_used_at)
        if used is None or now - used >= _TOUCH_EVERY:
            row.last_used_at = now
        return Caller(user.username, token=row.id)
