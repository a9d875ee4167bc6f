"""A response is unique by participant, timepoint or session, instrument and instance

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 16:05:00

The unique constraint of ``response`` covers ``(participant_id, timepoint_id, session_id,
instrument, repeat_instance)``, but a response belongs to a timepoint *or* to a PS session, so
one of the two is always NULL, and in SQL a NULL equals nothing: the constraint never refused a
second copy of a response. Two first saves of one form at once, or two imports of one file at
once on PostgreSQL, could store it twice. This revision adds a unique index on the same key with
each missing id counted as 0 (ids start at 1), which both SQLite and PostgreSQL enforce. A
database that already holds duplicates is not upgraded: the error names them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from peerlens.study.errors import StudyError

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_KEY = (
    "participant_id, COALESCE(timepoint_id, 0), COALESCE(session_id, 0), instrument, "
    "repeat_instance"
)


def upgrade() -> None:
    """Apply this revision."""
    bind = op.get_bind()
    twice = bind.execute(
        sa.text(
            f"SELECT {_KEY}, count(*) FROM response GROUP BY {_KEY} HAVING count(*) > 1 "
            "ORDER BY 1, 2, 3, 4, 5"
        )
    ).all()
    if twice:
        shown = "; ".join(
            f"participant id {p}, timepoint id {t or '-'}, session id {s or '-'}, {i}, "
            f"instance {r}: {n} copies"
            for p, t, s, i, r, n in twice[:5]
        )
        raise StudyError(
            f"this database was not upgraded: table response holds {len(twice)} response(s) "
            f"stored more than once ({shown}); keep one copy of each and open it again"
        )
    op.execute(f"CREATE UNIQUE INDEX uq_response_key ON response ({_KEY})")


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DROP INDEX uq_response_key")
