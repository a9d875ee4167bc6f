"""Who may do what: the one permission policy of :mod:`peerlens.study`, kept as data.

Every public function of :mod:`peerlens.study` takes the caller (:class:`Caller`) and, inside its
own transaction, asks :func:`authorize` for the operation it performs. The answer is a
:class:`Grant` (the sites and the export tier the caller holds *for that operation*) or a
:class:`~peerlens.study.errors.PermissionDenied`. The CLI and the web app pass the caller on and
never check rights themselves.

A user holds role assignments (:class:`~peerlens.study.models.RoleAssignment`): a role, either
global (every study), per study, or per study site, and optionally an export tier. For one
operation only the assignments whose role the operation's :class:`Rule` names count:

``scope = "global"``
    needs a global assignment (user management, creating studies, the whole audit log);
``scope = "study"``
    needs an assignment covering the whole study (global or per study, no site): operations
    whose effect reaches every site, such as deriving results or replacing the data dictionary;
``scope = "site"``
    any assignment in the study will do; a site-scoped one limits the grant to its sites, and
    the function refuses (or leaves out) participants of other sites;
``scope = "link"``
    no account: only the participant holding a valid personal link, for that link's
    participant and timepoint (:class:`LinkHolder`, checked by :func:`authorize_link`).

A PS worker's story studio (:mod:`peerlens.study.stories`) adds one limit: the roles a rule
lists in ``own_only`` (``ps_worker``, ``trainer``) count only for the PS workers the user's
account is tied to (:class:`~peerlens.study.models.WorkerAccess`: their own studio as the
worker, their trainees' as a trainer), never for everyone at their sites; the other roles reach
the workers of their sites as usual (:func:`authorize_worker`).

The export tier of a grant is the highest tier among the counted assignments (a role's default,
see :data:`DEFAULT_TIER`, unless the assignment sets its own). Tiers follow REDCap's user-rights
export levels, most to least: ``full``, ``remove_identifiers``, ``deidentified``, ``none``.

There is no implicit user: an empty user table grants nothing, and the first admin is created by
:func:`peerlens.study.users.bootstrap_admin`, an explicit, audited step.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar, cast

from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from peerlens.study._lookup import unknown_study
from peerlens.study.errors import NotFound, PermissionDenied, StudyError
from peerlens.study.models import (
    USER_ROLES,
    ApiToken,
    Participant,
    ParticipantLink,
    RoleAssignment,
    Site,
    Study,
    User,
    WorkerAccess,
    as_utc,
    utcnow,
)

__all__ = [
    "DEFAULT_TIER",
    "POLICY",
    "ROLES",
    "TIERS",
    "TOKEN_SCOPES",
    "Caller",
    "Grant",
    "LinkHolder",
    "Rule",
    "authorize",
    "authorize_link",
    "authorize_worker",
    "guarded",
    "token_digest",
]

#: User roles. ``auditor`` verifies and reads the audit log but sees no study data.
ROLES = USER_ROLES
#: Export tiers, most to least access.
TIERS = ("full", "remove_identifiers", "deidentified", "none")
#: The export tier a role has unless its assignment sets another.
DEFAULT_TIER: Mapping[str, str] = MappingProxyType(
    {
        "admin": "full",
        "researcher": "remove_identifiers",
        "ps_worker": "none",
        "trainer": "none",
        "auditor": "none",
    }
)
#: In a story studio: the :class:`~peerlens.study.models.WorkerAccess` relation through which
#: each ``own_only`` role reaches a PS worker.
STUDIO_RELATION: Mapping[str, str] = MappingProxyType({"ps_worker": "worker", "trainer": "trainer"})
_RANK = {t: len(TIERS) - 1 - i for i, t in enumerate(TIERS)}


def tier_rank(tier: str) -> int:
    """Higher for more access (``full`` highest); raises on an unknown tier."""
    if tier not in _RANK:
        raise StudyError(f"export tier {tier!r}: use one of {', '.join(TIERS)}")
    return _RANK[tier]


@dataclass(frozen=True)
class Rule:
    """Who may perform one operation.

    Attributes
    ----------
    roles
        The roles whose assignments count.
    scope
        ``"global"``, ``"study"`` or ``"site"`` (see the module docstring).
    min_tier
        The export tier the counted assignments must reach (``None``: no export involved).
    summary
        What the operation does, for the generated policy table in ``docs/security.md``.
    """

    roles: frozenset[str]
    scope: str
    summary: str
    min_tier: str | None = None
    #: Any active user may, whatever their roles (their own account only).
    any_user: bool = False
    #: Only the participant holding a valid personal link may, for that link's participant
    #: and timepoint only (see :func:`authorize_link`); no user account may.
    link_holder: bool = False
    #: Roles that count only for the PS workers the caller's account is tied to (see
    #: :data:`STUDIO_RELATION` and :func:`authorize_worker`), not for their whole site.
    own_only: frozenset[str] = frozenset()


_ADMIN = frozenset({"admin"})
_WRITERS = frozenset({"admin", "researcher"})
_STAFF = frozenset({"admin", "researcher", "ps_worker"})
_AUDIT = frozenset({"admin", "auditor"})
_EVERYONE = frozenset(ROLES)
_WORKER = frozenset({"ps_worker"})
_COACHES = frozenset({"ps_worker", "trainer"})
_STUDIO = frozenset({"admin", "researcher", "ps_worker", "trainer"})

#: The policy: operation name -> :class:`Rule`. Every public study function names one of these.
POLICY: Mapping[str, Rule] = MappingProxyType(
    {
        # -- users and the database
        "user.create": Rule(_ADMIN, "global", "create a user account"),
        "user.grant": Rule(_ADMIN, "global", "give a user a role"),
        "user.revoke": Rule(_ADMIN, "global", "take a role from a user"),
        "user.activate": Rule(_ADMIN, "global", "deactivate or reactivate a user account"),
        "user.password": Rule(_ADMIN, "global", "set another user's password"),
        "user.list": Rule(_ADMIN, "global", "list users and their roles"),
        "account.password": Rule(frozenset(), "global", "change their own password", any_user=True),
        "token.create": Rule(
            frozenset(), "global", "create a personal access token of their own", any_user=True
        ),
        "token.list": Rule(
            frozenset(), "global", "list their own personal access tokens", any_user=True
        ),
        "token.revoke": Rule(
            frozenset(), "global", "revoke a personal access token of their own", any_user=True
        ),
        "token.list_all": Rule(
            _ADMIN, "global", "list every user's personal access tokens (never the tokens)"
        ),
        "token.revoke_any": Rule(_ADMIN, "global", "revoke any user's personal access token"),
        "vault.rotate": Rule(_ADMIN, "global", "re-encrypt the identity vault under a new key"),
        # -- studies
        "study.create": Rule(_ADMIN, "global", "create a study"),
        "study.list": Rule(_EVERYONE, "site", "see that a study exists (name and title)"),
        "study.read": Rule(_STAFF, "site", "read a study's design (arms, sites, timepoints)"),
        "dictionary.import": Rule(_WRITERS, "study", "replace the REDCap data dictionary"),
        "dictionary.export": Rule(_WRITERS, "site", "download the REDCap data dictionary"),
        "scoring.map": Rule(
            _WRITERS, "study", "set how a dictionary form is scored (re-derives the scores)"
        ),
        "dictionary.identifier": Rule(
            _ADMIN, "study", "mark a field as identifying or not identifying"
        ),
        # -- participants and their data
        "participant.add": Rule(_WRITERS, "site", "enrol participants"),
        "participant.list": Rule(_WRITERS, "site", "list participants (pseudonyms)"),
        "progress.read": Rule(
            _WRITERS, "site", "see which scheduled questionnaires are complete, due or overdue"
        ),
        "participant.status": Rule(_WRITERS, "site", "withdraw or complete a participant"),
        "participant.erase": Rule(_ADMIN, "site", "erase a participant's identifying content"),
        "identity.read": Rule(_ADMIN, "site", "read identity-vault fields", min_tier="full"),
        "identity.write": Rule(_WRITERS, "site", "add or change identity-vault fields"),
        "consent.add": Rule(_WRITERS, "site", "record a consent"),
        "consent.text": Rule(_WRITERS, "study", "set a new version of the study's consent text"),
        "link.issue": Rule(_WRITERS, "site", "issue a participant's personal questionnaire link"),
        "link.revoke": Rule(_WRITERS, "site", "revoke a participant's personal links"),
        "relationship.add": Rule(_WRITERS, "site", "record a PS relationship"),
        "session.add": Rule(_WRITERS, "site", "record a PS session"),
        "transcript.add": Rule(_WRITERS, "site", "store a transcript or story"),
        "recording.add": Rule(_WRITERS, "site", "store an ECG/RR recording"),
        "responses.import": Rule(_WRITERS, "site", "import questionnaire responses"),
        "redcap.import": Rule(_WRITERS, "site", "import REDCap records"),
        # -- the participant, through their personal link (no account)
        "link.open": Rule(
            frozenset(), "link", "open their own consent and questionnaire pages", link_holder=True
        ),
        "link.consent": Rule(
            frozenset(), "link", "agree to the study's consent text", link_holder=True
        ),
        "link.answer": Rule(
            frozenset(), "link", "save a page of their own answers", link_holder=True
        ),
        "link.withdraw": Rule(frozenset(), "link", "withdraw from the study", link_holder=True),
        # -- the story studio of PS workers (their own, their trainees', their sites')
        "studio.access": Rule(
            _WRITERS,
            "site",
            "let a user account into a PS worker's story studio (as the worker or a trainer)",
        ),
        "studio.workers": Rule(
            _STUDIO,
            "site",
            "list the PS workers whose story studio they may open",
            own_only=_COACHES,
        ),
        "story.analyse": Rule(
            frozenset(), "global", "analyse a text's sentences without storing it", any_user=True
        ),
        "story.save": Rule(_WORKER, "site", "analyse and save a practice story", own_only=_WORKER),
        "story.read": Rule(
            _STUDIO,
            "site",
            "read a PS worker's stories, their labels and the connection index over time",
            own_only=_COACHES,
        ),
        "story.disagree": Rule(
            _COACHES, "site", "mark 'I disagree' on a sentence's label", own_only=_COACHES
        ),
        "story.sessions": Rule(
            _WRITERS,
            "site",
            "read the story labels of PS workers' session transcripts (counts, no text), for "
            "analysis",
            min_tier="deidentified",
        ),
        "disagreements.export": Rule(
            _WRITERS,
            "site",
            "export 'I disagree' marks with their sentences (for training the model)",
            min_tier="remove_identifiers",
        ),
        # -- derived results and exports
        "derive": Rule(_WRITERS, "study", "recompute scores, HRV and story labels"),
        "derived.status": Rule(_WRITERS, "site", "count current, stale and missing results"),
        "derived.read": Rule(
            _WRITERS, "site", "read derived results per participant", min_tier="deidentified"
        ),
        "derived.verify": Rule(_AUDIT, "study", "check derived results against their digests"),
        "export": Rule(_WRITERS, "site", "export study data at a tier", min_tier="deidentified"),
        "analysis.export": Rule(
            _WRITERS,
            "site",
            "read the de-identified analysis dataset (report; SPSS, Stata and R exports)",
            min_tier="deidentified",
        ),
        "analysis.hrv": Rule(
            _WRITERS,
            "site",
            "read the de-identified HRV analysis table (report; SPSS, Stata and R exports)",
            min_tier="deidentified",
        ),
        # -- audit
        "audit.verify": Rule(_AUDIT, "global", "verify the audit chain"),
        # Audit rows hold changed answers (old -> new values): reading them is admins' only.
        "audit.read": Rule(_ADMIN, "global", "read the audit log"),
        # -- asking first (a front end about to receive an upload): nothing is done
        "operation.check": Rule(
            frozenset(),
            "global",
            "ask whether they may perform an operation, refused as the operation would be",
            any_user=True,
        ),
    }
)


#: The scopes of a personal access token (:mod:`peerlens.study.tokens`) and the operations each
#: allows. A token acts within its user's current roles *and* its scopes: a scope never adds a
#: right the user lacks. Every live token may see which studies its user holds a role in
#: (``study.list``: names and titles only), so that the API answers "no such study" alike for a
#: study that does not exist and one the user has no role in, and may ask whether it may perform
#: an operation (``operation.check``: the answer is that operation's own, scopes included).
#: Operations in no scope (managing one's own tokens, changing a password, the participants' own
#: link operations) are never done with a token; an admin's ``admin`` token may list and revoke
#: any user's tokens (user management: a leaked token is stopped from a script).
TOKEN_SCOPES: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "any": frozenset({"study.list", "operation.check"}),
        "read": frozenset(
            {
                "study.read",
                "dictionary.export",
                "participant.list",
                "progress.read",
                "studio.workers",
                "story.analyse",
                "story.read",
                "derived.status",
                "derived.read",
                "derived.verify",
                "audit.verify",
            }
        ),
        "write": frozenset(
            {
                "dictionary.import",
                "scoring.map",
                "participant.add",
                "participant.status",
                "identity.write",
                "consent.add",
                "consent.text",
                "link.issue",
                "link.revoke",
                "relationship.add",
                "session.add",
                "transcript.add",
                "recording.add",
                "responses.import",
                "redcap.import",
                "studio.access",
                "story.save",
                "story.disagree",
                "derive",
            }
        ),
        "export": frozenset(
            {
                "export",
                "analysis.export",
                "analysis.hrv",
                "story.sessions",
                "disagreements.export",
                "identity.read",
            }
        ),
        "admin": frozenset(
            {
                "user.create",
                "user.grant",
                "user.revoke",
                "user.activate",
                "user.password",
                "user.list",
                "vault.rotate",
                "study.create",
                "dictionary.identifier",
                "participant.erase",
                "audit.read",
                "token.list_all",
                "token.revoke_any",
            }
        ),
    }
)


#: What a request with a bad token is told, whatever was wrong (unknown, expired, revoked, a
#: deactivated account): the same words every time, so that refusals are no oracle.
TOKEN_REFUSED = "the access token is not valid: it may have expired or been revoked"


def token_scope(operation: str) -> str | None:
    """The token scope that allows ``operation`` (``None``: no token may perform it).

    Examples
    --------
    >>> token_scope("export"), token_scope("token.create")
    ('export', None)
    """
    return next((name for name, ops in TOKEN_SCOPES.items() if operation in ops), None)


@dataclass(frozen=True)
class Caller:
    """Who is calling: a peerlens user name, authenticated by the caller's front end (the CLI
    checks a password, the web app a session or token).

    Rights are not carried here: every study function looks up the user's current role
    assignments in its own transaction, so a role taken away takes effect at once. A caller
    authenticated by a personal access token (:func:`peerlens.study.tokens.resume_token`) names
    the token's id in ``token``: :func:`authorize` then also reads that token in the same
    transaction and allows only the operations of its scopes (:data:`TOKEN_SCOPES`), while it is
    neither revoked nor expired.
    """

    username: str
    token: int | None = None

    def __str__(self) -> str:
        return self.username


@dataclass(frozen=True)
class Grant:
    """What :func:`authorize` allowed: one operation, for one caller, in one study.

    ``sites`` is ``None`` when every site of the study is covered, else the site names the
    caller is limited to; ``tier`` is the highest export tier among the counted assignments.
    """

    actor: str
    operation: str
    sites: frozenset[str] | None
    tier: str

    def allows_tier(self, tier: str) -> bool:
        """True when ``tier`` is at most this grant's export tier."""
        return tier_rank(tier) <= tier_rank(self.tier)

    def require_tier(self, tier: str) -> None:
        """Refuse an export at ``tier`` beyond this grant (or at ``none``)."""
        tier_rank(tier)
        if tier == "none":
            raise StudyError("export tier 'none' exports nothing; choose another tier")
        if not self.allows_tier(tier):
            raise PermissionDenied(
                f"{self.actor} may {self.operation} at most at tier {self.tier!r}, not {tier!r}"
            )

    def covers_site(self, site: str | None) -> bool:
        """True when a participant at ``site`` (``None``: no site) is within this grant."""
        return self.sites is None or (site is not None and site in self.sites)

    def outside(self, study: Study, participant: Participant) -> str | None:
        """Why ``participant`` is outside this grant's sites (``None`` when inside).

        The reason reads as for a code that does not exist (:meth:`hidden`): a site-scoped
        user learns nothing about other sites' participants, not even that they exist."""
        if self.sites is None:
            return None
        site = next((x.name for x in study.sites if x.id == participant.site_id), None)
        if site is not None and site in self.sites:
            return None
        return self.hidden(participant.study_code)

    def hidden(self, code: str) -> str:
        """What a caller is told about participant ``code`` that they may not see or that does
        not exist: the same words for both, so that refusals are no oracle."""
        if self.sites is None:
            return f"unknown participant {code!r}"
        return (
            f"unknown participant {code!r} or outside your site(s) {', '.join(sorted(self.sites))}"
        )

    def refuse_participant(self, study: Study, code: str, person: Participant | None) -> str | None:
        """Why rows of participant ``code`` (``person``, ``None`` when unknown) cannot be
        imported by this grant, or ``None``. The site is checked before the erasure status, so
        an erased participant of another site reads as unknown."""
        if person is None:
            return self.hidden(code)
        outside = self.outside(study, person)
        if outside is not None:
            return outside
        if person.status == "erased":
            return f"participant {code!r} was erased"
        return None

    def check(self, study: Study, *participants: Participant) -> None:
        """Refuse when any of ``participants`` is outside this grant's sites."""
        for p in participants:
            why = self.outside(study, p)
            if why is not None:
                raise NotFound(why)


