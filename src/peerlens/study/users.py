"""Users, roles and rights: who may change a study's data and how much of it they may export.

Roles (per study, optionally per site, or global when no study is given):

========== ============================ ==================== ======================
role       may change data              may manage users     default export tier
========== ============================ ==================== ======================
admin      yes                          yes                  ``full``
researcher yes                          no                   ``remove_identifiers``
ps_worker  no (read own study only)     no                   ``none``
========== ============================ ==================== ======================

Export tiers follow REDCap's user-rights levels, most to least: ``full`` (everything, identity
vault included), ``remove_identifiers`` (no identifying fields), ``deidentified`` (also no free
text, dates shifted per participant), ``none`` (no export). A role assignment may set its own
tier. A site-scoped assignment limits exports to that site's participants.

Passwords are stored as argon2id hashes (RFC 9106) via argon2-cffi.

A database with no users at all is a single-user embedded database: the local operating-system
user acts as admin with the ``full`` tier (they can read the SQLite file anyway). Once a user
exists, every operation needs a user name and password; the first user created is a global
admin.
"""

from __future__ import annotations

from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from peerlens.study import audit
from peerlens.study._lookup import get_study
from peerlens.study.errors import PermissionDenied, StudyError
from peerlens.study.models import USER_ROLES, RoleAssignment, Site, Study, User
from peerlens.study.storage import Store

#: Export tiers, most to least access.
TIERS = ("full", "remove_identifiers", "deidentified", "none")
_RANK = {t: len(TIERS) - 1 - i for i, t in enumerate(TIERS)}
_DEFAULT_TIER = {"admin": "full", "researcher": "remove_identifiers", "ps_worker": "none"}
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Rights:
    """What one user may do in one study."""

    actor: str
    can_write: bool
    can_manage: bool
    export_tier: str
    #: Site names the user is limited to (``None``: every site).
    sites: frozenset[str] | None

    def allows_tier(self, tier: str) -> bool:
        """True when ``tier`` is at most the user's export tier."""
        return _RANK[tier] <= _RANK[self.export_tier]


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (PHC string format)."""
    if len(password) < 8:
        raise StudyError("a password needs at least 8 characters")
    return _hasher.hash(password)


def has_users(session: Session) -> bool:
    """True when the database has at least one user account."""
    return bool(session.scalar(select(func.count()).select_from(User)))


def create_user(
    store: Store, username: str, password: str, *, actor: str, reason: str | None = None
) -> None:
    """Create a user account (no roles yet; see :func:`grant_role`).

    The first account of a database becomes a global admin: from then on the database needs
    a user for every operation.
    """
    if not username or len(username) > 100 or any(c.isspace() for c in username):
        raise StudyError(f"user name {username!r}: 1-100 characters, no spaces")
    hashed = hash_password(password)
    with store.transaction() as s:
        if s.scalar(select(User.id).where(User.username == username)) is not None:
            raise StudyError(f"user {username!r} already exists")
        first = not has_users(s)
        user = User(username=username, password_hash=hashed)
        s.add(user)
        s.flush()
        if first:
            # The first account takes over from the embedded-mode owner, so it is a global admin.
            s.add(RoleAssignment(user_id=user.id, role="admin"))
        audit.record(
            s, actor, "user.create", "user", username, new={"global_admin": first}, reason=reason
        )


def grant_role(
    store: Store,
    username: str,
    role: str,
    *,
    study: str | None = None,
    site: str | None = None,
    export_tier: str | None = None,
    actor: str,
    reason: str | None = None,
) -> None:
    """Give ``username`` a role, globally, in ``study``, or in one ``site`` of it."""
    if role not in USER_ROLES:
        raise StudyError(f"role {role!r}: use one of {', '.join(USER_ROLES)}")
    if export_tier is not None and export_tier not in TIERS:
        raise StudyError(f"export tier {export_tier!r}: use one of {', '.join(TIERS)}")
    if site is not None and study is None:
        raise StudyError("a site-scoped role needs a study")
    with store.transaction() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise StudyError(f"no user {username!r}")
        study_id = site_id = None
        if study is not None:
            st = get_study(s, study)
            study_id = st.id
            if site is not None:
                found = next((x for x in st.sites if x.name == site), None)
                if found is None:
                    raise StudyError(f"study {study!r} has no site {site!r}")
                site_id = found.id
        s.add(
            RoleAssignment(
                user_id=user.id,
                role=role,
                study_id=study_id,
                site_id=site_id,
                export_tier=export_tier,
            )
        )
        audit.record(
            s,
            actor,
            "user.grant",
            "role_assignment",
            username,
            study=study,
            new={"role": role, "site": site, "export_tier": export_tier},
            reason=reason,
        )


def authenticate(session: Session, username: str, password: str) -> User:
    """The active user ``username`` if ``password`` is right (rehashing outdated hashes)."""
    user = session.scalars(select(User).where(User.username == username)).first()
    refused = PermissionDenied(f"user {username!r}: unknown user or wrong password")
    if user is None or not user.is_active:
        # Spend the same time as a real check so that user names cannot be probed by timing.
        _hasher.hash(password)
        raise refused
    try:
        _hasher.verify(user.password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        raise refused from None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def rights_for(session: Session, user: User | None, study: Study | None, actor: str) -> Rights:
    """The rights of ``user`` in ``study`` (``user=None`` is the embedded-mode local owner)."""
    if user is None:
        if has_users(session):
            raise PermissionDenied("this database has user accounts: give --user and password")
        return Rights(actor, True, True, "full", None)
    stmt = select(RoleAssignment).where(RoleAssignment.user_id == user.id)
    can_write = can_manage = False
    tier = "none"
    sites: set[str] | None = set()
    for ra in session.scalars(stmt):
        if ra.study_id is not None and (study is None or ra.study_id != study.id):
            continue
        can_write |= ra.role in ("admin", "researcher")
        can_manage |= ra.role == "admin"
        t = ra.export_tier or _DEFAULT_TIER[ra.role]
        if _RANK[t] > _RANK[tier]:
            tier = t
        if ra.site_id is None:
            sites = None
        elif sites is not None:
            site = session.get(Site, ra.site_id)
            assert site is not None
            sites.add(site.name)
    return Rights(actor, can_write, can_manage, tier, None if sites is None else frozenset(sites))


def require_write(rights: Rights, what: str) -> None:
    """Refuse unless the user may change data."""
    if not rights.can_write:
        raise PermissionDenied(f"{rights.actor} may not {what} (needs admin or researcher)")


def require_manage(rights: Rights, what: str) -> None:
    """Refuse unless the user is an admin."""
    if not rights.can_manage:
        raise PermissionDenied(f"{rights.actor} may not {what} (needs admin)")


def require_tier(rights: Rights, tier: str) -> None:
    """Refuse an export at ``tier`` beyond the user's export right."""
    if tier not in TIERS:
        raise StudyError(f"export tier {tier!r}: use one of {', '.join(TIERS)}")
    if tier == "none":
        raise StudyError("export tier 'none' exports nothing; choose another tier")
    if not rights.allows_tier(tier):
        raise PermissionDenied(
            f"{rights.actor} may export at most tier {rights.export_tier!r}, not {tier!r}"
        )


