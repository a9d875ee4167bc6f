"""The permission seam: every public study function is declared in the policy, and every role x
scope x target site x operation is allowed or refused as specified here.

The expected matrix below is written out by hand from the roles' documented intent
(docs/security.md), not computed from ``peerlens.study.policy.POLICY``: the test calls the real
public functions and checks what they do.
"""

from __future__ import annotations

import datetime as dt
import inspect
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import func, select

import peerlens.study as api
from peerlens.study import (
    POLICY,
    Caller,
    NewParticipant,
    PermissionDenied,
    Store,
    StudyError,
    add_participant,
    add_relationship,
    add_session,
    create_study,
    create_user,
    grant_role,
    set_active,
)
from peerlens.study.models import AuditLog, Participant, Recording

from ..conftest import ADMIN, PASSWORD, VAULT_KEY, make_user

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
ROLES = ("admin", "researcher", "ps_worker", "auditor")
SCOPES = ("global", "study", "leeds")  # a global role, a role in study "pilot", one site of it
#: Functions that need no caller: reading a config file, naming a database, describing an error
#: for a log, signing in (with a password, a web session id or an access token), and the one
#: explicit first-admin step.
NO_CALLER = {
    "resume_token",
    "load_config",
    "resolve_url",
    "describe_error",
    "authenticate",
    "sign_in",
    "resume_session",
    "end_session",
    "bootstrap_admin",
}


def test_every_public_study_function_is_guarded_and_takes_the_caller() -> None:
    functions = {
        name: obj
        for name in api.__all__
        if inspect.isfunction(obj := getattr(api, name)) and name not in NO_CALLER
    }
    unguarded = sorted(n for n, f in functions.items() if getattr(f, "__policy__", None) is None)
    assert unguarded == []
    assert {f.__policy__ for f in functions.values()} <= set(POLICY)  # type: ignore[attr-defined]
    for name, f in functions.items():
        param = inspect.signature(f).parameters.get("caller")
        assert param is not None and param.kind is inspect.Parameter.KEYWORD_ONLY, name
    # Every guarded function has a row in the matrix below (a new one without it fails here).
    assert set(functions) == set(CASES)


def test_a_guarded_function_that_forgets_to_authorize_is_a_loud_bug() -> None:
    from peerlens.study.policy import guarded

    @guarded("study.read")
    def forgetful() -> int:
        return 1

    with pytest.raises(RuntimeError, match=r"without authorizing 'study\.read'"):
        forgetful()
    with pytest.raises(KeyError):
        guarded("no.such.operation")


# ---------------------------------------------------------------------------- the world


@dataclass
class World:
    """A study with two sites, a participant at each, a PS worker at Leeds and one caller per
    role and scope, plus a user without roles and a deactivated admin."""

    store: Store
    tmp: Path
    callers: dict[str, Caller]
    n: Iterator[int]
    #: One practice story per site, saved by a PS worker's own account (made when first needed).
    stories: dict[str, int] = field(default_factory=dict)

    def fresh(self, site: str, role: str = "service_user") -> str:
        code = f"{site[0].upper()}{next(self.n)}"
        add_participant(self.store, "pilot", code, site=site, role=role, caller=ADMIN)
        return code

    def relationship(self, site: str) -> int:
        return add_relationship(
            self.store, "pilot", "LW", self.fresh(site), started_at=T0, caller=ADMIN
        )

    def story(self, site: str) -> int:
        if site not in self.stories:
            code = self.fresh(site, "ps_worker")
            worker = make_user(self.store, f"own-{code}", "ps_worker", study="pilot", site=site)
            api.grant_studio_access(
                self.store, "pilot", code, worker.username, relation="worker", caller=ADMIN
            )
            self.stories[site] = api.save_story(
                self.store, "pilot", "Me too.", told_on=T0.date(), caller=worker
            )
        return self.stories[site]

    def file(self, name: str, text: str) -> Path:
        path = self.tmp / f"{next(self.n)}-{name}"
        path.write_text(text, encoding="utf-8")
        return path