@dataclass(frozen=True)
class LinkHolder:
    """A participant calling through their personal link: the participant code the link's URL
    names and the link's secret token (never shown in ``repr``).

    The token is the participant's only right: :func:`authorize_link` checks it, for the
    operations whose :class:`Rule` has ``link_holder``, against the stored hash of a link that
    is neither expired nor revoked and belongs to that participant.
    """

    participant: str
    token: str = field(repr=False)

    def __str__(self) -> str:
        return f"link:{self.participant}"


#: What a link holder is told whatever was wrong with the link (unknown, expired, revoked,
#: another participant's): the same words every time, so that refusals are no oracle.
LINK_REFUSED = "this link is not valid: it may have expired or been withdrawn"


# Operations authorized during the current guarded call (see :func:`guarded`).
_authorized: ContextVar[set[str] | None] = ContextVar("peerlens_authorized", default=None)


def active_user(session: Session, caller: Caller) -> User:
    """The active user account behind ``caller`` (refused when unknown or deactivated)."""
    if not isinstance(caller, Caller):
        raise PermissionDenied(
            f"{caller!r} is not a peerlens caller; authenticate first (peerlens.study.authenticate)"
        )
    user = session.scalars(select(User).where(User.username == caller.username)).first()
    if user is None or not user.is_active:
        raise PermissionDenied(f"{caller.username!r} is not an active peerlens user")
    return user


