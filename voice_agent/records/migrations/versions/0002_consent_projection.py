"""consent projection, new event kinds, retention settings

Allows the event kinds owner_notifications_opt_in, owner_notifications_opt_out and
web_form_consent; adds the current-state projection ``consent_state`` and fills it from the events
already recorded; adds each business's retention settings and the mark a call keeps when its
transcript is deleted.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 10:00:00
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consent_ledger.chain import CorruptEventError
from consent_ledger.queries import rebuild_projection
from consent_ledger.tables import append_only_ddl, drop_append_only_ddl

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger(__name__)

KINDS_0001 = (
    "consent_granted",
    "consent_declined",
    "consent_unclear",
    "consent_not_asked",
    "revoked",
    "resubscribed",
)
KINDS_0002 = (
    *KINDS_0001,
    "owner_notifications_opt_in",
    "owner_notifications_opt_out",
    "web_form_consent",
)


def upgrade() -> None:
    _allow_kinds(KINDS_0002)
    op.create_table(
        "consent_state",
        sa.Column("business_id", sa.String(length=64), nullable=False),
        sa.Column("phone_number", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("event_hash", sa.String(length=64), nullable=True),
        sa.Column("event_seq", sa.BigInteger(), nullable=True),
        sa.Column("consent_hash", sa.String(length=64), nullable=True),
        sa.Column("consent_seq", sa.BigInteger(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("max_texts", sa.Integer(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("business_id", "phone_number"),
    )
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "transcript_retention_days", sa.Integer(), nullable=False, server_default="90"
            )
        )
        batch_op.add_column(
            sa.Column("consent_retention_years", sa.Integer(), nullable=False, server_default="5")
        )
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("transcript_purged_at", sa.DateTime(timezone=True), nullable=True)
        )
    _fill_projection()


def downgrade() -> None:
    with op.batch_alter_table("calls", schema=None) as batch_op:
        batch_op.drop_column("transcript_purged_at")
    with op.batch_alter_table("businesses", schema=None) as batch_op:
        batch_op.drop_column("consent_retention_years")
        batch_op.drop_column("transcript_retention_days")
    op.drop_table("consent_state")
    _allow_kinds(KINDS_0001)


def _allow_kinds(kinds: tuple[str, ...]) -> None:
    """Replace the CHECK on consent_events.kind (SQLite copies the table; triggers are redone)."""
    dialect = op.get_bind().dialect.name
    for statement in drop_append_only_ddl(dialect):
        op.execute(statement)
    listed = ", ".join(f"'{kind}'" for kind in kinds)
    with op.batch_alter_table(
        "consent_events", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_constraint("ck_consent_events_kind", type_="check")
        batch_op.create_check_constraint("ck_consent_events_kind", f"kind IN ({listed})")
    for statement in append_only_ddl(dialect):
        op.execute(statement)


def _fill_projection() -> None:
    """Project the events already recorded; a damaged ledger leaves the projection empty.

    A damaged ledger must not stop the receptionist from starting (the send gate reads the events
    themselves and refuses what it cannot trust); ``receptionist ledger verify`` names the damage
    and ``receptionist ledger rebuild`` fills the projection once it is repaired.
    """
    bind = op.get_bind()
    savepoint = bind.begin_nested()
    try:
        rebuild_projection(bind)
    except CorruptEventError as error:
        savepoint.rollback()
        logger.warning("consent_state left empty, the ledger is damaged: %s", error)
        return
    savepoint.commit()
