"""Derived scores sealed one by one (seal scheme 2); the audit log's entity index ends with seq

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-02 08:50:00

A form completed through a personal link re-scores its response inside the study's current
scores run. The run was one seal unit with all its scores as child rows, and its digest a sha256
over all of them, so each completion read and hashed the whole run twice while holding the
writer's lock: its cost grew with the study. Now every derived score is a seal unit of its own
(:mod:`peerlens.study._seal_units`, scheme 2) and a scores run also records an additive digest
that a completion updates by the rows it replaces (:mod:`peerlens.study.derived._runs`).

Seals are made with the vault key, which this revision runs without: a database sealed before
it is checked under the old scheme, and resealed under the new one, by the first write made with
the key afterwards (:func:`peerlens.study.integrity.ensure_scheme`, a ``data.reseal`` entry whose
MAC names the scheme); until then ``peerlens audit verify`` checks it under the old scheme. The
revision number itself keeps an older peerlens, which knows only the old scheme, from opening
the database. ``ix_audit_log_entity`` gains ``seq``, so that the newest amendment of a run is
found without reading its others.
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id", "action", "seq"])


def downgrade() -> None:
    """Revert this revision (seals made under scheme 2 stay so: reseal with the older peerlens,
    e.g. by rotating the vault key, before using it)."""
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.create_index("ix_audit_log_entity", "audit_log", ["entity", "entity_id", "action"])