def authorize(
    session: Session,
    caller: Caller,
    operation: str,
    study: Study | None = None,
    *,
    tier: str | None = None,
) -> Grant:
    """Check ``operation`` for ``caller`` (in ``study``) against :data:`POLICY`.

    Parameters
    ----------
    session
        The transaction the operation runs in (rights are read there).
    caller
        Who asks.
    operation
        A key of :data:`POLICY`.
    study
        The study the operation touches (``None`` for database-wide operations).
    tier
        For exports: the tier asked for; refused when beyond the grant.

    Returns
    -------
    Grant
        The sites and export tier the caller holds for this operation.

    Raises
    ------
    PermissionDenied
        The caller is unknown or inactive, or no assignment allows the operation.
    """
    rule = POLICY.get(operation)
    if rule is None:  # a programming error: every operation is declared
        raise KeyError(f"operation {operation!r} has no policy entry")
    if rule.link_holder:  # only a participant's own link (authorize_link), never an account
        raise PermissionDenied(f"{caller} may not {rule.summary}: only the participant may")
    user = active_user(session, caller)
    scopes: frozenset[str] | None = None  # the token's scopes (None: not a token)
    if caller.token is not None:
        scopes = _check_token(session, user, caller.token, operation, rule)
    if operation != "audit.verify":  # verifying must work to find out what was tampered with
        from peerlens.study.integrity import check_rights

        check_rights(session, user.id)
    if rule.any_user:
        return _granted(Grant(caller.username, operation, None, "none"))
    sites: set[str] | None = set()
    best: str | None = None
    # Whether any of the caller's roles reaches the study (a global one, or one in it).
    reaches = study is None
    for ra in session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id)):
        reaches = reaches or ra.study_id is None or (study is not None and ra.study_id == study.id)
        if ra.role not in rule.roles:
            continue
        if rule.scope == "global" and ra.study_id is not None:
            continue
        if ra.study_id is not None and (study is None or ra.study_id != study.id):
            continue
        if rule.scope == "study" and ra.site_id is not None:
            continue
        t = ra.export_tier or DEFAULT_TIER[ra.role]
        if rule.min_tier is not None and tier_rank(t) < tier_rank(rule.min_tier):
            continue
        # For an export at ``tier`` only the assignments reaching it count, so their sites are
        # the sites exported (a full tier at one site never widens to another site).
        if tier is not None and tier != "none" and tier_rank(t) < tier_rank(tier):
            continue
        best = t if best is None or tier_rank(t) > tier_rank(best) else best
        if ra.site_id is None:
            sites = None
        elif sites is not None:
            site = session.get(Site, ra.site_id)
            if site is not None:
                sites.add(site.name)
    if best is None and study is not None and not reaches:
        # A study the caller holds no role in reads as one that does not exist.
        raise unknown_study(study.name)
    if best is None and tier is not None:
        # Say which tier is missing rather than that the operation is.
        authorize(session, caller, operation, study).require_tier(tier)
    if best is None:
        where = f" in study {study.name!r}" if study is not None else ""
        roles = " or ".join(sorted(rule.roles))
        need = {"global": "a global", "study": "a study-wide", "site": "a"}[rule.scope]
        extra = f" with export tier {rule.min_tier} or higher" if rule.min_tier else ""
        raise PermissionDenied(
            f"{caller.username} may not {rule.summary}{where} (needs {need} {roles} role{extra})"
        )
    if scopes is not None and "export" not in scopes and tier_rank(best) > tier_rank(_NO_EXPORT):
        # A token without the export scope reads at most what a de-identified export shows
        # (e.g. no error texts quoting a recording), whatever its user's export right.
        best = _NO_EXPORT
    grant = Grant(caller.username, operation, None if sites is None else frozenset(sites), best)
    if tier is not None:
        grant.require_tier(tier)
    return _granted(grant)