@pytest.fixture
def world(store: Store, config_path: Path, tmp_path: Path) -> World:
    create_study(store, "pilot", config_path, caller=ADMIN)
    add_participant(store, "pilot", "LW", site="leeds", role="ps_worker", caller=ADMIN)
    callers: dict[str, Caller] = {}
    for role, scope in itertools.product(ROLES, SCOPES):
        name = f"{role}-{scope}"
        callers[name] = make_user(
            store,
            name,
            role,
            study=None if scope == "global" else "pilot",
            site="leeds" if scope == "leeds" else None,
        )
    create_user(store, "nobody", PASSWORD, caller=ADMIN)
    callers["nobody"] = Caller("nobody")
    callers["gone"] = make_user(store, "gone", "admin")
    set_active(store, "gone", False, caller=ADMIN)
    callers["stranger"] = Caller("not-a-user")
    return World(store, tmp_path, callers, itertools.count(1))


# ----------------------------------------------------------------------- the operations

GAD7 = ",".join(f"gad7_{i}" for i in range(1, 8))

#: How each public function is exercised: ``target`` is the site of the participant it touches
#: (``None`` for study- or database-wide operations).
Invoke = Callable[[World, Caller, str | None], object]


def _responses(w: World, c: Caller, site: str | None) -> object:
    code = w.fresh(site or "leeds")
    f = w.file("gad.csv", f"participant,{GAD7}\n{code},1,1,1,1,1,1,1\n")
    return api.import_responses(w.store, "pilot", f, timepoint="baseline", caller=c)


def _redcap(w: World, c: Caller, site: str | None) -> object:
    code = w.fresh(site or "leeds")
    f = w.file(
        "rc.csv", f"record_id,redcap_event_name,{GAD7}\n{code},baseline_arm_1,2,2,2,2,2,2,2\n"
    )
    return api.import_records(w.store, "pilot", f, caller=c)


def _recording(w: World, c: Caller, site: str | None) -> object:
    f = w.file("rr.txt", "800\n810\n790\n805\n")
    return api.add_recording(
        w.store, "pilot", f, participant=w.fresh(site or ""), kind="rr", caller=c
    )


def _beats(w: World, c: Caller, site: str | None) -> object:
    _recording(w, ADMIN, site)
    with w.store.transaction() as s:
        sha, code = s.execute(
            select(Recording.sha256, Participant.study_code)
            .join(Participant, Participant.id == Recording.participant_id)
            .order_by(Recording.id.desc())
        ).first()  # type: ignore[misc]
    return api.recording_beats(w.store, "pilot", code, sha, caller=c)


def _dictionary(w: World, c: Caller, site: str | None) -> object:
    text = (
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
        '"Choices, Calculations, OR Slider Labels","Field Note",'
        '"Text Validation Type OR Show Slider Number","Text Validation Min",'
        '"Text Validation Max","Identifier?","Branching Logic (Show field only if...)",'
        '"Required Field?","Custom Alignment","Question Number (surveys only)",'
        '"Matrix Group Name","Matrix Ranking?","Field Annotation"\n'
        "record_id,contact,,text,ID,,,,,,,,,,,,,\n"
        "email,contact,,text,Email,,,email,,,y,,,,,,,\n"
    )
    return api.import_data_dictionary(w.store, "pilot", w.file("dict.csv", text), caller=c)


