"""Staff sessions of the web app: sign-in with rate limit and lockout, session lookup, sign-out.

A staff member signs in with their peerlens password, checked only by
:func:`peerlens.study.users.authenticate` (argon2id). Success starts a *new* session whose id
(``secrets.token_urlsafe(32)``, 256 random bits) goes to the browser and whose sha256 alone is
stored (:class:`~peerlens.study.models.WebSession`): a session id set before sign-in is never
the one used after it (no session fixation), and a copy of the database holds no usable id.
Each row also holds a MAC of the id, its user and its start time under a key derived from the
vault key (:func:`peerlens.study.keys.token_mac`): a row written with SQL, or one moved to
another user, is no session.

A session ends at sign-out, after :data:`IDLE` without a request, :data:`ABSOLUTE` after
sign-in, as soon as the account is deactivated, or when its password is changed (see
:func:`peerlens.study.users.set_password`). Rights are never read from the session: it
names the user, and every study function reads that user's roles in its own transaction.

Failed sign-ins are counted in the database (so every worker and restart sees them), per user
name typed and per client address, over a window (:data:`WINDOW` unless the caller gives other
:class:`SignInLimits`, as the web app does from its settings). Each attempt is counted as a
failure *before* its password is checked (one attempt at a time takes that step), and the count
is taken back only when the password proves right: attempts sent at once get no more guesses
than attempts sent one by one. At :data:`MAX_PER_USER` failures for a name, or
:data:`MAX_PER_ADDRESS` from an address (or the limits given), sign-in is refused, even with the
right password, until the window has passed since the oldest counted failure. The refusal reads the
same whatever went wrong (:data:`SIGN_IN_REFUSED`): unknown user, wrong password, deactivated
account or lockout. Each success, failure and lockout is audited, never with the password (and
the name typed is recorded only when it is an account's: a password typed into the name field
never reaches the log).

These functions authenticate, like :func:`~peerlens.study.users.authenticate`: the password or
the session id is the credential, so they take no ``caller``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from peerlens.study import audit
from peerlens.study.errors import PermissionDenied
from peerlens.study.keys import token_mac
from peerlens.study.models import LoginFailure, User, WebSession, as_utc, utcnow
from peerlens.study.policy import Caller, token_digest
from peerlens.study.storage import Store, pg_lock
from peerlens.study.users import authenticate

__all__ = [
    "ABSOLUTE",
    "IDLE",
    "MAX_PER_ADDRESS",
    "MAX_PER_USER",
    "SIGN_IN_REFUSED",
    "WINDOW",
    "SignInLimits",
    "StaffSession",
    "end_session",
    "resume_session",
    "sign_in",
]

#: A session ends after this long without a request.
IDLE = dt.timedelta(minutes=30)
#: A session ends this long after sign-in, however busy.
ABSOLUTE = dt.timedelta(hours=12)
#: Failed sign-ins are counted over this window; a lockout lasts until the window has passed.
WINDOW = dt.timedelta(minutes=15)
#: Failures for one user name within :data:`WINDOW` that lock it.
MAX_PER_USER = 5
#: Failures from one client address within :data:`WINDOW` that lock it (higher: several staff
#: may sign in from one office network).
MAX_PER_ADDRESS = 20
#: What a refused sign-in is told, whatever the reason (no oracle for names or lockouts).
SIGN_IN_REFUSED = (
    "Sign-in failed: the user name or password is wrong, or there were too many attempts. "
    "Please check them, or try again later."
)
#: How often a session's last use is written (fewer writes; the idle expiry is that much coarser).
_TOUCH_EVERY = dt.timedelta(seconds=60)


@dataclass(frozen=True)
class SignInLimits:
    """How many failed sign-ins lock a user name or a client address, and for how long.

    Attributes
    ----------
    window
        Failures are counted over this window; a lockout lasts until it has passed since the
        oldest counted failure.
    max_per_user
        Failures for one user name within ``window`` that lock it.
    max_per_address
        Failures from one client address within ``window`` that lock it.
    """

    window: dt.timedelta = WINDOW
    max_per_user: int = MAX_PER_USER
    max_per_address: int = MAX_PER_ADDRESS

    def __post_init__(self) -> None:
        if self.window <= dt.timedelta(0) or self.max_per_user < 1 or self.max_per_address < 1:
            raise ValueError(f"sign-in limits must be positive: {self}")


@dataclass(frozen=True)
class StaffSession:
    """A started session: who signed in and the session id for the browser's cookie (shown once;
    only its sha256 is stored, so it cannot be read back)."""

    caller: Caller
    token: str = field(repr=False)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()


def _username_key(username: str) -> str:
    # Case-folded: "Ada" and "ada" count as one name for the lockout.
    return _digest("user\x00" + username.casefold())


def _address_key(address: str) -> str:
    return _digest("addr\x00" + address)


def _failures(s: Session, column: InstrumentedAttribute[str], key: str, since: dt.datetime) -> int:
    query = select(func.count()).select_from(LoginFailure)
    return int(s.scalar(query.where(column == key, LoginFailure.at > since)) or 0)


def sign_in(
    store: Store,
    username: str,
    password: str,
    *,
    address: str,
    replaces: str | None = None,
    limits: SignInLimits | None = None,
) -> StaffSession:
    """Check ``username`` and ``password`` and start a new session.

    Parameters
    ----------
    store
        The study database.
    username, password
        As typed on the sign-in form.
    address
        The client's address (counted for the rate limit; stored only as a digest).
    replaces
        The session id the browser held before, if any: that session ends here, whatever
        happens, so an id known before sign-in is never valid after it.
    limits
        The rate limit and lockout (default :class:`SignInLimits`: :data:`MAX_PER_USER` and
        :data:`MAX_PER_ADDRESS` failures within :data:`WINDOW`).

    Returns
    -------
    StaffSession
        The caller and the new session id.

    Raises
    ------
    PermissionDenied
        With :data:`SIGN_IN_REFUSED` for an unknown user, a wrong password, a deactivated
        account, or a name or address locked after too many failures.
    """
    limits = limits or SignInLimits()
    now = utcnow()
    since = now - limits.window
    user_key, address_key = _username_key(username), _address_key(address)
    reserved: int | None = None
    with store.transaction() as s:
        # Counting and reserving are one step for all attempts at once: the password check is
        # slow, and attempts that all counted before any recorded its failure all got a guess.
        pg_lock(s, "sign-in")
        if replaces:
            s.execute(delete(WebSession).where(WebSession.token_sha256 == token_digest(replaces)))
        s.execute(delete(LoginFailure).where(LoginFailure.at <= since))
        by_user = _failures(s, LoginFailure.username_sha256, user_key, since)
        by_address = _failures(s, LoginFailure.address_sha256, address_key, since)
        locked = by_user >= limits.max_per_user or by_address >= limits.max_per_address
        if not locked:  # counted as a failure until the password proves right
            attempt = LoginFailure(username_sha256=user_key, address_sha256=address_key, at=now)
            s.add(attempt)
            s.flush()
            reserved = attempt.id
    try:
        # Checked even when locked: the refusal then takes as long as any other.
        caller: Caller | None = authenticate(store, username, password)
    except PermissionDenied:
        caller = None
    if caller is not None and not locked:
        token = secrets.token_urlsafe(32)
        with store.transaction() as s:
            user_id = s.scalar(select(User.id).where(User.username == caller.username))
            s.execute(
                delete(WebSession).where(
                    WebSession.user_id == user_id,
                    or_(
                        WebSession.created_at <= now - ABSOLUTE,
                        WebSession.last_seen_at <= now - IDLE,
                    ),
                )
            )
            assert user_id is not None
            s.add(
                WebSession(
                    token_sha256=token_digest(token),
                    user_id=user_id,
                    created_at=now,
                    last_seen_at=now,
                    token_mac=_session_mac(store, s, token, user_id, now),
                )
            )
            s.execute(delete(LoginFailure).where(LoginFailure.username_sha256 == user_key))
            audit.record(s, caller.username, "login.success", "user", caller.username)
        return StaffSession(caller, token)
    with store.transaction() as s:
        if reserved is None or s.get(LoginFailure, reserved) is None:
            s.add(LoginFailure(username_sha256=user_key, address_sha256=address_key, at=now))
        known = s.scalar(select(User.username).where(User.username == username))
        actor = known or "anonymous"
        audit.record(s, actor, "login.failure", "user", known, new={"locked": locked})
        user_now, address_now = by_user + 1, by_address + 1
        if not locked and (
            user_now == limits.max_per_user or address_now == limits.max_per_address
        ):
            which = "user" if user_now == limits.max_per_user else "address"
            audit.record(
                s,
                actor,
                "login.lockout",
                "user",
                known,
                new={"locked": which, "minutes": int(limits.window.total_seconds() // 60)},
            )
    raise PermissionDenied(SIGN_IN_REFUSED)


def _session_mac(store: Store, s: Session, token: str, user_id: int, started: dt.datetime) -> str:
    when = (as_utc(started) or started).isoformat(timespec="microseconds")
    return token_mac(store.vault_key(s), token, "web session", user_id, when)


def resume_session(store: Store, token: str) -> Caller:
    """The caller whose session id is ``token``, while the session is live.

    Raises
    ------
    PermissionDenied
        Unknown or ended session (signed out, idle or too old: an expired one is deleted), or
        a deactivated account.
    """
    now = utcnow()
    with store.transaction() as s:
        row = s.scalars(
            select(WebSession).where(WebSession.token_sha256 == token_digest(token))
        ).first()
        if row is None:
            raise PermissionDenied("not signed in")
        seen = as_utc(row.last_seen_at) or now
        started = as_utc(row.created_at) or now
        # A row written without the vault key (SQL) or moved to another user is no session.
        forged = row.token_mac is None or not hmac.compare_digest(
            row.token_mac, _session_mac(store, s, token, row.user_id, started)
        )
        user = None if forged else s.get(User, row.user_id)
        if now - seen >= IDLE or now - started >= ABSOLUTE or user is None or not user.is_active:
            s.delete(row)
            expired = True
        else:
            expired = False
            if now - seen >= _TOUCH_EVERY:
                row.last_seen_at = now
    if expired or user is None:
        raise PermissionDenied("the session has ended; please sign in again")
    return Caller(user.username)


def end_session(store: Store, token: str) -> None:
    """Sign out: delete the session ``token`` names (nothing happens for an unknown one)."""
    with store.transaction() as s:
        row = s.scalars(
            select(WebSession).where(WebSession.token_sha256 == token_digest(token))
        ).first()
        if row is None:
            return
        user = s.get(User, row.user_id)
        s.delete(row)
        if user is not None:
            audit.record(s, user.username, "logout", "user", user.username)
