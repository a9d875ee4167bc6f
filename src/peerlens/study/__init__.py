"""Study data: the data model, storage, import/export and audit of a peer-support study.

A study lives in one database (SQLite by default, PostgreSQL for multi-site use) opened with
:meth:`Store.open`; every change goes through the functions here, which write in one transaction
and append to the hash-chained audit log. Identifying fields live only in the identity vault.
See ``docs/study.md``.
"""

from peerlens.study.audit import AuditReport, verify_audit
from peerlens.study.config import StudyConfig, TimepointConfig, load_config
from peerlens.study.errors import ImportRejected, PermissionDenied, Problem, StudyError
from peerlens.study.participants import (
    NewParticipant,
    add_consent,
    add_participant,
    add_participants,
    get_identity,
    list_participants,
    set_identity,
    set_status,
    withdraw_participant,
)
from peerlens.study.responses import ImportSummary, import_responses
from peerlens.study.storage import DEFAULT_URL, Store, resolve_url
from peerlens.study.studies import create_study, import_data_dictionary, study_design

__all__ = [
    "DEFAULT_URL",
    "AuditReport",
    "ImportRejected",
    "ImportSummary",
    "NewParticipant",
    "PermissionDenied",
    "Problem",
    "Store",
    "StudyConfig",
    "StudyError",
    "TimepointConfig",
    "add_consent",
    "add_participant",
    "add_participants",
    "create_study",
    "get_identity",
    "import_data_dictionary",
    "import_responses",
    "list_participants",
    "load_config",
    "resolve_url",
    "set_identity",
    "set_status",
    "study_design",
    "verify_audit",
    "withdraw_participant",
]
