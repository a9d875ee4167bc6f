"""Study data commands: ``study``, ``participant``, ``responses``, ``recordings``, ``export``,
``audit``.

Every command takes ``--db`` (default ``$PEERLENS_DB`` or ``sqlite:///peerlens.db``) and ``--user``
(``$PEERLENS_USER``); when the database has user accounts the password comes from
``$PEERLENS_PASSWORD`` or a hidden prompt. Heavy imports happen inside the commands.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated

import typer

from peerlens._commands._common import err_console, user_errors
from peerlens._commands._signed_in import echo_table, signed_in

study_app = typer.Typer(help="Create and inspect studies; users and roles.", no_args_is_help=True)
participant_app = typer.Typer(
    help="Enrol, list, withdraw and erase participants.", no_args_is_help=True
)
responses_app = typer.Typer(help="Import questionnaire responses.", no_args_is_help=True)
recordings_app = typer.Typer(help="Store ECG/RR recordings.", no_args_is_help=True)
audit_app = typer.Typer(help="Check and read the audit log.", no_args_is_help=True)
vault_app = typer.Typer(help="The identity-vault key.", no_args_is_help=True)
scoring_map_app = typer.Typer(
    help="Which dictionary form is scored as which bundled instrument.", no_args_is_help=True
)
study_app.add_typer(scoring_map_app, name="scoring-map")

Db = Annotated[
    str | None,
    typer.Option(
        "--db", envvar="PEERLENS_DB", help="Database URL (sqlite:///... or postgresql://...)."
    ),
]
UserOpt = Annotated[
    str | None, typer.Option("--user", envvar="PEERLENS_USER", help="peerlens user name.")
]
StudyOpt = Annotated[str, typer.Option("--study", envvar="PEERLENS_STUDY", help="Study name.")]
Reason = Annotated[str | None, typer.Option("--reason", help="Why (kept in the audit log).")]


def register(root: typer.Typer) -> None:
    """Attach the study-data command groups to the root CLI."""
    root.command("init")(init)
    root.add_typer(study_app, name="study")
    root.add_typer(participant_app, name="participant")
    root.add_typer(responses_app, name="responses")
    root.add_typer(recordings_app, name="recordings")
    root.command("export")(export)
    root.add_typer(audit_app, name="audit")
    root.add_typer(vault_app, name="vault")


def _new_password(username: str) -> str:
    # Never an argument (it would sit in the shell history and the process list).
    return os.environ.get("PEERLENS_NEW_PASSWORD") or typer.prompt(
        f"new password for {username}", hide_input=True, confirmation_prompt=True
    )


def init(
    admin: Annotated[str, typer.Option("--admin", help="User name of the first admin.")],
    recordings: Annotated[
        Path | None,
        typer.Option("--recordings", help="Folder for recording files (stored, absolute)."),
    ] = None,
    db: Db = None,
    reason: Reason = None,
) -> None:
    """Create a study database, its identity-vault key and its first admin (password from
    $PEERLENS_NEW_PASSWORD or a hidden, confirmed prompt). There is no other way in: a database
    has no implicit user.

    The vault key is $PEERLENS_VAULT_KEY or the file $PEERLENS_VAULT_KEY_FILE when set; otherwise
    a new key is written to $PEERLENS_HOME/keys/<database id>.key (owner-only). Back it up apart
    from the database: without it, identity data cannot be read.
    """
    with user_errors():
        from peerlens.study.errors import PermissionDenied
        from peerlens.study.storage import Store
        from peerlens.study.users import bootstrap_admin, has_users
        from peerlens.study.vault import default_key_file, generate_key, write_key_file

        password = _new_password(admin)
        store = Store.open(db, create=True, blob_dir=recordings)
        with store.transaction() as s:
            if has_users(s):  # refused before any key file is written
                raise PermissionDenied(
                    "this database already has user accounts; ask an admin to create yours"
                )
        made = None
        if not os.environ.get("PEERLENS_VAULT_KEY") and not os.environ.get(
            "PEERLENS_VAULT_KEY_FILE"
        ):
            made = default_key_file(store.database_id)
            if not made.exists():
                write_key_file(made, generate_key())
        bootstrap_admin(store, admin, password, reason=reason)
        with store.transaction() as s:
            key = store.vault_key(s)
        typer.echo(f"created admin {admin}; recordings are kept in {store.blob_dir}")
        if made is not None:
            typer.echo(
                f"identity-vault key written to {made}: back it up apart from the database "
                "(without it identity data cannot be read)"
            )
        else:
            typer.echo(f"identity-vault key from {key.source}")


# ------------------------------------------------------------------------------------ study


@study_app.command("create")
def study_create(
    name: Annotated[str, typer.Argument(help="Short study name (letters, digits, _ -).")],
    config: Annotated[Path, typer.Option("--config", help="study.yaml (see docs/study.md).")],
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Create a study from a config: arms, sites, timepoints and instruments per timepoint."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.studies import create_study, study_design

        create_study(store, name, config, caller=me, reason=reason)
        design = study_design(store, name, caller=me)
        tps = ", ".join(
            f"{t['name']} ({len(t['instruments'])} instr.)" for t in design["timepoints"]
        )
        typer.echo(f"created study {name}: arms {design['arms']}, timepoints {tps}")


@study_app.command("list")
def study_list(db: Db = None, user: UserOpt = None) -> None:
    """List the studies you hold a role in."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.studies import list_studies

        for row in list_studies(store, caller=me):
            typer.echo(f"{row['name']}\t{row['title'] or ''}")


