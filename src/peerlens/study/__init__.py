"""Study data: the data model, storage, import/export and audit of a peer-support study.

A study lives in one database (SQLite by default, PostgreSQL for multi-site use) opened with
:meth:`Store.open`; every change goes through the functions here, which write in one transaction
and append to the hash-chained audit log. Identifying fields live only in the identity vault.
See ``docs/study.md``.
"""

from peerlens.study.audit import AuditReport, verify_audit
from peerlens.study.config import StudyConfig, TimepointConfig, load_config
from peerlens.study.derived import (
    DerivationSummary,
    DerivedCheck,
    derivation_status,
    derive,
    derived_frame,
    verify_derived,
)
from peerlens.study.erasure import ErasureReport, erase_participant
from peerlens.study.errors import ImportRejected, PermissionDenied, Problem, StudyError
from peerlens.study.export import TIDY_COLUMNS, ExportResult, export_study, tidy_frame
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
from peerlens.study.redcap import (
    DICTIONARY_COLUMNS,
    export_dictionary,
    import_records,
    records_frame,
)
from peerlens.study.responses import ImportSummary, import_responses
from peerlens.study.sessions import add_recording, add_relationship, add_session, add_transcript
from peerlens.study.storage import DEFAULT_URL, Store, resolve_url
from peerlens.study.studies import create_study, import_data_dictionary, study_design
from peerlens.study.users import (
    TIERS,
    Rights,
    create_user,
    grant_role,
    resolve_rights,
    set_active,
    set_password,
)

__all__ = [
    "DEFAULT_URL",
    "DICTIONARY_COLUMNS",
    "TIDY_COLUMNS",
    "TIERS",
    "AuditReport",
    "DerivationSummary",
    "DerivedCheck",
    "ErasureReport",
    "ExportResult",
    "ImportRejected",
    "ImportSummary",
    "NewParticipant",
    "PermissionDenied",
    "Problem",
    "Rights",
    "Store",
    "StudyConfig",
    "StudyError",
    "TimepointConfig",
    "add_consent",
    "add_participant",
    "add_participants",
    "add_recording",
    "add_relationship",
    "add_session",
    "add_transcript",
    "create_study",
    "create_user",
    "derivation_status",
    "derive",
    "derived_frame",
    "erase_participant",
    "export_dictionary",
    "export_study",
    "get_identity",
    "grant_role",
    "import_data_dictionary",
    "import_participants",
    "import_records",
    "import_responses",
    "list_participants",
    "load_config",
    "records_frame",
    "resolve_rights",
    "resolve_url",
    "set_active",
    "set_identity",
    "set_password",
    "set_status",
    "study_design",
    "tidy_frame",
    "verify_audit",
    "verify_derived",
    "withdraw_participant",
]