def _scoring_map(w: World, c: Caller, site: str | None) -> object:
    header = (
        '"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
        '"Choices, Calculations, OR Slider Labels","Field Note",'
        '"Text Validation Type OR Show Slider Number","Text Validation Min",'
        '"Text Validation Max","Identifier?","Branching Logic (Show field only if...)",'
        '"Required Field?","Custom Alignment","Question Number (surveys only)",'
        '"Matrix Group Name","Matrix Ranking?","Field Annotation"\n'
    )
    rows = "record_id,worry,,text,ID,,,,,,,,,,,,,\n" + "".join(
        f'w{i},worry,,radio,W{i},"0, a | 1, b | 2, c | 3, d",,,,,,,,,,,,\n' for i in range(1, 8)
    )
    dictionary = w.file("worry.csv", header + rows)
    api.import_data_dictionary(w.store, "pilot", dictionary, caller=ADMIN)
    items = {f"w{i}": f"gad7_{i}" for i in range(1, 8)}
    return api.set_scoring_map(w.store, "pilot", "worry", "gad7", items, caller=c)


def _field_identifier(w: World, c: Caller, site: str | None) -> object:
    _dictionary(w, ADMIN, None)
    return api.set_field_identifier(w.store, "pilot", "email", True, caller=c, reason="check")


def _grant(w: World, c: Caller, site: str | None) -> object:
    name = f"u{next(w.n)}"
    create_user(w.store, name, PASSWORD, caller=ADMIN)
    return grant_role(w.store, name, "researcher", study="pilot", caller=c)


def _revoke(w: World, c: Caller, site: str | None) -> object:
    name = f"u{next(w.n)}"
    create_user(w.store, name, PASSWORD, caller=ADMIN)
    grant_role(w.store, name, "researcher", study="pilot", caller=ADMIN)
    return api.revoke_role(w.store, name, "researcher", study="pilot", caller=c)


def _activate(w: World, c: Caller, site: str | None) -> object:
    name = f"u{next(w.n)}"
    create_user(w.store, name, PASSWORD, caller=ADMIN)
    return set_active(w.store, name, False, caller=c)


def _password(w: World, c: Caller, site: str | None) -> object:
    name = f"u{next(w.n)}"
    create_user(w.store, name, PASSWORD, caller=ADMIN)
    return api.set_password(w.store, name, "another password", caller=c)


def _export(tier: str) -> Invoke:
    def run(w: World, c: Caller, site: str | None) -> object:
        out = w.tmp / f"{next(w.n)}.csv"
        return api.export_study(w.store, "pilot", out, tier=tier, caller=c)

    return run


