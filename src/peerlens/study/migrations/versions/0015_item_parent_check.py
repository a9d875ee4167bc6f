"""PostgreSQL: item values checked against their responses once per statement, not once per row

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 15:00:00

On PostgreSQL a foreign key is checked by a trigger that runs a query *per row*: importing one
response file (about 230,000 item values) spent four fifths of its ``COPY`` time in those checks
(benchmarks/bench_store.py). This revision replaces the foreign key ``response_item.response_id
-> response.id`` with statement-level constraint triggers over transition tables, which make
the same promises with one query per statement:

- rows written to ``response_item`` (insert or update) must name an existing response; the
  responses they name are locked ``FOR KEY SHARE`` as the foreign key's own check locks them, so a
  concurrent transaction cannot delete one before this one commits;
- a response may not be deleted, nor its ``id`` changed, while item values refer to it, and
  ``response`` may not be truncated while ``response_item`` holds rows.

A violation raises SQLSTATE 23503 (``foreign_key_violation``), as the foreign key did, naming the
response. The check is immediate (at the end of each statement), as the foreign key's was. The
models keep declaring the foreign key (SQLite keeps it, and it documents the relation);
``peerlens.study.storage.PG_TRIGGER_CHECKED`` lists it as enforced this way on PostgreSQL.
SQLite is unchanged.
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_FK = "response_item_response_id_fkey"


def _schema() -> str:
    """The schema the tables live in, quoted (the trigger functions name their tables fully, so
    they never depend on the search path of whoever writes)."""
    bind = op.get_bind()
    return str(bind.exec_driver_sql("SELECT quote_ident(current_schema())").scalar_one())


def upgrade() -> None:
    """Apply this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    s = _schema()
    op.drop_constraint(_FK, "response_item", type_="foreignkey")
    op.execute(
        f"""
        CREATE FUNCTION {s}.response_item_parent_check() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        DECLARE
            missing integer;
        BEGIN
            PERFORM 1 FROM {s}.response r
             WHERE r.id IN (SELECT DISTINCT n.response_id FROM written n)
               FOR KEY SHARE OF r;
            SELECT n.response_id INTO missing FROM written n
             WHERE NOT EXISTS (SELECT 1 FROM {s}.response r WHERE r.id = n.response_id)
             LIMIT 1;
            IF FOUND THEN
                RAISE foreign_key_violation USING
                    MESSAGE = format('response_item refers to response %s, which does not exist',
                                     missing),
                    TABLE = 'response_item';
            END IF;
            RETURN NULL;
        END
        $fn$
        """
    )
    op.execute(
        f"""
        CREATE FUNCTION {s}.response_children_check() RETURNS trigger
        LANGUAGE plpgsql AS $fn$
        DECLARE
            held integer;
        BEGIN
            IF TG_OP = 'TRUNCATE' THEN
                IF EXISTS (SELECT 1 FROM {s}.response_item) THEN
                    RAISE foreign_key_violation USING
                        MESSAGE = 'response cannot be truncated: response_item refers to it',
                        TABLE = 'response';
                END IF;
                RETURN NULL;
            END IF;
            SELECT i.response_id INTO held FROM {s}.response_item i
             WHERE i.response_id IN (SELECT o.id FROM gone o)
               AND NOT EXISTS (SELECT 1 FROM {s}.response r WHERE r.id = i.response_id)
             LIMIT 1;
            IF FOUND THEN
                RAISE foreign_key_violation USING
                    MESSAGE = format('response %s is still referred to by response_item', held),
                    TABLE = 'response';
            END IF;
            RETURN NULL;
        END
        $fn$
        """
    )
    for event in ("INSERT", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER response_item_parent_{event.lower()} AFTER {event} "
            f"ON {s}.response_item REFERENCING NEW TABLE AS written "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.response_item_parent_check()"
        )
    for event in ("DELETE", "UPDATE"):
        op.execute(
            f"CREATE TRIGGER response_children_{event.lower()} AFTER {event} "
            f"ON {s}.response REFERENCING OLD TABLE AS gone "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.response_children_check()"
        )
    op.execute(
        f"CREATE TRIGGER response_children_truncate BEFORE TRUNCATE ON {s}.response "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {s}.response_children_check()"
    )


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name != "postgresql":
        return
    s = _schema()
    for name, table in (
        ("response_item_parent_insert", "response_item"),
        ("response_item_parent_update", "response_item"),
        ("response_children_delete", "response"),
        ("response_children_update", "response"),
        ("response_children_truncate", "response"),
    ):
        op.execute(f"DROP TRIGGER {name} ON {s}.{table}")
    op.execute(f"DROP FUNCTION {s}.response_item_parent_check()")
    op.execute(f"DROP FUNCTION {s}.response_children_check()")
    op.create_foreign_key(_FK, "response_item", "response", ["response_id"], ["id"])
