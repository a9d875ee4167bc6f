"""User accounts: the explicit first admin, passwords, roles and deactivation.

Who may do what is :mod:`peerlens.study.policy`; this module manages the accounts and role
assignments the policy reads. Passwords are stored as argon2id hashes (RFC 9106) via argon2-cffi
and never reach the audit log.

There is no implicit user. A new database has no accounts and refuses every operation until
:func:`bootstrap_admin` creates the first (global) admin, once, with a password; that step is
audited. An empty user table in a database whose audit log records accounts is taken as tampering
and bootstrapping is refused.
"""

from __future__ import annotations

import pandas as pd
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._lookup import get_study
from peerlens.study.errors import PermissionDenied, StudyError
from peerlens.study.models import AuditLog, RoleAssignment, Site, Study, User, WebSession
from peerlens.study.policy import DEFAULT_TIER, ROLES, TIERS, Caller, authorize, guarded
from peerlens.study.storage import Store
from peerlens.study.tokens import revoke_all_of

__all__ = [
    "TIERS",
    "authenticate",
    "bootstrap_admin",
    "create_user",
    "grant_role",
    "list_users",
    "revoke_role",
    "set_active",
    "set_password",
]

_hasher = PasswordHasher()
#: Audit actions that create accounts (their presence means the user table was not empty).
_ACCOUNT_ACTIONS = ("user.create", "user.bootstrap")


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string format)."""
    if len(password) < 8:
        raise StudyError("a password needs at least 8 characters")
    return _hasher.hash(password)


def has_users(session: Session) -> bool:
    """True when the database has at least one user account."""
    return bool(session.scalar(select(func.count()).select_from(User)))


def check_username(username: str) -> None:
    """Refuse a user name peerlens cannot take (1-100 characters, no spaces, not ``os:...``)."""
    _check_username(username)


def _check_username(username: str) -> None:
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise StudyError(f"user name {username!r}: 1-100 characters, no spaces")
    if username.startswith("os:"):
        raise StudyError(f"user name {username!r}: 'os:' names are reserved")


def bootstrap_admin(
    store: Store, username: str, password: str, *, reason: str | None = None
) -> Caller:
    """Create the first account of a database, a global admin; return it as a :class:`Caller`.

    Allowed once: refused when any account exists, and refused when the audit log records
    accounts although the user table is empty (someone emptied it to take over).
    """
    _check_username(username)
    hashed = hash_password(password)
    with store.transaction() as s:
        if has_users(s):
            raise PermissionDenied(
                "this database already has user accounts; ask an admin to create yours"
            )
        created = s.scalar(
            select(func.count()).select_from(AuditLog).where(AuditLog.action.in_(_ACCOUNT_ACTIONS))
        )
        if created:
            raise PermissionDenied(
                f"the user table is empty but the audit log records {created} account(s) being "
                "created: the table was emptied outside peerlens; restore it from a backup "
                "(peerlens audit verify shows what changed)"
            )
        user = User(username=username, password_hash=hashed)
        s.add(user)
        s.flush()
        s.add(RoleAssignment(user_id=user.id, role="admin"))
        audit.record(
            s, username, "user.bootstrap", "user", username, new={"role": "admin"}, reason=reason
        )
    return Caller(username)


def _verify(user: User | None, password: str) -> bool:
    if user is None or not user.is_active:
        # Spend the same time as a real check so that user names cannot be probed by timing.
        _hasher.hash(password)
        return False
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return True


def authenticate(store: Store, username: str, password: str) -> Caller:
    """The :class:`Caller` for ``username`` when ``password`` is right and the account active.

    Raises
    ------
    PermissionDenied
        Unknown user, deactivated account or wrong password (one message for all three).
    """
    with store.transaction() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is not None:
            from peerlens.study.integrity import check_rights

            check_rights(s, user.id)  # a password hash put there with SQL is never trusted
        if not _verify(user, password):
            if not has_users(s):
                raise PermissionDenied(
                    "this database has no user accounts yet: create the first admin with "
                    "peerlens init (or peerlens.study.bootstrap_admin)"
                )
            raise PermissionDenied(f"user {username!r}: unknown user or wrong password")
    return Caller(username)


@guarded("user.create")
def create_user(
    store: Store, username: str, password: str, *, caller: Caller, reason: str | None = None
) -> None:
    """Create a user account (no roles yet; see :func:`grant_role`). Global admins only."""
    _check_username(username)
    hashed = hash_password(password)
    with store.transaction() as s:
        authorize(s, caller, "user.create")
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise StudyError(f"user {username!r} already exists")
        s.add(User(username=username, password_hash=hashed))
        audit.record(s, caller.username, "user.create", "user", username, reason=reason)


def _user(s: Session, username: str) -> User:
    user = s.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise StudyError(f"no user {username!r}")
    return user


def _scope(s: Session, study: str | None, site: str | None) -> tuple[Study | None, Site | None]:
    if site is not None and study is None:
        raise StudyError("a site-scoped role needs a study")
    if study is None:
        return None, None
    st = get_study(s, study)
    if site is None:
        return st, None
    found = next((x for x in st.sites if x.name == site), None)
    if found is None:
        raise StudyError(f"study {study!r} has no site {site!r}")
    return st, found


@guarded("user.grant")
def grant_role(
    store: Store,
    username: str,
    role: str,
    *,
    study: str | None = None,
    site: str | None = None,
    export_tier: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> None:
    """Give ``username`` a role, globally, in ``study``, or in one ``site`` of it.

    Global admins only: a site- or study-scoped user can never widen anyone's rights,
    their own included.
    """
    if role not in ROLES:
        raise StudyError(f"role {role!r}: use one of {', '.join(ROLES)}")
    if export_tier is not None and export_tier not in TIERS:
        raise StudyError(f"export tier {export_tier!r}: use one of {', '.join(TIERS)}")
    with store.transaction() as s:
        authorize(s, caller, "user.grant")
        user = _user(s, username)
        st, si = _scope(s, study, site)
        s.add(
            RoleAssignment(
                user_id=user.id,
                role=role,
                study_id=None if st is None else st.id,
                site_id=None if si is None else si.id,
                export_tier=export_tier,
            )
        )
        audit.record(
            s,
            caller.username,
            "user.grant",
            "role_assignment",
            username,
            study=study,
            new={"role": role, "site": site, "export_tier": export_tier},
            reason=reason,
        )


@guarded("user.revoke")
def revoke_role(
    store: Store,
    username: str,
    role: str,
    *,
    study: str | None = None,
    site: str | None = None,
    caller: Caller,
    reason: str | None = None,
) -> int:
    """Take ``role`` (at exactly that scope) from ``username``; return how many were removed.

    The last active global admin keeps their admin role.
    """
    with store.transaction() as s:
        authorize(s, caller, "user.revoke")
        user = _user(s, username)
        st, si = _scope(s, study, site)
        where = [
            RoleAssignment.user_id == user.id,
            RoleAssignment.role == role,
            RoleAssignment.study_id.is_(None) if st is None else RoleAssignment.study_id == st.id,
            RoleAssignment.site_id.is_(None) if si is None else RoleAssignment.site_id == si.id,
        ]
        if role == "admin" and st is None and _global_admins(s) == {user.id}:
            raise StudyError(f"{username!r} is the last active global admin")
        n = int(getattr(s.execute(delete(RoleAssignment).where(*where)), "rowcount", 0))
        if n:
            audit.record(
                s,
                caller.username,
                "user.revoke",
                "role_assignment",
                username,
                study=study,
                old={"role": role, "site": site},
                reason=reason,
            )
        return n


def _global_admins(s: Session) -> set[int]:
    return set(
        s.scalars(
            select(User.id)
            .join(RoleAssignment, RoleAssignment.user_id == User.id)
            .where(
                User.is_active.is_(True),
                RoleAssignment.role == "admin",
                RoleAssignment.study_id.is_(None),
            )
        )
    )


@guarded("user.activate")
def set_active(
    store: Store, username: str, active: bool, *, caller: Caller, reason: str | None = None
) -> None:
    """Deactivate (or reactivate) a user account; a deactivated user cannot sign in, their
    web sessions end and their access tokens are revoked (reactivating revives none).

    The last active global admin cannot be deactivated (nobody could manage users after).
    """
    with store.transaction() as s:
        authorize(s, caller, "user.activate")
        user = _user(s, username)
        if user.is_active == active:
            return
        if not active and _global_admins(s) == {user.id}:
            raise StudyError(f"{username!r} is the last active global admin")
        user.is_active = active
        new: dict[str, object] = {"active": active}
        if not active:
            new["web_sessions_ended"] = _end_sessions(s, user.id)
            new["tokens_revoked"] = revoke_all_of(
                s, store.vault_key(s), caller.username, user, "account deactivated"
            )
        audit.record(
            s,
            caller.username,
            "user.activate" if active else "user.deactivate",
            "user",
            username,
            old={"active": not active},
            new=new,
            reason=reason,
        )


@guarded("account.password")
def set_password(
    store: Store,
    username: str,
    new_password: str,
    *,
    caller: Caller,
    current_password: str | None = None,
    reason: str | None = None,
) -> None:
    """Replace ``username``'s password (argon2id); the audit log records that, never the value.

    Your own password needs ``current_password``; another user's needs a global admin. Every
    web session of the account ends and every access token is revoked (a stolen session, or a
    token made with a stolen password or session, must not outlive the reset); the audit
    entry says how many.
    """
    hashed = hash_password(new_password)
    with store.transaction() as s:
        authorize(s, caller, "account.password")
        if caller.username == username:
            if current_password is None or not _verify(_user(s, username), current_password):
                raise PermissionDenied("changing your password needs your current password")
        else:
            authorize(s, caller, "user.password")
        user = _user(s, username)
        user.password_hash = hashed
        ended = _end_sessions(s, user.id)
        revoked = revoke_all_of(s, store.vault_key(s), caller.username, user, "password changed")
        audit.record(
            s,
            caller.username,
            "user.password",
            "user",
            username,
            new={"web_sessions_ended": ended, "tokens_revoked": revoked},
            reason=reason,
        )


def _end_sessions(s: Session, user_id: int) -> int:
    """Delete every web session of user ``user_id``; return how many there were."""
    ended = s.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(ended, "rowcount", 0) or 0)


@guarded("user.list")
def list_users(store: Store, *, caller: Caller) -> pd.DataFrame:
    """Every account with its roles: ``user``, ``active``, ``role``, ``study``, ``site``,
    ``export_tier`` (one row per role assignment; accounts without roles have empty roles)."""
    with store.transaction() as s:
        authorize(s, caller, "user.list")
        studies = {st.id: st.name for st in s.scalars(select(Study))}
        sites = {x.id: x.name for x in s.scalars(select(Site))}
        rows = []
        for user in s.scalars(select(User).order_by(User.username)):
            roles: list[RoleAssignment | None] = list(
                s.scalars(
                    select(RoleAssignment)
                    .where(RoleAssignment.user_id == user.id)
                    .order_by(RoleAssignment.id)
                )
            )
            for ra in roles or [None]:
                rows.append(
                    {
                        "user": user.username,
                        "active": user.is_active,
                        "role": None if ra is None else ra.role,
                        "study": None if ra is None else studies.get(ra.study_id or -1),
                        "site": None if ra is None else sites.get(ra.site_id or -1),
                        "export_tier": None
                        if ra is None
                        else ra.export_tier or DEFAULT_TIER[ra.role],
                    }
                )
    return pd.DataFrame(rows, columns=["user", "active", "role", "study", "site", "export_tier"])