CASES: dict[str, Invoke] = {
    "create_study": lambda w, c, s: create_study(
        w.store, f"s{next(w.n)}", w.tmp / "study.yaml", caller=c
    ),
    "list_studies": lambda w, c, s: api.list_studies(w.store, caller=c),
    "study_design": lambda w, c, s: api.study_design(w.store, "pilot", caller=c),
    "import_data_dictionary": _dictionary,
    "export_dictionary": lambda w, c, s: api.export_dictionary(w.store, "pilot", caller=c),
    "set_field_identifier": _field_identifier,
    "add_participant": lambda w, c, s: add_participant(
        w.store, "pilot", f"N{next(w.n)}", site=s, caller=c
    ),
    "add_participants": lambda w, c, s: api.add_participants(
        w.store, "pilot", [NewParticipant(f"N{next(w.n)}", site=s)], caller=c
    ),
    "import_participants": lambda w, c, s: api.import_participants(
        w.store, "pilot", str(w.file("p.csv", f"participant,site\nN{next(w.n)},{s}\n")), caller=c
    ),
    "list_participants": lambda w, c, s: api.list_participants(w.store, "pilot", caller=c),
    "study_progress": lambda w, c, s: api.study_progress(w.store, "pilot", caller=c),
    "set_status": lambda w, c, s: api.set_status(
        w.store, "pilot", w.fresh(s or ""), "completed", caller=c
    ),
    "withdraw_participant": lambda w, c, s: api.withdraw_participant(
        w.store, "pilot", w.fresh(s or ""), caller=c
    ),
    "erase_participant": lambda w, c, s: api.erase_participant(
        w.store, "pilot", w.fresh(s or ""), caller=c, reason="request"
    ),
    "get_identity": lambda w, c, s: api.get_identity(w.store, "pilot", w.fresh(s or ""), caller=c),
    "set_identity": lambda w, c, s: api.set_identity(
        w.store, "pilot", w.fresh(s or ""), {"name": "Ann Example"}, caller=c
    ),
    "add_consent": lambda w, c, s: api.add_consent(
        w.store, "pilot", w.fresh(s or ""), version="v1", consented_at=T0, caller=c
    ),
    "add_relationship": lambda w, c, s: add_relationship(
        w.store, "pilot", "LW", w.fresh(s or ""), started_at=T0, caller=c
    ),
    "add_session": lambda w, c, s: add_session(
        w.store, "pilot", w.relationship(s or ""), "s1", started_at=T0, mode="phone", caller=c
    ),
    "add_transcript": lambda w, c, s: api.add_transcript(
        w.store, "pilot", "Me too.", participant=w.fresh(s or ""), kind="story", caller=c
    ),
    "add_recording": _recording,
    # Asking first (before an upload is received): answered by the asked operation's own rule.
    "check_operation": lambda w, c, s: api.check_operation(
        w.store, "pilot", api.add_recording, participant=w.fresh(s or ""), caller=c
    ),
    "import_responses": _responses,
    "import_records": _redcap,
    "derive": lambda w, c, s: api.derive(w.store, "pilot", ["scores"], caller=c),
    "derivation_status": lambda w, c, s: api.derivation_status(w.store, "pilot", caller=c),
    "derived_frame": lambda w, c, s: api.derived_frame(w.store, "pilot", "scores", caller=c),
    "recording_beats": _beats,
    "verify_derived": lambda w, c, s: api.verify_derived(w.store, "pilot", caller=c),
    "export_frame": lambda w, c, s: api.export_frame(
        w.store, "pilot", tier="deidentified", caller=c
    ),
    "export_study": _export("deidentified"),
    "analysis_dataset": lambda w, c, s: api.analysis_dataset(w.store, "pilot", caller=c),
    "hrv_table": lambda w, c, s: api.hrv_table(w.store, "pilot", caller=c),
    "create_user": lambda w, c, s: create_user(w.store, f"u{next(w.n)}", PASSWORD, caller=c),
    "grant_role": _grant,
    "revoke_role": _revoke,
    "set_active": _activate,
    "set_password": _password,
    "list_users": lambda w, c, s: api.list_users(w.store, caller=c),
    "rotate_vault_key": lambda w, c, s: api.rotate_vault_key(w.store, VAULT_KEY, caller=c),
    "verify_audit": lambda w, c, s: api.verify_audit(w.store, caller=c),
    "audit_frame": lambda w, c, s: api.audit_frame(w.store, caller=c),
    "set_scoring_map": _scoring_map,
    "scoring_maps": lambda w, c, s: api.scoring_maps(w.store, "pilot", caller=c),
    "set_consent_text": lambda w, c, s: api.set_consent_text(
        w.store, "pilot", f"v{next(w.n)}", "I agree.", caller=c
    ),
    "issue_link": lambda w, c, s: api.issue_link(
        w.store, "pilot", w.fresh(s or ""), timepoint="baseline", caller=c
    ),
    "revoke_links": lambda w, c, s: api.revoke_links(w.store, "pilot", w.fresh(s or ""), caller=c),
    # The story studio: no caller here is a PS worker's own account or a trainer tied to one,
    # so only the roles reaching whole sites read (tests/study/test_stories.py has the others).
    "grant_studio_access": lambda w, c, s: api.grant_studio_access(
        w.store, "pilot", w.fresh(s or "", "ps_worker"), "nobody", relation="trainer", caller=c
    ),
    "revoke_studio_access": lambda w, c, s: api.revoke_studio_access(
        w.store, "pilot", w.fresh(s or "", "ps_worker"), "nobody", caller=c
    ),
    "studio_workers": lambda w, c, s: api.studio_workers(w.store, "pilot", caller=c),
    "save_story": lambda w, c, s: api.save_story(
        w.store, "pilot", "Me too.", told_on=T0.date(), caller=c
    ),
    "read_story": lambda w, c, s: api.read_story(w.store, w.story(s or ""), caller=c),
    "connection_over_time": lambda w, c, s: api.connection_over_time(
        w.store, "pilot", w.fresh(s or "", "ps_worker"), caller=c
    ),
    "mark_disagreement": lambda w, c, s: api.mark_disagreement(
        w.store, w.story(s or ""), 0, "neutral", caller=c
    ),
    "export_disagreements": lambda w, c, s: api.export_disagreements(w.store, "pilot", caller=c),
    "worker_session_stories": lambda w, c, s: api.worker_session_stories(
        w.store, "pilot", caller=c
    ),
    # Every active user: their own access tokens, and analysing a text (nothing stored).
    "create_token": lambda w, c, s: api.create_token(w.store, "t", scopes=["read"], caller=c),
    "list_tokens": lambda w, c, s: api.list_tokens(w.store, caller=c),
    "revoke_token": lambda w, c, s: api.revoke_token(
        w.store, api.create_token(w.store, "t", scopes=["read"], caller=c).id, caller=c
    ),
    # A global admin: every user's tokens (anyone else: "unknown token", as for none).
    "list_all_tokens": lambda w, c, s: api.list_all_tokens(w.store, caller=c),
    "revoke_any_token": lambda w, c, s: api.revoke_any_token(
        w.store, api.create_token(w.store, "t", scopes=["read"], caller=ADMIN).id, caller=c
    ),
    "analyse_text": lambda w, c, s: api.analyse_text(w.store, "Me too.", caller=c),
    # A participant's own operations: no user account may perform them, whatever its roles.
    "open_visit": lambda w, c, s: api.open_visit(w.store, caller=c),  # type: ignore[arg-type]
    "agree_to_consent": lambda w, c, s: api.agree_to_consent(
        w.store,
        "v1",
        caller=c,  # type: ignore[arg-type]
    ),
    "save_page": lambda w, c, s: api.save_page(w.store, 1, {}, caller=c),  # type: ignore[arg-type]
    "withdraw_through_link": lambda w, c, s: api.withdraw_through_link(
        w.store,
        caller=c,  # type: ignore[arg-type]
    ),
}

