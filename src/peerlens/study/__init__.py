"""Study data: the data model, storage, import/export and audit of a peer-support study.

A study lives in one database (SQLite by default, PostgreSQL for multi-site use) opened with
:meth:`Store.open` (created once with ``create=True``). Every public function here takes the
caller (a :class:`Caller`, from :func:`authenticate` or :func:`bootstrap_admin`) and checks it
against the one permission policy (:mod:`peerlens.study.policy`) inside its own transaction;
every change is written in one transaction and appended to the hash-chained audit log.
Identifying fields live only in the identity vault. See ``docs/study.md`` and
``docs/security.md``.
"""

from peerlens.study.analysis_data import AnalysisDataset, analysis_dataset
from peerlens.study.audit import AuditReport, audit_frame, verify_audit
from peerlens.study.config import StudyConfig, TimepointConfig, load_config
from peerlens.study.consent_texts import ConsentWording, set_consent_text
from peerlens.study.derived import (
    DerivationSummary,
    DerivedCheck,
    derivation_status,
    derive,
    derived_frame,
    verify_derived,
)
from peerlens.study.erasure import ErasureReport, erase_participant
from peerlens.study.errors import (
    ConcurrentChange,
    ConsentNeeded,
    ImportRejected,
    NotFound,
    PermissionDenied,
    Problem,
    StudyError,
    TamperedError,
)
from peerlens.study.export import TIDY_COLUMNS, ExportResult, export_frame, export_study
from peerlens.study.hrv_data import HRV_TABLE_COLUMNS, HRV_TABLE_LABELS, HrvTable, hrv_table
from peerlens.study.keys import rotate_vault_key
from peerlens.study.links import IssuedLink, issue_link, revoke_links
from peerlens.study.participants import (
    NewParticipant,
    add_consent,
    add_participant,
    add_participants,
    get_identity,
    import_participants,
    list_participants,
    set_identity,
    set_status,
    withdraw_participant,
)
from peerlens.study.policy import POLICY, ROLES, TIERS, Caller, Grant, LinkHolder, Rule
from peerlens.study.progress import study_progress
from peerlens.study.recording_beats import recording_beats
from peerlens.study.redcap import DICTIONARY_COLUMNS, export_dictionary, import_records
from peerlens.study.responses import ImportSummary, import_responses
from peerlens.study.rights import check_operation
from peerlens.study.scoring_maps import scoring_maps, set_scoring_map
from peerlens.study.sessions import add_recording, add_relationship, add_session, add_transcript
from peerlens.study.storage import DEFAULT_URL, Store, describe_error, resolve_url
from peerlens.study.stories import (
    StoredSentence,
    StoredStory,
    StudioWorker,
    connection_over_time,
    export_disagreements,
    grant_studio_access,
    mark_disagreement,
    read_story,
    revoke_studio_access,
    save_story,
    studio_workers,
    worker_session_stories,
)
from peerlens.study.studies import (
    create_study,
    import_data_dictionary,
    list_studies,
    set_field_identifier,
    study_design,
)
from peerlens.study.text_analysis import analyse_text
from peerlens.study.tokens import (
    IssuedToken,
    create_token,
    list_all_tokens,
    list_tokens,
    resume_token,
    revoke_any_token,
    revoke_token,
)
from peerlens.study.users import (
    authenticate,
    bootstrap_admin,
    create_user,
    grant_role,
    list_users,
    revoke_role,
    set_active,
    set_password,
)
from peerlens.study.visits import (
    Page,
    PageSaved,
    Visit,
    agree_to_consent,
    open_visit,
    save_page,
    withdraw_through_link,
)
from peerlens.study.web_sessions import (
    SignInLimits,
    StaffSession,
    end_session,
    resume_session,
    sign_in,
)

__all__ = [
    "DEFAULT_URL",
    "DICTIONARY_COLUMNS",
    "HRV_TABLE_COLUMNS",
    "HRV_TABLE_LABELS",
    "POLICY",
    "ROLES",
    "TIDY_COLUMNS",
    "TIERS",
    "AnalysisDataset",
    "AuditReport",
    "Caller",
    "ConcurrentChange",
    "ConsentNeeded",
    "ConsentWording",
    "DerivationSummary",
    "DerivedCheck",
    "ErasureReport",
    "ExportResult",
    "Grant",
    "HrvTable",
    "ImportRejected",
    "ImportSummary",
    "IssuedLink",
    "IssuedToken",
    "LinkHolder",
    "NewParticipant",
    "NotFound",
    "Page",
    "PageSaved",
    "PermissionDenied",
    "Problem",
    "Rule",
    "SignInLimits",
    "StaffSession",
    "Store",
    "StoredSentence",
    "StoredStory",
    "StudioWorker",
    "StudyConfig",
    "StudyError",
    "TamperedError",
    "TimepointConfig",
    "Visit",
    "add_consent",
    "add_participant",
    "add_participants",
    "add_recording",
    "add_relationship",
    "add_session",
    "add_transcript",
    "agree_to_consent",
    "analyse_text",
    "analysis_dataset",
    "audit_frame",
    "authenticate",
    "bootstrap_admin",
    "check_operation",
    "connection_over_time",
    "create_study",
    "create_token",
    "create_user",
    "derivation_status",
    "derive",
    "derived_frame",
    "describe_error",
    "end_session",
    "erase_participant",
    "export_dictionary",
    "export_disagreements",
    "export_frame",
    "export_study",
    "get_identity",
    "grant_role",
    "grant_studio_access",
    "hrv_table",
    "import_data_dictionary",
    "import_participants",
    "import_records",
    "import_responses",
    "issue_link",
    "list_all_tokens",
    "list_participants",
    "list_studies",
    "list_tokens",
    "list_users",
    "load_config",
    "mark_disagreement",
    "open_visit",
    "read_story",
    "recording_beats",
    "resolve_url",
    "resume_session",
    "resume_token",
    "revoke_any_token",
    "revoke_links",
    "revoke_role",
    "revoke_studio_access",
    "revoke_token",
    "rotate_vault_key",
    "save_page",
    "save_story",
    "scoring_maps",
    "set_active",
    "set_consent_text",
    "set_field_identifier",
    "set_identity",
    "set_password",
    "set_scoring_map",
    "set_status",
    "sign_in",
    "studio_workers",
    "study_design",
    "study_progress",
    "verify_audit",
    "verify_derived",
    "withdraw_participant",
    "withdraw_through_link",
    "worker_session_stories",
]
