"""PostgreSQL keeps consent event rows of up to a page uncompressed, so verifying does not spend
most of the server's work decompressing bodies (SQLite stores rows as they are)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 20:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE consent_events SET (toast_tuple_target = 8160)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE consent_events RESET (toast_tuple_target)")