# Who is allowed, as "role-scope" names (see SCOPES). For operations on a participant, a
# Leeds-scoped caller is allowed only for the Leeds participant; the Glasgow one is refused.
ANY = {f"{r}-{s}" for r in ROLES for s in SCOPES}
#: Every active account, with or without a role.
ACTIVE = ANY | {"nobody"}
GLOBAL_ADMIN = {"admin-global"}


def _who(roles: str, scopes: str = "global study leeds") -> set[str]:
    return {f"{r}-{s}" for r in roles.split() for s in scopes.split()}


WRITERS = _who("admin researcher")
#: function -> (who may, whether it targets a participant at a site)
EXPECTED: dict[str, tuple[set[str], bool]] = {
    "create_study": (GLOBAL_ADMIN, False),
    "list_studies": (ANY, False),
    "study_design": (_who("admin researcher ps_worker"), False),
    "import_data_dictionary": (_who("admin researcher", "global study"), False),
    "export_dictionary": (WRITERS, False),
    "set_field_identifier": (_who("admin", "global study"), False),
    "add_participant": (WRITERS, True),
    "add_participants": (WRITERS, True),
    "import_participants": (WRITERS, True),
    "list_participants": (WRITERS, False),
    "study_progress": (WRITERS, False),
    "set_status": (WRITERS, True),
    "withdraw_participant": (WRITERS, True),
    "erase_participant": (_who("admin"), True),
    "get_identity": (_who("admin"), True),
    "set_identity": (WRITERS, True),
    "add_consent": (WRITERS, True),
    "add_relationship": (WRITERS, True),
    "add_session": (WRITERS, True),
    "add_transcript": (WRITERS, True),
    "add_recording": (WRITERS, True),
    "check_operation": (WRITERS, True),
    "import_responses": (WRITERS, True),
    "import_records": (WRITERS, True),
    "derive": (_who("admin researcher", "global study"), False),
    "derivation_status": (WRITERS, False),
    "derived_frame": (WRITERS, False),
    "recording_beats": (WRITERS, True),
    "verify_derived": (_who("admin auditor", "global study"), False),
    "export_frame": (WRITERS, False),
    "export_study": (WRITERS, False),
    "analysis_dataset": (WRITERS, False),
    "hrv_table": (WRITERS, False),
    "create_user": (GLOBAL_ADMIN, False),
    "grant_role": (GLOBAL_ADMIN, False),
    "revoke_role": (GLOBAL_ADMIN, False),
    "set_active": (GLOBAL_ADMIN, False),
    "set_password": (GLOBAL_ADMIN, False),
    "list_users": (GLOBAL_ADMIN, False),
    "rotate_vault_key": (GLOBAL_ADMIN, False),
    "verify_audit": (_who("admin auditor", "global"), False),
    "audit_frame": (_who("admin", "global"), False),
    "set_consent_text": (_who("admin researcher", "global study"), False),
    "set_scoring_map": (_who("admin researcher", "global study"), False),
    "scoring_maps": (_who("admin researcher ps_worker"), False),
    "issue_link": (WRITERS, True),
    "revoke_links": (WRITERS, True),
    "grant_studio_access": (WRITERS, True),
    "revoke_studio_access": (WRITERS, True),
    "studio_workers": (_who("admin researcher ps_worker"), False),
    "save_story": (set(), False),
    "read_story": (WRITERS, True),
    "connection_over_time": (WRITERS, True),
    "mark_disagreement": (set(), True),
    "export_disagreements": (WRITERS, False),
    "worker_session_stories": (WRITERS, False),
    "create_token": (ACTIVE, False),
    "list_tokens": (ACTIVE, False),
    "revoke_token": (ACTIVE, False),
    "list_all_tokens": (GLOBAL_ADMIN, False),
    "revoke_any_token": (GLOBAL_ADMIN, False),
    "analyse_text": (ACTIVE, False),
    "open_visit": (set(), False),
    "agree_to_consent": (set(), False),
    "save_page": (set(), False),
    "withdraw_through_link": (set(), False),
}


