"""The catalog revision: a token changed by every change to study-level data

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-02 01:00:00

A participant's every request needs their study's definition (its timepoint's forms and
pages, the consent text), which changes rarely. The web app keeps it in a per-process cache
(:mod:`peerlens.study._catalog_cache`), used only while the token of this one-row table, read
in the request's own transaction, is the one the entry was built under. Every transaction that
writes study-level data sets a new token before it commits, so several server processes on one
database stay correct. The row holds no study data and is not sealed.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    table = op.create_table(
        "catalog_revision",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token", sa.String(32), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "token": uuid.uuid4().hex}])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("catalog_revision")
