"""Every audit entry carries a MAC under a key derived from the vault key; access tokens' MACs
cover their revocation

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01 21:10:00

The audit log was a plain sha256 chain: whoever could write to the database could append to it,
or rewrite it consistently from any entry on. Each entry now also holds ``mac``, an HMAC-SHA256
of its ``seq`` and ``hash`` under a key derived from the vault key, which the database never
holds (see :mod:`peerlens.study.audit`). This revision runs without the key, so entries written
before it keep ``mac`` NULL: the first entry written with the key afterwards is an
``audit.checkpoint`` whose MAC vouches for them through the hash links (it is written only when
the chain before it checks out).

``api_token.token_mac`` now binds the token's digest, user, scopes, expiry *and* revocation time,
so that it can be remade when a token is revoked (the token itself is never stored); MACs made
before this revision covered the token but not its revocation and cannot be remade without the
token, so tokens made before it are deleted (their users make new ones).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # A plain ADD COLUMN (no batch copy): on SQLite, rebuilding audit_log would drop its
    # append-only triggers.
    op.add_column("audit_log", sa.Column("mac", sa.String(64), nullable=True))
    op.execute("DELETE FROM api_token")


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DELETE FROM api_token")
    op.execute("ALTER TABLE audit_log DROP COLUMN mac")  # SQLite 3.35+; keeps the triggers