def _audited(store: Store, actor: str) -> int:
    with store.transaction() as s:
        q = select(func.count()).select_from(AuditLog).where(AuditLog.actor == actor)
        return int(s.scalar(q) or 0)


@pytest.mark.slow
def test_policy_matrix(world: World) -> None:
    assert set(EXPECTED) == set(CASES)
    wrong: list[str] = []
    for name, invoke in CASES.items():
        allowed, per_site = EXPECTED[name]
        for who, caller in world.callers.items():
            for target in ("leeds", "glasgow") if per_site else (None,):
                ok = who in allowed and (target != "glasgow" or not who.endswith("-leeds"))
                before = _audited(world.store, caller.username)
                try:
                    invoke(world, caller, target)
                except (PermissionDenied, StudyError) as exc:
                    # Imports refuse out-of-site rows as problems of the file, by row.
                    if not isinstance(exc, PermissionDenied) and "outside your site" not in str(
                        exc
                    ):
                        raise
                    got = False
                    if _audited(world.store, caller.username) != before:
                        wrong.append(f"{name} by {who}: refused, yet a change was audited")
                else:
                    got = True
                if got != ok:
                    what = "allowed" if got else "refused"
                    wrong.append(f"{name} by {who} on {target or 'the study'}: {what}")
    assert wrong == []