#: The highest tier a grant reaches through a token without the ``export`` scope.
_NO_EXPORT = "deidentified"


def _check_token(
    session: Session, user: User, token_id: int, operation: str, rule: Rule
) -> frozenset[str]:
    """Refuse ``operation`` unless token ``token_id`` of ``user`` is live and one of its scopes
    allows it (the user's roles are checked after this, as for any caller); return the token's
    scopes (they bound the grant's export tier)."""
    from peerlens.study.keys import token_row_valid

    token = session.get(ApiToken, token_id)
    expires = as_utc(token.expires_at) if token is not None else None
    if (
        token is None
        or not token_row_valid(session, token)
        or token.user_id != user.id
        or token.revoked_at is not None
        or expires is None
        or expires <= utcnow()
    ):
        raise PermissionDenied(TOKEN_REFUSED)
    scope = token_scope(operation)
    if scope != "any" and (scope is None or scope not in token.scopes.split()):
        need = f"the {scope!r} scope" if scope else "a signed-in session, not a token"
        raise PermissionDenied(f"this access token may not {rule.summary} (needs {need})")
    return frozenset(token.scopes.split())


def token_digest(token: str) -> str:
    """The sha256 (hex) a link token is stored and looked up as (never the token itself).

    Examples
    --------
    >>> len(token_digest("abc"))
    64
    """
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def authorize_link(session: Session, holder: LinkHolder, operation: str) -> ParticipantLink:
    """Check ``operation`` for the participant holding a personal link.

    Parameters
    ----------
    session
        The transaction the operation runs in.
    holder
        The participant code and token of the link as presented.
    operation
        A key of :data:`POLICY` whose rule has ``link_holder``.

    Returns
    -------
    ParticipantLink
        The link (its participant and timepoint are the only ones the operation may touch).

    Raises
    ------
    PermissionDenied
        With :data:`LINK_REFUSED` whatever the reason: a user account instead of a link, an
        unknown token, another participant's token, an expired or revoked link, an erased
        participant, or a link row changed outside peerlens (checked against its seal) or
        revoked by the audit chain (see :mod:`peerlens.study._revocation`).
    """
    rule = POLICY.get(operation)
    if rule is None:  # a programming error: every operation is declared
        raise KeyError(f"operation {operation!r} has no policy entry")
    if not rule.link_holder:
        raise KeyError(f"operation {operation!r} is not a link holder's")
    if not isinstance(holder, LinkHolder) or not isinstance(holder.token, str):
        raise PermissionDenied(LINK_REFUSED)
    # The link and its participant in one statement; ``link.participant`` keeps the participant
    # in the session for the operation's own use (no second read).
    link = session.scalars(
        select(ParticipantLink)
        .join(ParticipantLink.participant)
        .options(contains_eager(ParticipantLink.participant))
        .where(ParticipantLink.token_sha256 == token_digest(holder.token))
    ).first()
    if link is None:
        raise PermissionDenied(LINK_REFUSED)
    from peerlens.study._revocation import revoked_in_chain
    from peerlens.study._seal_units import BY_NAME
    from peerlens.study.integrity import check_units

    check_units(session, BY_NAME["participant_link"], [link.id])
    person = link.participant
    expires = as_utc(link.expires_at)
    if (
        person is None
        or person.study_code != holder.participant
        or person.status == "erased"
        or link.revoked_at is not None
        or expires is None
        or expires <= utcnow()
        # An earlier sealed copy of a revoked link's row, written back, is refused too.
        or revoked_in_chain(session, link) is not None
    ):
        raise PermissionDenied(LINK_REFUSED)
    _granted(Grant(str(holder), operation, None, "none"))
    return link