@study_app.command("show")
def study_show(name: str, db: Db = None, user: UserOpt = None) -> None:
    """Show a study's design (arms, sites, timepoints, instruments) as YAML."""
    with signed_in(db, user) as (store, me):
        import yaml

        from peerlens.study.studies import study_design

        design = study_design(store, name, caller=me)
        typer.echo(yaml.safe_dump(design, sort_keys=False).rstrip())


@study_app.command("consent-text")
def study_consent_text(
    name: str,
    version: Annotated[str, typer.Option("--version", help="New version label, e.g. v2.")],
    text_file: Annotated[Path, typer.Option("--file", help="The consent text (UTF-8 plain text).")],
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Set a new version of the consent text participants agree to through their links."""
    from peerlens.study.errors import StudyError

    with user_errors():
        try:
            text = text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise StudyError(f"{text_file}: cannot read the consent text ({exc})") from None
    with signed_in(db, user) as (store, me):
        from peerlens.study.consent_texts import set_consent_text

        set_consent_text(store, name, version, text, caller=me, reason=reason)
        typer.echo(f"consent text {version} set for {name}")


@scoring_map_app.command("set")
def scoring_map_set(
    name: str,
    form: Annotated[str, typer.Option("--form", help="The data-dictionary form.")],
    instrument: Annotated[str, typer.Option("--instrument", help="A bundled instrument.")],
    item: Annotated[
        list[str] | None,
        typer.Option("--item", help="FIELD=ITEM: a field of the form and the item it holds."),
    ] = None,
    map_file: Annotated[
        Path | None, typer.Option("--file", help="YAML mapping of the form's fields to items.")
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Set (or replace) how FORM is scored; the study's stored scores are derived again."""
    from peerlens.study.errors import StudyError

    with user_errors():
        items = _scoring_items(item or [], map_file)
        if not items:
            raise StudyError("give the map with --item FIELD=ITEM (repeated) or --file")
    with signed_in(db, user) as (store, me):
        from peerlens.study.scoring_maps import set_scoring_map

        run = set_scoring_map(store, name, form, instrument, items, caller=me, reason=reason)
        typer.echo(f"form {form} of {name} is scored as {instrument}")
        if run is not None:
            typer.echo(f"scores derived again: {run}")


def _scoring_items(pairs: list[str], map_file: Path | None) -> dict[str, str]:
    """The field -> item map of ``--item FIELD=ITEM`` options and a ``--file`` YAML mapping."""
    import yaml

    from peerlens.study.errors import StudyError

    items: dict[str, str] = {}
    if map_file is not None:
        try:
            loaded = yaml.safe_load(map_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise StudyError(f"{map_file}: cannot read the map ({exc})") from None
        if not isinstance(loaded, dict):
            raise StudyError(f"{map_file}: not a mapping of fields to items (field: item)")
        items.update({str(k): str(v) for k, v in loaded.items()})
    for pair in pairs:
        field, sep, target = pair.partition("=")
        if not sep or not field.strip() or not target.strip():
            raise StudyError(f"--item {pair!r}: write FIELD=ITEM (e.g. sc_01=scs_1)")
        items[field.strip()] = target.strip()
    return items


@scoring_map_app.command("show")
def scoring_map_show(name: str, db: Db = None, user: UserOpt = None) -> None:
    """Print the study's scoring maps (YAML)."""
    import yaml

    with signed_in(db, user) as (store, me):
        from peerlens.study.scoring_maps import scoring_maps

        maps = scoring_maps(store, name, caller=me)
        if not maps:
            typer.echo(f"study {name} has no scoring maps")
            return
        typer.echo(yaml.safe_dump(maps, sort_keys=False).rstrip())


@study_app.command("dictionary")
def study_dictionary(
    file: Annotated[Path, typer.Argument(help="REDCap data dictionary CSV (18 columns).")],
    study: StudyOpt,
    allow_identifier_downgrade: Annotated[
        bool,
        typer.Option(
            "--allow-identifier-downgrade",
            help="Accept a dictionary that drops an identifier flag (admins; audited).",
        ),
    ] = False,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Import (replace) the study's REDCap data dictionary."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.studies import import_data_dictionary

        n = import_data_dictionary(
            store,
            study,
            file,
            allow_identifier_downgrade=allow_identifier_downgrade,
            caller=me,
            reason=reason,
        )
        typer.echo(f"{file}: {n} field(s) defined")


@study_app.command("dictionary-export")
def study_dictionary_export(
    study: StudyOpt,
    out: Annotated[Path, typer.Option("--out", help="CSV to write.")],
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Write the study's REDCap data dictionary (18 columns) to a CSV file."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.redcap import export_dictionary

        text = export_dictionary(store, study, caller=me)
        tmp = out.with_name(f".{out.name}.partial")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out)
        typer.echo(f"wrote {out}")


@study_app.command("user-add")
def study_user_add(
    username: str,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Create a user account (password from $PEERLENS_NEW_PASSWORD or a prompt)."""
    with user_errors():
        from peerlens.study.users import check_username, create_user

        check_username(username)  # before asking for anyone's password
    with signed_in(db, user) as (store, me):
        password = _new_password(username)
        create_user(store, username, password, caller=me, reason=reason)
        typer.echo(f"created user {username}")


@study_app.command("grant")
def study_grant(
    username: str,
    role: Annotated[
        str, typer.Option("--role", help="admin, researcher, ps_worker, trainer or auditor.")
    ],
    study: Annotated[str | None, typer.Option("--study", help="Limit to one study.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="Limit to one site.")] = None,
    tier: Annotated[
        str | None, typer.Option("--export-tier", help="Override the export tier.")
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Give a user a role (global, per study or per site)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.users import grant_role

        grant_role(
            store,
            username,
            role,
            study=study,
            site=site,
            export_tier=tier,
            caller=me,
            reason=reason,
        )
        typer.echo(f"granted {role} to {username}")


@study_app.command("revoke")
def study_revoke(
    username: str,
    role: Annotated[str, typer.Option("--role", help="The role to take away.")],
    study: Annotated[str | None, typer.Option("--study", help="The role's study.")] = None,
    site: Annotated[str | None, typer.Option("--site", help="The role's site.")] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Take a role (at exactly that scope) from a user."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.users import revoke_role

        n = revoke_role(store, username, role, study=study, site=site, caller=me, reason=reason)
        typer.echo(f"revoked {n} {role} role(s) from {username}")


@study_app.command("users")
def study_users(db: Db = None, user: UserOpt = None) -> None:
    """List user accounts and their roles (tab-separated)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.users import list_users

        echo_table(list_users(store, caller=me))


@study_app.command("identifier")
def study_identifier(
    field: Annotated[str, typer.Argument(help="Data-dictionary field name.")],
    study: StudyOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (required, audited).")],
    not_identifying: Annotated[
        bool, typer.Option("--not-identifying", help="Clear the flag instead (admins).")
    ] = False,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Flag a field as identifying: its stored values move into the identity vault."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.studies import set_field_identifier

        set_field_identifier(store, study, field, not not_identifying, caller=me, reason=reason)
        state = "not identifying" if not_identifying else "identifying"
        typer.echo(f"{field}: {state}")


@study_app.command("passwd")
def study_passwd(
    username: Annotated[str, typer.Argument(help="Whose password to change.")],
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Change a password: your own (after your current one), or anyone's as an admin.

    The new password comes from $PEERLENS_NEW_PASSWORD or a hidden, confirmed prompt.
    """
    with signed_in(db, user) as (store, me):
        from peerlens.study.users import set_password

        current = os.environ.get("PEERLENS_PASSWORD") if me.username == username else None
        set_password(
            store,
            username,
            _new_password(username),
            caller=me,
            current_password=current,
            reason=reason,
        )
        typer.echo(f"password changed for {username}")


@study_app.command("user-deactivate")
def study_user_deactivate(
    username: str,
    reactivate: Annotated[
        bool, typer.Option("--reactivate", help="Allow the user to sign in again.")
    ] = False,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Deactivate a user account (it can no longer sign in; its audit history stays)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.users import set_active

        set_active(store, username, reactivate, caller=me, reason=reason)
        typer.echo(f"{'reactivated' if reactivate else 'deactivated'} user {username}")


@study_app.command("derive")
def study_derive(
    study: StudyOpt,
    what: Annotated[
        list[str] | None,
        typer.Option("--what", help="scores, hrv or story; repeatable (default all three)."),
    ] = None,
    executor: Annotated[
        str, typer.Option("--executor", help="Where HRV runs: dask or sequential.")
    ] = "dask",
    workers: Annotated[int, typer.Option("--workers", help="Dask LocalCluster workers.")] = 2,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Recompute and store scores, HRV metrics and story labels (replacing older results)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.derived import WHAT, derive

        done = derive(
            store,
            study,
            what or WHAT,
            caller=me,
            executor=executor,
            n_workers=workers,
            reason=reason,
        )
        for summary in done:
            typer.echo(str(summary))


@study_app.command("derived")
def study_derived(
    study: StudyOpt,
    what: Annotated[
        str | None,
        typer.Option("--what", help="scores, hrv, story or sentences (default: status)."),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="CSV to write.")] = None,
    verify: Annotated[
        bool,
        typer.Option("--verify", help="Check stored rows against each run's audited digest."),
    ] = False,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Show whether derived results are current, stale or missing, or write them out."""
    with signed_in(db, user) as (store, me):
        from peerlens._tables import write_table
        from peerlens.study.derived import derivation_status, derived_frame, verify_derived

        if verify:
            check = verify_derived(store, study, caller=me)
            for problem in check.problems:
                typer.echo(f"CHANGED: {problem}", err=True)
            if not check.ok:
                raise typer.Exit(1)
            typer.echo(f"derived results OK: {', '.join(check.checked) or 'none stored'}")
            return
        if what is None:
            frame = derivation_status(store, study, caller=me)
        else:
            frame = derived_frame(store, study, what, caller=me)
        if out is not None:
            write_table(frame, out)
            typer.echo(f"wrote {out}: {len(frame)} row(s)")
        else:
            echo_table(frame)


@study_app.command("disagreements")
def study_disagreements(
    study: StudyOpt,
    out: Annotated[Path, typer.Option("--out", help="CSV or .xlsx file to write.")],
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Write the story studio's "I disagree" marks with their sentences (for the next training
    round of the story model); your sites' workers only, at tier remove_identifiers or higher."""
    with signed_in(db, user) as (store, me):
        from peerlens._tables import write_table
        from peerlens.study.stories import export_disagreements

        frame = export_disagreements(store, study, caller=me)
        write_table(frame, out)
        typer.echo(f"wrote {out}: {len(frame)} mark(s)")


# ------------------------------------------------------------------------------ participant


@participant_app.command("add")
def participant_add(
    code: Annotated[str, typer.Argument(help="Pseudonymous study code, e.g. P-001.")],
    study: StudyOpt,
    role: Annotated[
        str, typer.Option("--role", help="service_user or ps_worker.")
    ] = "service_user",
    arm: Annotated[str | None, typer.Option("--arm")] = None,
    site: Annotated[str | None, typer.Option("--site")] = None,
    identity: Annotated[
        list[str] | None,
        typer.Option("--identity", help="Identifying field FIELD=VALUE (vault only); repeatable."),
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Enrol a participant."""
    with user_errors():
        from peerlens.study.errors import StudyError
        from peerlens.study.participants import add_participant

        fields: dict[str, str] = {}
        for item in identity or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise StudyError(f"--identity {item!r}: use FIELD=VALUE")
            fields[key.strip()] = value
    with signed_in(db, user) as (store, me):
        new = add_participant(
            store,
            study,
            code,
            role=role,
            arm=arm,
            site=site,
            identity=fields,
            caller=me,
            reason=reason,
        )
        typer.echo(f"{'enrolled' if new else 'already enrolled'}: {code}")


@participant_app.command("import")
def participant_import(
    file: Path,
    study: StudyOpt,
    identity_column: Annotated[
        list[str] | None,
        typer.Option("--identity-column", help="Column holding identifying data; repeatable."),
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Enrol participants from a CSV (participant, role, arm, site, identity columns)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.participants import import_participants

        n = import_participants(
            store,
            study,
            str(file),
            identity_columns=identity_column or (),
            caller=me,
            reason=reason,
        )
        typer.echo(f"{file}: {n} participant(s) enrolled")


@participant_app.command("list")
def participant_list(study: StudyOpt, db: Db = None, user: UserOpt = None) -> None:
    """List participants (pseudonymous codes only)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.participants import list_participants

        frame = list_participants(store, study, caller=me)
        echo_table(frame)


@participant_app.command("withdraw")
def participant_withdraw(
    code: str, study: StudyOpt, db: Db = None, user: UserOpt = None, reason: Reason = None
) -> None:
    """Mark a participant withdrawn (data so far are kept)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.participants import withdraw_participant

        withdraw_participant(store, study, code, caller=me, reason=reason)
        typer.echo(f"withdrawn: {code}")


@participant_app.command("erase")
def participant_erase(
    code: str,
    study: StudyOpt,
    reason: Annotated[str, typer.Option("--reason", help="Why (required, audited).")],
    purge_responses: Annotated[
        bool, typer.Option("--purge-responses", help="Also delete coded responses.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Erase a participant's identifying content (see docs/study.md for the policy)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.erasure import erase_participant

        if not yes:
            typer.confirm(f"erase {code} from {study}? This cannot be undone", abort=True)
        rep = erase_participant(
            store, study, code, caller=me, reason=reason, purge_responses=purge_responses
        )
        if not rep.pages_purged:
            err_console.print(
                "[yellow]warning:[/yellow] another connection was reading the database, so "
                "older page images may remain in its -wal file until the last connection "
                "closes (SQLite then folds the file in and removes it)",
                markup=True,
            )
        typer.echo(
            f"erased {code}: {rep.identity_fields} identity field(s), {rep.transcripts} "
            f"transcript(s), {rep.session_notes} session note(s), {rep.text_items} text item(s), "
            f"{rep.recordings} recording(s), {rep.responses_deleted} response(s) deleted"
        )


def _when(text: str, what: str) -> dt.datetime:
    from peerlens.study.errors import StudyError

    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise StudyError(f"{what} {text!r}: use ISO 8601, e.g. 2026-03-01T10:00+00:00") from None
    if when.tzinfo is None:
        raise StudyError(f"{what} {text!r}: add the time zone, e.g. 2026-03-01T10:00+00:00")
    return when


@participant_app.command("consent")
def participant_consent(
    code: str,
    study: StudyOpt,
    version: Annotated[str, typer.Option("--version", help="Consent form version.")],
    at: Annotated[str, typer.Option("--at", help="When, ISO 8601 with time zone.")],
    scope: Annotated[str, typer.Option("--scope", help="What the consent covers.")] = "",
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Record a participant's consent (form version, time, scope)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.participants import add_consent

        add_consent(
            store,
            study,
            code,
            version=version,
            consented_at=_when(at, "--at"),
            scope=scope,
            caller=me,
            reason=reason,
        )
        typer.echo(f"consent {version} recorded for {code}")


@participant_app.command("link")
def participant_link(
    code: str,
    study: StudyOpt,
    timepoint: Annotated[str, typer.Option("--timepoint", help="Timepoint the link opens.")],
    days: Annotated[int, typer.Option("--days", help="Days the link is valid (1-366).")] = 30,
    base_url: Annotated[
        str | None,
        typer.Option(
            "--base-url",
            envvar="PEERLENS_BASE_URL",
            help="Where `peerlens serve` is reached (default http://127.0.0.1:8000).",
        ),
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Issue a participant's personal link for a timepoint and print it (shown once only;
    earlier links for that timepoint stop working)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.links import issue_link
        from peerlens.web.urls import DEFAULT_BASE_URL, participant_url

        link = issue_link(
            store, study, code, timepoint=timepoint, days=days, caller=me, reason=reason
        )
        typer.echo(participant_url(base_url or DEFAULT_BASE_URL, link.participant, link.token))
        err_console.print(
            f"link for {code} at {link.timepoint}, valid until "
            f"{link.expires_at.isoformat(timespec='minutes')}; it is not stored and cannot be "
            "shown again"
        )


@participant_app.command("revoke-link")
def participant_revoke_link(
    code: str,
    study: StudyOpt,
    timepoint: Annotated[
        str | None, typer.Option("--timepoint", help="Only this timepoint's link.")
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Revoke a participant's personal links (all, or one timepoint's)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.links import revoke_links

        n = revoke_links(store, study, code, timepoint=timepoint, caller=me, reason=reason)
        typer.echo(f"revoked {n} link(s) of {code}")


@participant_app.command("studio")
def participant_studio(
    code: Annotated[str, typer.Argument(help="The PS worker's study code.")],
    study: StudyOpt,
    account: Annotated[str, typer.Option("--account", help="The user account to tie.")],
    relation: Annotated[
        str, typer.Option("--as", help="worker (their own account) or trainer.")
    ] = "worker",
    remove: Annotated[bool, typer.Option("--remove", help="Untie the account instead.")] = False,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Tie a user account to a PS worker's story studio, as the worker or as their trainer
    (the account also needs the ps_worker or trainer role in the study)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.stories import grant_studio_access, revoke_studio_access

        if remove:
            n = revoke_studio_access(store, study, code, account, caller=me, reason=reason)
            typer.echo(f"untied {n} account(s) from {code}'s studio")
            return
        grant_studio_access(
            store, study, code, account, relation=relation, caller=me, reason=reason
        )
        typer.echo(f"{account} opens {code}'s story studio as {relation}")


@participant_app.command("relate")
def participant_relate(
    ps_worker: Annotated[str, typer.Argument(help="PS worker's study code.")],
    service_user: Annotated[str, typer.Argument(help="Service user's study code.")],
    study: StudyOpt,
    start: Annotated[str, typer.Option("--start", help="ISO 8601 with time zone.")],
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Record that a PS worker supports a service user; prints the relationship id."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.sessions import add_relationship

        rid = add_relationship(
            store,
            study,
            ps_worker,
            service_user,
            started_at=_when(start, "--start"),
            caller=me,
            reason=reason,
        )
        typer.echo(f"relationship {rid}: {ps_worker} -> {service_user}")


@participant_app.command("session")
def participant_session(
    relationship: Annotated[int, typer.Argument(help="Relationship id (from relate).")],
    label: Annotated[str, typer.Argument(help="Session label, e.g. s1.")],
    study: StudyOpt,
    start: Annotated[str, typer.Option("--start", help="ISO 8601 with time zone.")],
    mode: Annotated[str, typer.Option("--mode", help="in_person, phone, video, text_chat.")],
    duration: Annotated[float | None, typer.Option("--duration", help="Minutes.")] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Add a PS session to a relationship."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.sessions import add_session

        sid = add_session(
            store,
            study,
            relationship,
            label,
            started_at=_when(start, "--start"),
            mode=mode,
            duration_min=duration,
            caller=me,
            reason=reason,
        )
        typer.echo(f"session {sid}: {label}")


@participant_app.command("transcript")
def participant_transcript(
    code: Annotated[str, typer.Argument(help="Whose transcript or story (study code).")],
    file: Annotated[Path, typer.Argument(help="UTF-8 text, WebVTT or SRT file.")],
    study: StudyOpt,
    kind: Annotated[str, typer.Option("--kind", help="transcript or story.")] = "transcript",
    session: Annotated[str | None, typer.Option("--session", help="Session label.")] = None,
    speaker: Annotated[
        str | None,
        typer.Option("--speaker", help="The PS worker's name in the transcript."),
    ] = None,
    author: Annotated[str | None, typer.Option("--author")] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Store a transcript or story (a new version if one exists); text never reaches the log."""
    with user_errors():
        from peerlens.narrative import read_text
        from peerlens.study.sessions import add_transcript

        text = read_text(file)
    with signed_in(db, user) as (store, me):
        tid = add_transcript(
            store,
            study,
            text,
            kind=kind,
            participant=code,
            session=session,
            author=author,
            speaker=speaker,
            caller=me,
            reason=reason,
        )
        typer.echo(f"{kind} {tid} stored for {code}")


# -------------------------------------------------------------------------------- responses


@responses_app.command("import")
def responses_import(
    file: Path,
    study: StudyOpt,
    timepoint: Annotated[
        str | None, typer.Option("--timepoint", help="Timepoint or REDCap event.")
    ] = None,
    session: Annotated[
        str | None, typer.Option("--session", help="Instead: a PS session label.")
    ] = None,
    instrument: Annotated[str | None, typer.Option("--instrument", help="Only this one.")] = None,
    missing_codes: Annotated[
        str | None, typer.Option("--missing-codes", help="Extra missing codes, comma-separated.")
    ] = None,
    column_map: Annotated[
        Path | None,
        typer.Option("--map", help="Column map file (CSV: column,instrument,item)."),
    ] = None,
    items: Annotated[
        list[str] | None,
        typer.Option("--items", help="Item columns by pattern, e.g. phq9=Q3_{n}; repeatable."),
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Import a wide response file for one timepoint; all or nothing, idempotent.

    Columns named after a survey tool's question ids are mapped with --map or --items (as in
    `peerlens score`); Qualtrics' two extra header rows are skipped.
    """
    with user_errors():
        from peerlens.instruments.columns import column_map_from
        from peerlens.study.responses import import_responses

        mapping = column_map_from(column_map, items or [])
    with signed_in(db, user) as (store, me):
        codes = [c.strip() for c in missing_codes.split(",")] if missing_codes else None
        summary = import_responses(
            store,
            study,
            file,
            timepoint=timepoint,
            session=session,
            instrument=instrument,
            missing_codes=codes,
            columns=mapping or None,
            caller=me,
            reason=reason,
        )
        typer.echo(str(summary))


@responses_app.command("import-redcap")
def responses_import_redcap(
    file: Path,
    study: StudyOpt,
    create_participants: Annotated[
        bool, typer.Option("--create-participants", help="Enrol unknown record ids.")
    ] = False,
    date_format: Annotated[
        str,
        typer.Option(
            "--date-format",
            help="Order of slashed dates in the file, as REDCap's import takes them: YMD "
            "(default: YYYY-MM-DD only), MDY (M/D/YYYY) or DMY (D/M/YYYY).",
        ),
    ] = "YMD",
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Import a REDCap flat record CSV (raw values); all or nothing, idempotent."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.redcap import import_records

        summary = import_records(
            store,
            study,
            file,
            create_participants=create_participants,
            date_format=date_format.strip().upper(),
            caller=me,
            reason=reason,
        )
        typer.echo(str(summary))


# ------------------------------------------------------------------------------- recordings


@recordings_app.command("add")
def recordings_add(
    file: Path,
    study: StudyOpt,
    participant: Annotated[str, typer.Option("--participant")],
    session: Annotated[str | None, typer.Option("--session", help="Session label.")] = None,
    kind: Annotated[str, typer.Option("--kind", help="ecg or rr.")] = "ecg",
    device: Annotated[str | None, typer.Option("--device")] = None,
    sampling_rate: Annotated[float | None, typer.Option("--sampling-rate", help="Hz.")] = None,
    timepoint: Annotated[
        str | None, typer.Option("--timepoint", help="The study timepoint it was recorded at.")
    ] = None,
    window: Annotated[
        list[str] | None,
        typer.Option("--window", help="Window event LABEL:START_S:END_S; repeatable."),
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Store an ECG/RR file (content-addressed by sha256) and link it."""
    with user_errors():
        from peerlens.study.sessions import add_recording, parse_window

        windows = [parse_window(w) for w in window or []]
    with signed_in(db, user) as (store, me):
        rid, sha = add_recording(
            store,
            study,
            file,
            participant=participant,
            session=session,
            kind=kind,
            device=device,
            sampling_rate_hz=sampling_rate,
            windows=windows,
            timepoint=timepoint,
            caller=me,
            reason=reason,
        )
        typer.echo(f"recording {rid}: sha256 {sha}")


# ----------------------------------------------------------------------------------- export


def export(
    study: StudyOpt,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output file: tidy .csv, .parquet or .xlsx; redcap .csv; spss .sav; stata .dta; "
            "r .csv (the R script is written beside it as .R).",
        ),
    ],
    format: Annotated[
        str, typer.Option("--format", help="tidy, redcap, spss, stata or r.")
    ] = "tidy",
    tier: Annotated[
        str,
        typer.Option("--tier", help="full, remove_identifiers, deidentified (default) or none."),
    ] = "deidentified",
    raw_values: Annotated[
        bool,
        typer.Option(
            "--raw-values", help="Do not prefix formula-like text cells (=, +, -, @) with '."
        ),
    ] = False,
    outcomes: Annotated[
        list[str] | None,
        typer.Option("--outcomes", help="r: the scores the R script models (comma-separated)."),
    ] = None,
    reference_arm: Annotated[
        str | None, typer.Option("--reference-arm", help="spss, stata, r: the control arm.")
    ] = None,
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Export a study: tidy long CSV/Parquet/XLSX or REDCap records at an export tier, or the
    de-identified analysis dataset for SPSS, Stata or R."""
    if format in ("spss", "stata", "r"):
        _export_analysis(study, out, format, tier, outcomes, reference_arm, db, user)
        return
    with signed_in(db, user) as (store, me):
        from peerlens.study.export import export_study

        res = export_study(
            store,
            study,
            out,
            format=format,
            tier=tier,
            raw_values=raw_values,
            caller=me,
            reason=reason,
        )
        typer.echo(
            f"{res.path}: {res.rows} row(s), sha256 {res.sha256}; manifest {res.manifest} "
            f"(audit head seq {res.audit_head[0]})"
        )


def _export_analysis(
    study: str,
    out: Path,
    format: str,
    tier: str,
    outcomes: list[str] | None,
    reference_arm: str | None,
    db: str | None,
    user: str | None,
) -> None:
    """The SPSS/Stata/R export: the de-identified analysis dataset, written for that package."""
    with user_errors():
        from peerlens.analysis.stat_exports import FORMATS
        from peerlens.study.errors import StudyError

        if tier != "deidentified":
            raise StudyError(f"--format {format} exports the de-identified tier only, not {tier!r}")
        if out.suffix.lower() != FORMATS[format]:
            raise StudyError(f"{out}: a {format} export is written as {FORMATS[format]}")
    with signed_in(db, user) as (store, me):
        from peerlens._commands.report import split_outcomes
        from peerlens.analysis.stat_exports import write_export
        from peerlens.study import analysis_dataset, hrv_table
        from peerlens.study.export import _refuse_store_paths

        # As the tidy export: never over the database, its journals or stored recordings.
        hrv_out = out.with_name(f"{out.stem}_hrv{out.suffix}")
        for target in (out, hrv_out, *((out.with_suffix(".R"),) if format == "r" else ())):
            _refuse_store_paths(store, target)
        dataset = analysis_dataset(store, study, caller=me, purpose=format)
        hrv = hrv_table(store, study, caller=me, purpose=format)
        written = write_export(
            dataset,
            out,
            format=format,
            outcomes=split_outcomes(outcomes),
            reference_arm=reference_arm,
            hrv=hrv,
        )
        typer.echo(f"{', '.join(map(str, written))}: data snapshot sha256 {dataset.sha256}")


# ------------------------------------------------------------------------------------ audit


@audit_app.command("verify")
def audit_verify(
    db: Db = None,
    user: UserOpt = None,
    expect_head: Annotated[
        str | None,
        typer.Option("--expect-head", help="SEQ:HASH recorded earlier (e.g. from a manifest)."),
    ] = None,
) -> None:
    """Check the hash chain, every entry's MAC and every data row's seal; exit 1 naming every
    edited, added or removed row."""
    with user_errors():
        from peerlens.study.audit import verify_audit
        from peerlens.study.errors import StudyError

        head = None
        if expect_head:
            seq, sep, digest = expect_head.partition(":")
            hexdigits = set("0123456789abcdef")
            if not sep or not seq.isdigit() or len(digest) != 64 or set(digest) - hexdigits:
                raise StudyError(f"--expect-head {expect_head!r}: use SEQ:HASH")
            head = (int(seq), digest)
    with signed_in(db, user) as (store, me):
        rep = verify_audit(store, caller=me, expect_head=head)
        if rep.ok:
            typer.echo(
                f"audit chain OK: {rep.rows} row(s), {rep.erasures} erasure(s), "
                f"head seq {rep.head_seq} {rep.head_hash}"
            )
            if rep.macs_unchecked is None:
                typer.echo(f"audit MACs OK: {rep.macs_checked} row(s) verified with the vault key")
            else:
                typer.echo(f"warning: audit MACs NOT checked: {rep.macs_unchecked}", err=True)
            if rep.data_unchecked is None:
                typer.echo(
                    f"data OK: {rep.data_units} sealed unit(s) match their seals; "
                    f"{rep.files_checked} recording file(s) re-hashed"
                )
            else:
                typer.echo(f"warning: data tables NOT checked: {rep.data_unchecked}", err=True)
            return
        for problem in rep.problems:
            typer.echo(f"TAMPERED: {problem}", err=True)
        raise typer.Exit(1)


@audit_app.command("show")
def audit_show(
    study: Annotated[str | None, typer.Option("--study")] = None,
    last: Annotated[int, typer.Option("--last", help="Show the last N rows.")] = 20,
    seals: Annotated[
        bool, typer.Option("--seals", help="Include the data-seal checkpoints (data.seal rows).")
    ] = False,
    db: Db = None,
    user: UserOpt = None,
) -> None:
    """Print the newest audit rows (tab-separated)."""
    with signed_in(db, user) as (store, me):
        from peerlens.study.audit import audit_frame
        from peerlens.study.integrity import RESEAL_ACTION, SEAL_ACTION

        frame = audit_frame(store, caller=me, study=study)
        if not seals:
            frame = frame[~frame["action"].isin((SEAL_ACTION, RESEAL_ACTION))]
        cols = ["seq", "at_utc", "actor", "action", "entity", "entity_id", "reason"]
        echo_table(frame[cols].tail(last))


# ------------------------------------------------------------------------------------ vault


@vault_app.command("new-key")
def vault_new_key(
    out: Annotated[Path, typer.Option("--out", help="Key file to create (owner-only).")],
) -> None:
    """Write a new random vault key to a file (for peerlens vault rotate, or a new database)."""
    with user_errors():
        from peerlens.study.errors import StudyError
        from peerlens.study.vault import generate_key, write_key_file

        try:
            write_key_file(out, generate_key())
        except FileExistsError:
            raise StudyError(f"{out}: already exists; a key file is never overwritten") from None
        typer.echo(f"wrote a new vault key to {out} (readable by you only); back it up")


@vault_app.command("rotate")
def vault_rotate(
    new_key_file: Annotated[Path, typer.Option("--new-key-file", help="From vault new-key.")],
    db: Db = None,
    user: UserOpt = None,
    reason: Reason = None,
) -> None:
    """Re-encrypt the identity vault under a new key (global admins). Then point
    PEERLENS_VAULT_KEY_FILE (or the default key file) at the new key."""
    with user_errors():
        from peerlens.study.errors import StudyError
        from peerlens.study.keys import rotate_vault_key

        try:
            key = new_key_file.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise StudyError(f"{new_key_file}: cannot read the new key ({exc})") from None
    with signed_in(db, user) as (store, me):
        n = rotate_vault_key(store, key, caller=me, reason=reason)
        typer.echo(
            f"re-encrypted {n} vault entr{'y' if n == 1 else 'ies'}; from now on use "
            f"{new_key_file} as the key (keep the old key while old backups are kept)"
        )