def test_site_scoped_reads_hold_only_their_site(world: World) -> None:
    world.fresh("leeds")
    world.fresh("glasgow")
    leeds = world.callers["researcher-leeds"]
    people = api.list_participants(world.store, "pilot", caller=leeds)
    assert set(people["site"]) == {"leeds"} and len(people) == 2  # LW and the new one
    frame = api.export_frame(world.store, "pilot", tier="deidentified", caller=leeds)
    assert set(frame["site"].dropna()) <= {"leeds"}


def test_a_site_scoped_admin_cannot_read_or_erase_another_sites_identity(world: World) -> None:
    # Finding: a site-A user exported site-B identity data and erased a site-B participant.
    code = world.fresh("glasgow")
    api.set_identity(world.store, "pilot", code, {"name": "Gail Example"}, caller=ADMIN)
    leeds_admin = world.callers["admin-leeds"]
    with pytest.raises(PermissionDenied, match="outside your site"):
        api.get_identity(world.store, "pilot", code, caller=leeds_admin)
    with pytest.raises(PermissionDenied, match="outside your site"):
        api.erase_participant(world.store, "pilot", code, caller=leeds_admin, reason="x")
    out = world.tmp / "full.csv"
    api.export_study(world.store, "pilot", out, tier="full", caller=leeds_admin)
    assert "Gail Example" not in out.read_text(encoding="utf-8")
    assert api.get_identity(world.store, "pilot", code, caller=ADMIN) == {"name": "Gail Example"}


def test_a_full_tier_at_one_site_never_widens_to_other_sites(world: World) -> None:
    # Review H1: a study-wide researcher (remove_identifiers) who is also admin at Leeds (full)
    # exported every site's identity data at the full tier.
    code = world.fresh("glasgow")
    api.set_identity(world.store, "pilot", code, {"name": "Gail Example"}, caller=ADMIN)
    answers = world.file("g.csv", f"participant,{GAD7}\n{code},1,1,1,1,1,1,1\n")
    api.import_responses(world.store, "pilot", answers, timepoint="baseline", caller=ADMIN)
    grant_role(world.store, "researcher-study", "admin", study="pilot", site="leeds", caller=ADMIN)
    both = world.callers["researcher-study"]
    out = world.tmp / "full.csv"
    api.export_study(world.store, "pilot", out, tier="full", caller=both)
    exported = out.read_text(encoding="utf-8")
    assert "Gail Example" not in exported and code not in exported  # Leeds only at full tier
    api.export_study(
        world.store, "pilot", world.tmp / "ri.csv", tier="remove_identifiers", caller=both
    )
    assert code in (world.tmp / "ri.csv").read_text(encoding="utf-8")  # every site at its tier
    with pytest.raises(PermissionDenied, match="outside your site"):
        api.get_identity(world.store, "pilot", code, caller=both)


def test_nobody_widens_their_own_rights(world: World) -> None:
    # Finding: a site-scoped user granted themselves a wider role.
    for who in ("admin-leeds", "admin-study", "researcher-global"):
        caller = world.callers[who]
        with pytest.raises(PermissionDenied):
            grant_role(world.store, who, "admin", caller=caller)
        with pytest.raises(PermissionDenied):
            grant_role(world.store, who, "admin", study="pilot", caller=caller)


def test_own_password_needs_the_current_one(world: World) -> None:
    nobody = world.callers["nobody"]
    with pytest.raises(PermissionDenied, match="current password"):
        api.set_password(world.store, "nobody", "a new password", caller=nobody)
    api.set_password(
        world.store, "nobody", "a new password", caller=nobody, current_password=PASSWORD
    )
    assert api.authenticate(world.store, "nobody", "a new password") == nobody


def test_docs_security_shows_the_policy_as_it_is() -> None:
    from peerlens.study.policy import policy_table

    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    start = doc.index("<!-- policy:begin")
    body = doc[doc.index("\n", start) + 1 : doc.index("<!-- policy:end -->")].strip()
    assert body == policy_table()