@dataclass(frozen=True)
class WorkerReach:
    """Which PS workers' story studios a caller reaches for one operation.

    ``sites`` is ``None`` when every site of the study is covered, else the ids of the sites
    covered (empty: none) by a role that reaches whole sites; ``linked`` maps each worker
    (participant id) reached through the caller's own account to the relation (``worker`` or
    ``trainer``).
    """

    grant: Grant
    sites: frozenset[int] | None
    linked: Mapping[int, str]

    def reaches(self, worker: Participant) -> bool:
        """True when ``worker``'s studio is within this reach."""
        if worker.id in self.linked:
            return True
        return self.sites is None or (worker.site_id is not None and worker.site_id in self.sites)


def worker_reach(session: Session, caller: Caller, operation: str, study: Study) -> WorkerReach:
    """The PS workers whose story studio ``caller`` may open for ``operation`` in ``study``.

    The caller must hold a role the operation's rule names (else :class:`PermissionDenied`, as
    from :func:`authorize`). Roles in the rule's ``own_only`` count only for the workers the
    caller's account is tied to by a :class:`~peerlens.study.models.WorkerAccess` row of their
    relation (:data:`STUDIO_RELATION`); the other roles reach every worker of their sites.
    """
    rule = POLICY[operation]
    grant = authorize(session, caller, operation, study)
    user = active_user(session, caller)
    sites: set[int] | None = set()
    relations: set[str] = set()
    for ra in session.scalars(select(RoleAssignment).where(RoleAssignment.user_id == user.id)):
        if ra.role not in rule.roles or ra.study_id not in (None, study.id):
            continue
        if ra.role in rule.own_only:
            relations.add(STUDIO_RELATION[ra.role])
        elif ra.site_id is None:
            sites = None
        elif sites is not None:
            sites.add(ra.site_id)
    access = list(
        session.scalars(
            select(WorkerAccess).where(
                WorkerAccess.user_id == user.id, WorkerAccess.study_id == study.id
            )
        )
    )
    if relations:
        # Access rows are rights: checked against their seals, like role rows, before use.
        from peerlens.study._seal_units import BY_NAME
        from peerlens.study.integrity import check_kind_totals, check_units

        check_units(session, BY_NAME["worker_access"], [a.id for a in access])
        check_kind_totals(session, BY_NAME["worker_access"])
    linked = {a.participant_id: a.relation for a in access if a.relation in relations}
    return WorkerReach(grant, None if sites is None else frozenset(sites), linked)