def resolve_rights(
    store: Store, username: str | None, password: str | None, study_name: str | None
) -> Rights:
    """Authenticate ``username`` (if the database has users) and return their rights in
    ``study_name``; with no users in the database, the local OS user is the owner."""
    import getpass

    with store.transaction() as s:
        if username is None and not has_users(s):
            return Rights(f"os:{getpass.getuser()}", True, True, "full", None)
        if username is None or password is None:
            raise PermissionDenied(
                "this database has user accounts: give --user (or PEERLENS_USER) and a password"
            )
        user = authenticate(s, username, password)
        study = get_study(s, study_name) if study_name else None
        return rights_for(s, user, study, username)


def set_password(
    store: Store, username: str, new_password: str, *, actor: str, reason: str | None = None
) -> None:
    """Replace ``username``'s password (argon2id); the audit log records that, never the value.

    Who may do it (the user themselves, or an admin) is checked by the caller.
    """
    hashed = hash_password(new_password)
    with store.transaction() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise StudyError(f"no user {username!r}")
        user.password_hash = hashed
        audit.record(s, actor, "user.password", "user", username, reason=reason)


def set_active(
    store: Store, username: str, active: bool, *, actor: str, reason: str | None = None
) -> None:
    """Deactivate (or reactivate) a user account; a deactivated user cannot sign in.

    The last active global admin cannot be deactivated (nobody could manage users after).
    """
    with store.transaction() as s:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise StudyError(f"no user {username!r}")
        if user.is_active == active:
            return
        if not active:
            admins = s.scalars(
                select(User.id)
                .join(RoleAssignment, RoleAssignment.user_id == User.id)
                .where(
                    User.is_active.is_(True),
                    RoleAssignment.role == "admin",
                    RoleAssignment.study_id.is_(None),
                )
            ).all()
            if set(admins) == {user.id}:
                raise StudyError(f"{username!r} is the last active global admin")
        user.is_active = active
        audit.record(
            s,
            actor,
            "user.activate" if active else "user.deactivate",
            "user",
            username,
            old={"active": not active},
            new={"active": active},
            reason=reason,
        )