def authorize_worker(
    session: Session, caller: Caller, operation: str, study: Study, worker: Participant
) -> WorkerReach:
    """Check ``operation`` on PS worker ``worker``'s story studio for ``caller``.

    Raises
    ------
    PermissionDenied
        The caller does not reach this worker (see :func:`worker_reach`); told in the words used
        for a worker who does not exist, so that refusals are no oracle.
    """
    reach = worker_reach(session, caller, operation, study)
    if not reach.reaches(worker):
        raise NotFound(f"unknown PS worker {worker.study_code!r} or not one of yours")
    return reach


def _granted(grant: Grant) -> Grant:
    done = _authorized.get()
    if done is not None:
        done.add(grant.operation)
    return grant


F = TypeVar("F", bound=Callable[..., Any])


def guarded(operation: str) -> Callable[[F], F]:
    """Declare the policy operation a public study function performs, and make sure it asked.

    The wrapped function must call :func:`authorize` for ``operation`` before it returns; one
    that returns without doing so raises ``RuntimeError`` (a bug, caught by the tests, never a
    silent pass). ``fn.__policy__`` names the operation for the policy tests and docs.
    """
    if operation not in POLICY:
        raise KeyError(f"operation {operation!r} has no policy entry")

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = _authorized.set(set())
            try:
                result = fn(*args, **kwargs)
                done = _authorized.get() or set()
            finally:
                _authorized.reset(token)
            outer = _authorized.get()
            if outer is not None:  # a guarded function called by another: both asked
                outer |= done
            if operation not in done:
                raise RuntimeError(
                    f"{fn.__qualname__} returned without authorizing {operation!r} (a peerlens bug)"
                )
            return result

        wrapper.__policy__ = operation  # type: ignore[attr-defined]
        return cast(F, wrapper)

    return decorate


def policy_table() -> str:
    """The policy as a Markdown table (one row per operation), as printed in docs/security.md.

    Examples
    --------
    >>> policy_table().splitlines()[0]
    '| operation | what | roles | scope | export tier | token scope |'
    """
    lines = [
        "| operation | what | roles | scope | export tier | token scope |",
        "|---|---|---|---|---|---|",
    ]
    for name, rule in POLICY.items():
        if rule.any_user:
            roles = "any active user (own account)"
        elif rule.link_holder:
            roles = "the participant, through their own personal link"
        else:
            own = {"ps_worker": " (own studio)", "trainer": " (their trainees)"}
            roles = ", ".join(
                r + (own[r] if r in rule.own_only else "") for r in ROLES if r in rule.roles
            )
        token = {None: "(no token)", "any": "any token"}.get(token_scope(name), token_scope(name))
        lines.append(
            f"| `{name}` | {rule.summary} | {roles} | {rule.scope} | {rule.min_tier or ''} "
            f"| {token} |"
        )
    return "\n".join(lines)
